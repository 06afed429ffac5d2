"""Play a scenario: place its inbound call, let virtual time run until the session and every call are
over, then compare what happened with what the scenario expects."""

from __future__ import annotations

import asyncio
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowengine.scenarios.model import Scenario
from flowengine.scenarios.stack import Stack, running_stack

VIRTUAL_LIMIT = 4 * 3600.0  # a scenario that has not finished after 4 virtual hours never will
REAL_LIMIT = 30.0


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
    provider: str, flow: Path, scenario: Scenario, *, store: str | None = None
) -> ScenarioResult:
    """Play ``scenario`` on a fresh stack. ``store`` defaults to the service's default kind, a SQLite
    file: a new one in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="flowengine-") as folder:
        url = store or f"sqlite:///{folder}/sessions.db"
        # Ids are reproducible per scenario and differ between scenarios, so runs sharing a store
        # (--store) never meet each other's sessions.
        seed = zlib.crc32(f"{provider}:{flow.name}:{scenario.name}".encode())
        async with running_stack(
            provider, flow, store=url, parties=scenario.parties, simulator_options={"seed": seed}
        ) as stack:
            return await play(stack, scenario)


async def play(stack: Stack, scenario: Scenario) -> ScenarioResult:
    clock, real_start = stack.clock, time.monotonic()
    started_at = clock.now()
    call_id = await stack.simulator.place_inbound_call(
        scenario.caller_from, scenario.caller_to, scenario.caller
    )
    session_id = stack.service.session_id_for(call_id)
    failures: list[str] = []
    if not await _until_over(stack, session_id, started_at, real_start):
        failures.append(f"did not finish within {VIRTUAL_LIMIT:.0f} virtual seconds")
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
    )
    result.failures.extend(check_expectations(result))
    return result


async def _until_over(stack: Stack, session_id: str, started_at: float, real_start: float) -> bool:
    while stack.clock.now() - started_at < VIRTUAL_LIMIT and time.monotonic() - real_start < REAL_LIMIT:
        record = await stack.service.store.get(session_id)
        if record is not None and record.status in ("ended", "failed") and not stack.live_calls():
            return True
        await asyncio.sleep(0.002)
    return False


def states_entered(session: dict[str, Any]) -> list[str]:
    """The states the session entered, in order, from its trace."""
    return [
        step["to"]
        for step in session.get("trace", [])
        if step.get("to") is not None and step.get("to") != step.get("from")
    ]


def check_expectations(result: ScenarioResult) -> list[str]:
    expect, session = result.scenario.expect, result.session
    problems = []
    if not session:
        return ["no session was started"]
    if expect.state is not None and session.get("state") != expect.state:
        problems.append(f'ended in state "{session.get("state")}", expected "{expect.state}"')
    if expect.status is not None and session.get("status") != expect.status:
        problems.append(f'ended with status "{session.get("status")}", expected "{expect.status}"')
    if expect.states is not None and states_entered(session) != list(expect.states):
        problems.append(f"went through states {states_entered(session)}, expected {list(expect.states)}")
    if expect.actions is not None and result.actions() != list(expect.actions):
        problems.append(f"actions were {result.actions()}, expected {list(expect.actions)}")
    return problems
