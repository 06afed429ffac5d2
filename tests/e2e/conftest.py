"""Shared pieces of the Infobip end-to-end tests: the seed scenario's scripts, a run's view (the wire
requests with ids named by role, how each call ended, the session), an engine and a simulator served
separately on 127.0.0.1, and a webhook relay standing where a load balancer would."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from flowengine.config import ServiceConfig
from flowengine.runtime.clock import VirtualClock
from flowengine.scenarios.model import Scenario, parse_scenario
from flowengine.scenarios.runner import ScenarioResult, play, states_entered
from flowengine.scenarios.stack import provider_settings, running_stack, webhook_auth
from flowengine.server.app import SERVICE, create_app
from flowengine.server.service import Service
from flowengine.server.serving import serving
from flowengine.simulator.infobip.simulator import InfobipSimulator
from flowengine.simulator.parties import PartyBook
from flowengine.simulator.serve import build_simulator
from flowengine.stores.base import SessionRecord
from flowengine.testing import wipe_redis

FLOW = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"
CALLER, CALLEE, CALLER_ID = "447700900001", "447415784323", "4592457976"
GREETING = ("Hello, we are trying to connect another caller to this conference. "
            "Please wait and enjoy the sounds of nature.")
JOINING = "Another caller is joining the call now."
SORRY = "Sorry, the other party was not able to join the call. Goodbye."
# The API requests of the seed scenario, ids shown by role.
OPENING = [
    "POST /calls/1/calls/{caller}/answer",
    "POST /calls/1/conferences",
    "PUT /calls/1/conferences/{room}/call/{caller}",
    "POST /calls/1/calls/{caller}/say",  # the greeting
]
DIALING = [
    "PATCH /calls/1/conferences/{room}/call/{caller}",  # hold: muted and deaf in the room ...
    "POST /calls/1/calls/{caller}/play",  # ... hearing the hold music on their own call
    "POST /calls/1/conferences/{room}/call",  # the second party dialled into the room
]
RESUME_AND_SAY = [
    "POST /calls/1/calls/{caller}/stop-play",
    "PATCH /calls/1/conferences/{room}/call/{caller}",
    "POST /calls/1/calls/{caller}/say",  # joining, or the apology
]
CLOSE = ["POST /calls/1/conferences/{room}/hangup"]
FULL_CALL = OPENING + DIALING + RESUME_AND_SAY + CLOSE  # every branch that got as far as dialling
REDIS = "redis://127.0.0.1:6379/12"  # this suite's database
REAL_GUARD = 15.0  # seconds of wall time before a wait gives up: a hang fails, it never blocks the suite


def scenario(caller: Mapping[str, Any] | None = None, callee: Mapping[str, Any] | None = None,
             name: str = "e2e") -> Scenario:
    """The seed scenario: ``caller`` scripts the inbound call, ``callee`` the dialled second party."""
    return parse_scenario(name, {"caller": dict(caller or {}), "parties": {CALLEE: dict(callee or {})}})


# Every branch of the seed scenario: (caller script, callee script, simulator options).
BRANCHES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "callee-answers-then-hangs-up": ({}, {"answer_after": "3s", "hangup_after": "30s"}, {}),
    "callee-answers-then-caller-hangs-up": ({"hangup_after": "20s"}, {"answer_after": "3s"}, {}),
    "callee-never-answers": ({}, {"answer_after": None}, {}),
    "callee-busy": ({}, {"busy": True}, {}),
    "callee-rejects": ({}, {"reject": True, "answer_after": "4s"}, {}),
    "caller-hangs-up-while-callee-rings": ({"hangup_after": "12s"}, {"answer_after": "30s"}, {}),
    "caller-hangs-up-during-greeting": ({"hangup_after": "3s"}, {"answer_after": "3s"}, {}),
    "answer-fails": ({}, {}, {"inbound_ring_timeout": 0.01}),
}


@dataclass
class Run:
    """One finished run: what the engine asked of the platform and how everything ended."""

    session: dict[str, Any]  # as the store holds it
    requests: list[dict[str, Any]]  # every API request the simulator answered
    webhooks: list[dict[str, Any]]  # every event it delivered, with the engine's answer
    simulator: InfobipSimulator
    started_at: float  # virtual time the inbound call was placed
    virtual_seconds: float
    failures: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, result: ScenarioResult, simulator: InfobipSimulator) -> Run:
        return cls(result.session, result.requests, result.webhooks, simulator, result.started_at,
                   result.virtual_seconds, result.failures)

    @classmethod
    def observed(cls, side: Platform, record: SessionRecord, started_at: float) -> Run:
        """A run driven by hand (several engines, a relay): read straight off the simulator."""
        sim = side.simulator
        return cls(record.data, [r.to_dict() for r in sim.requests], [dict(e) for e in sim.events], sim,
                   started_at, side.clock.now() - started_at)

    def roles(self) -> dict[str, str]:
        """Platform id -> role name, from the session's own bindings."""
        return {**{v: k for k, v in self.session.get("calls", {}).items()},
                **{v: k for k, v in self.session.get("conferences", {}).items()}}

    def wire(self) -> list[str]:
        """``METHOD path`` of every command sent (reads left out: see ``reads``), ids shown as ``{role}``."""
        return [f"{r['method']} {templated(r['path'], self.roles())}" for r in self.requests
                if r["method"] != "GET"]

    def reads(self) -> list[str]:
        """The GETs the engine made (reconciliation asking what happened), ids shown as ``{role}``."""
        return [f"GET {templated(r['path'], self.roles())}" for r in self.requests if r["method"] == "GET"]

    def statuses(self) -> list[int]:
        """The answers to the commands of ``wire``, in order."""
        return [r["status"] for r in self.requests if r["method"] != "GET"]

    def said(self) -> list[str]:
        """The texts said to the caller, in order."""
        return [r["body"]["text"] for r in self.requests if r["path"].endswith("/say")]

    def steps(self) -> list[tuple[str, str | None, str]]:
        """(event, from, to) of every step that changed state."""
        return [(s["event"], s["from"], s["to"]) for s in self.session["trace"]
                if s["to"] is not None and s["to"] != s["from"]]

    def entered(self) -> list[str]:
        """The states the session went through, in order."""
        return states_entered(self.session)

    def call(self, role: str) -> tuple[str, str | None, str | None]:
        """(state, errorCode, hangupSource) of the role's call as the platform ended it."""
        call = self.simulator.calls[self.session["calls"][role]]
        return call.state, call.error_code, call.hangup_source

    def room(self) -> tuple[bool, dict[str, str]]:
        """(finished, role -> participant state) of the session's conference."""
        conference = self.simulator.conferences[self.session["conferences"]["room"]]
        roles = self.roles()
        states = {roles.get(cid, cid): p.state for cid, p in conference.participants.items()}
        return conference.finished, states

    def webhook_types(self) -> list[str]:
        return [event["body"]["type"] for event in self.webhooks]

    def at(self, index: int) -> float:
        """Virtual seconds after the call was placed at which command ``index`` (of ``wire``) was answered."""
        commands = [r for r in self.requests if r["method"] != "GET"]
        return float(commands[index]["at"]) - self.started_at


def templated(path: str, roles: Mapping[str, str]) -> str:
    for raw, role in roles.items():
        path = path.replace(raw, "{" + role + "}")
    return path


async def run_seed(case: Scenario, **stack_options: Any) -> Run:
    """Play ``case`` with engine and simulator as two servers on loopback (``running_stack`` options)."""
    async with running_stack("infobip", FLOW, parties=case.parties, **stack_options) as stack:
        result = await play(stack, case)
        assert isinstance(stack.simulator, InfobipSimulator)
        return Run.of(result, stack.simulator)


# -- serving the two sides separately ---------------------------------------------------------------
@dataclass
class Platform:
    clock: VirtualClock
    simulator: InfobipSimulator
    url: str


@dataclass
class Engine:
    app: web.Application
    url: str

    @property
    def service(self) -> Service:
        return self.app[SERVICE]

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhooks/infobip"


@asynccontextmanager
async def platform(
    parties: PartyBook | None = None, *, prepare: Callable[[web.Application], None] | None = None,
    **options: Any,
) -> AsyncIterator[Platform]:
    """The Infobip simulator alone, on its own port, with its own virtual clock (no engine yet), its
    webhooks signed with a secret of its own (``engine`` is told it); ``prepare`` may add signal handlers
    to its app before it starts."""
    clock = VirtualClock()
    clock.start()
    simulator = build_simulator("infobip", clock, "http://127.0.0.1:9/nobody-yet", parties=parties,
                                **webhook_auth("infobip", options))
    assert isinstance(simulator, InfobipSimulator)
    if prepare is not None:
        prepare(simulator.app)
    try:
        async with serving(simulator.app) as url:
            simulator.api_base_url = url
            yield Platform(clock, simulator, url)
    finally:
        await simulator.close()
        await clock.stop()


@asynccontextmanager
async def engine(side: Platform, store: str, **settings: Any) -> AsyncIterator[Engine]:
    """An engine app (as ``flowengine serve`` builds it) driving ``side``'s simulator, on its own port."""
    config = ServiceConfig(
        provider="infobip", port=0, store=store, default_flow=FLOW,
        provider_settings={**provider_settings(side.simulator, side.url), **settings},
    )
    app = create_app(config, clock=side.clock, timer_poll=None)
    async with serving(app) as url:
        yield Engine(app, url)


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Let virtual time run until ``check()`` holds (real time only guards against a hang)."""
    deadline = time.monotonic() + REAL_GUARD
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.002)


async def until_state(service: Service, session_id: str, *states: str) -> SessionRecord:
    found: list[SessionRecord] = []

    async def reached() -> bool:
        record = await service.store.get(session_id)
        if record is not None and record.state in states:
            found.append(record)
        return bool(found)

    await until(reached, f"session {session_id} in {states}")
    return found[0]


async def until_over(service: Service, side: Platform, session_id: str) -> SessionRecord:
    """Until the session has ended and every call the platform holds is over."""
    found: list[SessionRecord] = []

    async def over() -> bool:
        record = await service.store.get(session_id)
        if record is not None and record.status in ("ended", "failed") and all(
            call.ended for call in side.simulator.calls.values()
        ) and not side.simulator.webhooks.pending:
            found.append(record)
        return bool(found)

    await until(over, f"session {session_id} to end")
    await side.clock.settle()  # the last delivery is recorded once the engine has answered it
    record = await service.store.get(session_id)
    assert record is not None
    return record


async def call_in(side: Platform, service: Service, case: Scenario) -> Run:
    """Place the scenario's inbound call and wait until the session and every call are over."""
    started_at = side.clock.now()
    call_id = await side.simulator.place_inbound_call(case.caller_from, case.caller_to, case.caller)
    record = await until_over(service, side, service.session_id_for(call_id))
    return Run.observed(side, record, started_at)


# -- a relay between the platform and the engines -----------------------------------------------------
Route = Callable[[int, dict[str, Any]], Sequence[int]]


def to_first(_: int, __: dict[str, Any]) -> Sequence[int]:
    return [0]


@dataclass
class Relay:
    """Where a load balancer stands: each webhook the platform sends goes to the engines ``route`` picks
    by their index (nothing: lost on the way; the same index twice: delivered twice). With ``together``
    the copies are sent at once, else one after the other. The platform gets the first engine's answer."""

    targets: list[str] = field(default_factory=list)
    route: Route = to_first
    together: bool = False
    delivered: list[tuple[str, int, int]] = field(default_factory=list)  # (type, engine, status)
    lost: list[str] = field(default_factory=list)
    received: int = 0  # webhooks the platform sent
    _session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._relay)
        app.cleanup_ctx.append(self._client)
        return app

    async def _client(self, _: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            self._session = session
            yield

    async def _relay(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = await request.json()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        picked = list(self.route(self.received, body))
        self.received += 1
        if not picked:
            self.lost.append(body["type"])
            return web.Response(status=200)
        if self.together:
            statuses = await asyncio.gather(*(self._post(i, raw, headers, body["type"]) for i in picked))
        else:
            statuses = [await self._post(i, raw, headers, body["type"]) for i in picked]
        return web.Response(status=statuses[0])

    async def _post(self, index: int, raw: bytes, headers: Mapping[str, str], kind: str) -> int:
        assert self._session is not None
        async with self._session.post(self.targets[index], data=raw, headers=headers) as response:
            await response.read()
            self.delivered.append((kind, index, response.status))
            return response.status


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own in db 12; every key under it is removed afterwards."""
    prefix = f"fe-e2e-{uuid.uuid4().hex[:12]}:"
    yield prefix
    await wipe_redis(REDIS, prefix)
