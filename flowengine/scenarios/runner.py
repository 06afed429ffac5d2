"""Play a scenario: place its inbound call, let virtual time run until the session and every call are
over, then compare what happened with what the scenario expects."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from flowengine.scenarios.http_expect import check_http
from flowengine.scenarios.http_mocks import MOCKED, HttpCall
from flowengine.scenarios.model import OutboundStart, Scenario
from flowengine.scenarios.stack import Stack, running_stack

VIRTUAL_LIMIT = 4 * 3600.0  # a scenario that has not finished after 4 virtual hours never will
REAL_LIMIT = 30.0
REAL_TIME, VIRTUAL_TIME = "real-time", "virtual-time"


@dataclass(frozen=True)
class Limits:
    """When to give up on a scenario that is not over: ``virtual`` seconds of the scenario's own time
    (a flow that keeps going), or ``real`` seconds of wall-clock time (a run that has stalled: nothing
    left to wait for, or a machine too slow for the run)."""

    virtual: float = VIRTUAL_LIMIT
    real: float = REAL_LIMIT


@dataclass
class ScenarioResult:
    scenario: Scenario
    provider: str
    session: dict[str, Any]
    requests: list[dict[str, Any]]
    webhooks: list[dict[str, Any]]
    started_at: float  # virtual epoch seconds when the call was placed
    virtual_seconds: float
    real_seconds: float
    failures: list[str] = field(default_factory=list)
    limit: str | None = None  # REAL_TIME or VIRTUAL_TIME when the run was cut short by that limit
    http_calls: list[dict[str, Any]] = field(default_factory=list)  # the http actions' requests
    http_requests: list[HttpCall] = field(default_factory=list)  # the same, with what they sent

    @property
    def passed(self) -> bool:
        return not self.failures

    def actions(self) -> list[str]:
        """The provider actions the session carried out successfully, in order."""
        return [
            command[0]
            for step in self.session.get("trace", [])
            for command in step.get("commands", [])
            if command[1] == "ok" and command[0] not in ("set", "log")
        ]


async def run_scenario(
    provider: str, flow: Path, scenario: Scenario, *, store: str | None = None, limits: Limits | None = None,
    http_allow: tuple[str | Mapping[str, Any], ...] = (),
) -> ScenarioResult:
    """Play ``scenario`` on a fresh stack. ``store`` defaults to the service's default kind, a SQLite
    file: a new one in a temporary folder, removed afterwards. The flow's http actions are answered by
    the scenario's mocks; ``http_allow`` hosts (the service's entries) are reached for real when no
    mock matches."""
    with tempfile.TemporaryDirectory(prefix="flowengine-") as folder:
        url = store or f"sqlite:///{folder}/sessions.db"
        # Ids are reproducible per scenario and differ between scenarios, so runs sharing a store
        # (--store) never meet each other's sessions.
        seed = zlib.crc32(f"{provider}:{flow.name}:{scenario.name}".encode())
        # An outbound flow is loaded for the API to start (``flows``), an inbound one answers the call.
        outbound = scenario.outbound is not None
        async with running_stack(
            provider, None if outbound else flow, store=url, parties=scenario.parties,
            simulator_options={"seed": seed}, http_allow=http_allow, http_mocks=scenario.http,
            service_options={"flows": (flow,)} if outbound else None,
        ) as stack:
            return await play(stack, scenario, limits)


async def play(stack: Stack, scenario: Scenario, limits: Limits | None = None) -> ScenarioResult:
    clock, real_start = stack.clock, time.monotonic()
    started_at = clock.now()
    failures: list[str] = []
    hit: str | None = None
    if scenario.outbound is not None:
        session_id, refused = await _start_outbound(stack, scenario.outbound)
        failures += [refused] if refused else []
    else:
        call_id = await stack.simulator.place_inbound_call(
            scenario.caller_from, scenario.caller_to, scenario.caller
        )
        session_id = stack.service.session_id_for(call_id)
    if not failures:
        watch = _Watch(stack, session_id, limits or Limits(), started_at, real_start)
        hit = await watch.until_over()
        failures = [await watch.explain(hit)] if hit else []
    await clock.sleep(1.0)  # trailing events (conference finished, ...) land before we look
    record = await stack.service.store.get(session_id)
    result = ScenarioResult(
        scenario=scenario,
        provider=stack.provider,
        session=record.data if record else {},
        requests=[
            {"method": r.method, "path": r.path, "status": r.status, "at": r.at, "body": r.body}
            for r in stack.simulator.requests
        ],
        webhooks=[dict(event) for event in stack.simulator.events],
        started_at=started_at,
        virtual_seconds=clock.now() - started_at,
        real_seconds=time.monotonic() - real_start,
        failures=failures,
        limit=hit,
        http_calls=[call.to_dict() for call in stack.http.calls] if stack.http is not None else [],
        http_requests=list(stack.http.calls) if stack.http is not None else [],
    )
    if session_id:
        result.failures.extend(check_expectations(result))
    result.failures.extend(unexpected_http_failures(result.session))
    return result


async def _start_outbound(stack: Stack, start: OutboundStart) -> tuple[str, str | None]:
    """Start the scenario's session as a client would: ``POST /api/calls`` to the engine over HTTP. The
    session's id, or a failure saying why the API refused the request (a variable of the wrong type)."""
    flow = next(name for name, loaded in stack.service.flows.items() if loaded.outbound is not None)
    async with aiohttp.ClientSession(headers=stack.api_headers) as http, http.post(
        f"{stack.engine_url}/api/calls", data=json.dumps(start.request(flow))
    ) as answer:
        body = await answer.json(content_type=None)
    if answer.status != 201:
        return "", f"POST /api/calls answered {answer.status}: {body.get('error', body)} (start.outbound)"
    return str(body["id"]), None


@dataclass
class _Watch:
    """Waits for a scenario to be over, and says which limit stopped it if it never was."""

    stack: Stack
    session_id: str
    limits: Limits
    started_at: float
    real_start: float

    async def until_over(self) -> str | None:
        """None once the session has ended and every call is down; else the limit that was hit."""
        clock = self.stack.clock
        while True:
            record = await self.stack.service.store.get(self.session_id)
            if record is not None and record.status in ("ended", "failed") and not self.stack.live_calls():
                return None
            if clock.now() - self.started_at >= self.limits.virtual:
                return VIRTUAL_TIME
            if time.monotonic() - self.real_start >= self.limits.real:
                return REAL_TIME
            await asyncio.sleep(0.002)

    async def explain(self, hit: str) -> str:
        record = await self.stack.service.store.get(self.session_id)
        where = f'in state "{record.state}"' if record is not None else "before any session started"
        virtual = self.stack.clock.now() - self.started_at
        if hit == VIRTUAL_TIME:
            return (
                f"hit the virtual-time limit: not over after {_seconds(self.limits.virtual, 'virtual')}, "
                f"{where} (a flow that keeps going: a timer loop, a call nobody hangs up)"
            )
        return (
            f"hit the real-time limit: not over after {_seconds(self.limits.real, 'real')}, {where}, with "
            f"virtual time at {virtual:.1f} of the {self.limits.virtual:g} seconds allowed (a tight timer "
            "loop, or a machine too busy for the run)"
        )


def states_entered(session: dict[str, Any]) -> list[str]:
    """Every entry into a state, in order, from the session's trace: the initial state first, and a
    state entered again each time a transition leads back to it, from itself too (an internal
    transition, with no target, enters nothing)."""
    return [step["to"] for step in session.get("trace", []) if step.get("to") is not None]


def check_expectations(result: ScenarioResult) -> list[str]:
    expect, session = result.scenario.expect, result.session
    problems = []
    if not session:
        return ["no session was started"]
    if expect.state is not None and session.get("state") != expect.state:
        problems.append(f'ended in state "{session.get("state")}", expected "{expect.state}"')
    if expect.status is not None and session.get("status") != expect.status:
        problems.append(f'ended with status "{session.get("status")}", expected "{expect.status}"')
    entered = states_entered(session)
    if expect.states is not None and entered != list(expect.states):
        problems.append(f"went through states {entered}, expected {list(expect.states)}")
    for state, count in (expect.visits or {}).items():
        if entered.count(state) != count:
            problems.append(
                f'entered state "{state}" {_times(entered.count(state))}, expected {_times(count)}'
            )
    if expect.actions is not None and result.actions() != list(expect.actions):
        problems.append(f"actions were {result.actions()}, expected {list(expect.actions)}")
    if expect.http is not None:
        problems.extend(check_http(expect.http, result.http_requests))
    return problems


def unexpected_http_failures(session: dict[str, Any]) -> list[str]:
    """Every ``http`` action that failed without a mock's answer meaning it to (an unmocked request, a
    refusal, a real host's error, a bad URL): a scenario must not pass on a flow whose requests broke."""
    return [
        f"http action failed: {command[2]}"
        for step in session.get("trace", [])
        for command in step.get("commands", [])
        if command[0] == "http" and command[1] == "error" and MOCKED not in str(command[2])
    ]


def _times(count: int) -> str:
    return {0: "never", 1: "once", 2: "twice"}.get(count, f"{count} times")


def _seconds(amount: float, kind: str) -> str:
    return f"{amount:g} {kind} second{'' if amount == 1 else 's'}"
