"""The bundled two-party conference flow on Sinch: the real engine and executor drive the Sinch simulator
through the adapter, with a minimal stand-in for the service (one channel per callback, zero-delay
follow-ups through that channel before the reply, later ones on the clock).

The bundled flow uses ``stop_play``, which Sinch cannot do: ``validate --provider sinch`` says so and a
run fails at that step. Without the two ``stop_play`` lines it runs end to end on Sinch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from flowengine.flow.loader import load_flow, load_flow_or_raise
from flowengine.flow.model import Flow
from flowengine.providers.base import FollowUp, WebhookRequest
from flowengine.providers.sinch import CAPABILITIES, SinchAdapter, SinchChannel, SinchSettings
from flowengine.runtime.clock import VirtualClock
from flowengine.runtime.engine import Engine
from flowengine.runtime.events import Event
from flowengine.runtime.executor import Executor
from flowengine.runtime.session import Session
from flowengine.simulator import PartyBook, PartyScript, SinchSimulator
from flowengine.simulator.testing import serving

FLOW_FILE = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"
KEY, SECRET = "app-key", "BeIukql3pTKJ8RGL5zo0DA=="
CALLER, DID, CALLEE = "+4520000000", "+4592457976", "447415784323"  # CALLEE is the flow's vars.callee
STOP_PLAY = "      - stop_play: {call: caller}\n"


@dataclass
class MiniService:
    """Just enough of the service: sessions found by call or conference id, one lock."""

    adapter: SinchAdapter
    engine: Engine
    executor: Executor
    clock: VirtualClock
    sessions: dict[str, Session] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def callback(self, request: web.Request) -> web.Response:
        wrapped = WebhookRequest(request.method, request.path, dict(request.headers), await request.read())
        events = self.adapter.parse_webhook(wrapped)
        channel = self.adapter.channel(events[0] if events else None)
        async with self.lock:
            for event in events:
                await self._handle(event, channel)
            later = await self._drain(channel)
        reply = channel.reply()
        self._schedule(later)
        return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)

    async def _drain(self, channel: SinchChannel) -> list[FollowUp]:
        """Zero-delay follow-ups now, through the same channel (they may still add to its reply)."""
        later: list[FollowUp] = []
        while handed := channel.follow_ups():
            for follow_up in handed:
                if follow_up.delay == 0:
                    await self._handle(follow_up.event, channel)
                else:
                    later.append(follow_up)
        return later

    def _schedule(self, later: list[FollowUp]) -> None:
        for follow_up in later:
            self.clock.spawn(self._later(follow_up))

    async def _later(self, follow_up: FollowUp) -> None:
        await self.clock.sleep(follow_up.delay)
        channel = self.adapter.channel(follow_up.event)
        async with self.lock:
            await self._handle(follow_up.event, channel)
            later = await self._drain(channel)
        self._schedule(later)

    def _session_of(self, event: Event) -> Session | None:
        for session in self.sessions.values():
            if event.call_id in session.calls.values() or event.conference_id in session.conferences.values():
                return session
        if event.name == "call.received":
            return self.engine.new_session(f"s{len(self.sessions) + 1}")
        return None

    async def _handle(self, event: Event, channel: SinchChannel) -> None:
        session = self._session_of(event)
        if session is None:
            return
        session, plan = self.engine.handle(session, event)
        self.sessions[session.id] = await self.executor.run(session, plan, channel)


@dataclass
class Run:
    clock: VirtualClock
    sim: SinchSimulator
    service: MiniService

    async def call(self) -> Session:
        with self.clock.busy():
            await self.sim.place_inbound_call(CALLER, DID)
        await self.clock.run_until(self._over, limit=600, real_timeout=10)
        [session] = self.service.sessions.values()
        return session

    def _over(self) -> bool:
        sessions = list(self.service.sessions.values())
        return bool(sessions) and sessions[0].status in ("ended", "failed") and not self.sim.conferences

    def path(self, session: Session) -> list[str | None]:
        return [step.target for step in session.trace if step.target]


@asynccontextmanager
async def running(flow: Flow, callee: PartyScript) -> AsyncIterator[Run]:
    clock = VirtualClock()
    clock.start()
    holder: list[MiniService] = []

    async def callback(request: web.Request) -> web.Response:
        return await holder[0].callback(request)

    hooks = web.Application()
    hooks.router.add_post("/sinch", callback)
    try:
        async with serving(hooks) as hooks_url:
            sim = SinchSimulator(
                clock,
                callback_url=f"{hooks_url}/sinch",
                application_key=KEY,
                application_secret=SECRET,
                parties=PartyBook({CALLEE: callee}),
            )
            async with serving(sim.app) as sim_url:
                settings = SinchSettings(application_key=KEY, application_secret=SECRET, base_url=sim_url)
                adapter = SinchAdapter(settings, clock=clock)
                engine = Engine(flow, clock)
                holder.append(MiniService(adapter, engine, Executor(engine, clock=clock), clock))
                try:
                    yield Run(clock, sim, holder[0])
                finally:
                    await adapter.close()
    finally:
        await clock.stop()


@pytest.fixture
def without_stop_play() -> Flow:
    text = FLOW_FILE.read_text()
    assert text.count(STOP_PLAY) == 2
    return load_flow_or_raise(text.replace(STOP_PLAY, ""))


def test_validate_names_what_blocks_the_bundled_flow_on_sinch() -> None:
    result = load_flow(FLOW_FILE, capabilities=CAPABILITIES, provider="sinch")
    assert [(d.line, d.message) for d in result.errors] == [
        (75, 'provider "sinch" cannot perform action "stop_play"'),
        (84, 'provider "sinch" cannot perform action "stop_play"'),
    ]


async def test_bundled_flow_unchanged_fails_at_stop_play() -> None:
    async with running(load_flow_or_raise(FLOW_FILE), PartyScript(answer_after=2, hangup_after=10)) as run:
        session = await run.call()
        assert run.path(session) == [
            "answering",
            "opening_room",
            "greeting",
            "dialing",
            "connected",
            "failed",
        ]
        failing = next(step for step in session.trace if step.target == "failed")
        assert session.status == "failed" and "stop_play" in (failing.note or "")
        # The failed session hangs up what it owns: both calls and the conference.
        assert all(call.status == "FINAL" for call in run.sim.calls.values())


async def test_without_stop_play_the_callee_joins_and_talks(without_stop_play: Flow) -> None:
    async with running(without_stop_play, PartyScript(answer_after=2, hangup_after=10)) as run:
        session = await run.call()
        assert run.path(session) == [
            "answering",
            "opening_room",
            "greeting",
            "dialing",
            "connected",
            "closing",
        ]
        assert session.status == "ended"
        ice = run.sim.events[0]
        assert ice["reply"]["instructions"] == [{"name": "answer"}]
        assert ice["reply"]["action"]["name"] == "connectConf"
        legs = [r.body["instructions"][0]["name"] for r in run.sim.requests if "/leg/" in r.path]
        assert legs == ["say", "playFiles", "say"]  # greeting, hold music, "another caller is joining"
        callee = session.calls["callee"]
        assert run.sim.calls[callee].reason == "CALLEEHANGUP"


async def test_without_stop_play_a_callee_who_never_answers_gets_an_apology(without_stop_play: Flow) -> None:
    async with running(without_stop_play, PartyScript(answer_after=None)) as run:
        session = await run.call()
        assert run.path(session) == [
            "answering",
            "opening_room",
            "greeting",
            "dialing",
            "callee_unavailable",
            "closing",
        ]
        caller = session.calls["caller"]
        assert (run.sim.calls[caller].result, run.sim.calls[caller].reason) == ("ANSWERED", "MANAGERHANGUP")
        said = [
            step.get("text")
            for r in run.sim.requests
            if r.path.endswith("/leg/caller")
            for step in r.body["instructions"]
        ]
        assert said[-1].startswith("Sorry, the other party")
