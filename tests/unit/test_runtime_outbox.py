"""Write-ahead plans: the store knows what the engine meant to send before it is sent, and an interrupted
plan is finished from its first command not known done, by whoever handles the session next."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from flowengine.errors import ConflictError
from flowengine.flow.loader import load_flow_or_raise
from flowengine.flow.model import Flow
from flowengine.runtime.commands import Plan
from flowengine.runtime.dispatcher import Dispatcher
from flowengine.runtime.engine import Engine
from flowengine.runtime.events import Event
from flowengine.runtime.executor import RESUME_AFTER, Executor
from flowengine.runtime.outbox import (
    OUTBOX_TIMER,
    advance,
    event_from_json,
    event_to_json,
    pending,
    write_ahead,
)
from flowengine.runtime.session import Session
from flowengine.server.sessions import to_record
from flowengine.testing import ManualClock, RecordingProvider, event

FLOW_FILE = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"
CALLER = "caller-1"


class Crash(BaseException):
    """The engine process dying: nothing in the engine catches it."""


class Store:
    """Sessions as JSON text. ``crash_at`` makes the n-th save (1-based) die before it writes, which is
    the engine killed between a command and the write that records it; ``conflict_at`` makes it refuse
    the write as a store does when another instance wrote the session first."""

    def __init__(self) -> None:
        self.docs: dict[str, str] = {}
        self.saves = 0
        self.crash_at: int | None = None
        self.conflict_at: int | None = None
        self.log: list[tuple[str, int | None]] = []  # ("save", outbox next) in order

    async def load(self, session_id: str) -> Session | None:
        await asyncio.sleep(0)
        doc = self.docs.get(session_id)
        return None if doc is None else Session.from_json(json.loads(doc))

    async def save(self, session: Session) -> None:
        self.saves += 1
        if self.saves == self.crash_at:
            raise Crash
        if self.saves == self.conflict_at:
            raise ConflictError("another instance wrote the session first")
        self.log.append(("save", session.outbox["next"] if session.outbox else None))
        self.docs[session.id] = json.dumps(session.to_json())


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow_or_raise(FLOW_FILE)


def engine_on(store: Store, flow: Flow, clock: ManualClock) -> tuple[Dispatcher, RecordingProvider]:
    """A fresh engine process on the same store: its own executor, provider and locks."""
    provider = RecordingProvider()
    return Dispatcher(Executor(Engine(flow, clock)), provider, store.load, store.save), provider


async def crashed_after_create(
    flow: Flow, answered: Event | None = None
) -> tuple[Store, ManualClock, RecordingProvider]:
    """An engine killed between sending conference_create and the write that records it (the write
    before conference_join dies): the store holds the plan with its next command at conference_create."""
    store, clock = Store(), ManualClock()
    first, sent = engine_on(store, flow, clock)
    await first.dispatch("s", event("call.received", call_id=CALLER))
    store.crash_at = store.saves + 2
    with pytest.raises(Crash):
        await first.dispatch("s", answered or event("call.answered", call_id=CALLER))
    return store, clock, sent


async def to_greeting(d: Dispatcher) -> Session:
    await d.dispatch("s", event("call.received", call_id=CALLER))
    return await d.dispatch("s", event("call.answered", call_id=CALLER))


async def test_each_command_is_written_ahead_before_it_is_sent(flow: Flow) -> None:
    store, clock = Store(), ManualClock()
    d, provider = engine_on(store, flow, clock)
    sent_before: list[int] = []
    original = store.save

    async def save(session: Session) -> None:
        sent_before.append(len(provider.calls))
        await original(session)

    d._save = save  # the executor's checkpoints go through the dispatcher's save
    session = await to_greeting(d)
    assert session.outbox is None
    commands = provider.actions
    assert commands == ["answer", "conference_create", "conference_join"]
    # call.received: a write before "answer" (next 0), the final save; call.answered: a write before each
    # of its two commands (next 0, next 1), then the final save.
    assert store.log == [("save", 0), ("save", None), ("save", 0), ("save", 1), ("save", None)]
    assert sent_before == [0, 1, 1, 2, 3]  # every command's write happened before it was sent
    stored = Session.from_json(json.loads(store.docs["s"]))
    assert stored.outbox is None and stored.state == session.state


@pytest.mark.parametrize("redeliver", [True, False], ids=["redelivered", "next-event"])
async def test_a_crash_between_a_command_and_its_record_resumes_at_that_command(
    flow: Flow, redeliver: bool
) -> None:
    answered = event("call.answered", call_id=CALLER)
    store, clock, sent_first = await crashed_after_create(flow, answered)
    assert sent_first.actions == ["answer", "conference_create"]
    interrupted = Session.from_json(json.loads(store.docs["s"]))
    assert interrupted.outbox is not None and interrupted.outbox["next"] == 0

    second, sent_second = engine_on(store, flow, clock)  # restarted, same store
    session = await second.dispatch("s", answered if redeliver else event("say.finished", call_id=CALLER))
    # conference_create's outcome was never recorded: resumed there (the provider reconciles it); the
    # answer, recorded before the crash, is not sent again; the redelivered event is a duplicate.
    assert sent_second.actions[:2] == ["conference_create", "conference_join"]
    assert "answer" not in sent_second.actions
    assert session.outbox is None
    assert session.conferences["room"] == "conf-1"
    if redeliver:
        assert sent_second.actions == ["conference_create", "conference_join"]


async def test_the_timer_loop_resumes_a_plan_nobody_came_back_for(flow: Flow) -> None:
    store, clock, _ = await crashed_after_create(flow)
    record = to_record(Session.from_json(json.loads(store.docs["s"])))
    assert record.timers[OUTBOX_TIMER] == pytest.approx(clock.now() + RESUME_AFTER)

    second, sent = engine_on(store, flow, clock)
    clock.advance(RESUME_AFTER)
    session = await second.fire_timers("s")
    assert session is not None and session.outbox is None
    assert sent.actions == ["conference_create", "conference_join"]
    assert OUTBOX_TIMER not in to_record(session).timers
    assert Session.from_json(json.loads(store.docs["s"])).outbox is None  # saved though no timer was due
    await second.fire_timers("s")
    assert sent.actions == ["conference_create", "conference_join"]


async def test_a_resume_warns_where_the_plan_was_taken_up(
    flow: Flow, caplog: pytest.LogCaptureFixture
) -> None:
    store, clock, _ = await crashed_after_create(flow)
    second, _ = engine_on(store, flow, clock)
    with caplog.at_level(logging.WARNING, logger="flowengine.flow"):
        await second.finish_pending("s")
    assert [r.getMessage() for r in caplog.records if r.name == "flowengine.flow"] == [
        "s: resuming an interrupted plan at command 1 of 2 (conference_create)"]


@pytest.mark.parametrize("way", ["dispatch", "fire_timers", "finish_pending", "dispatch_derived"])
async def test_a_plan_is_resumed_through_the_provider_the_call_brings(flow: Flow, way: str) -> None:
    store, clock, _ = await crashed_after_create(flow)
    given = RecordingProvider()
    second = Dispatcher(Executor(Engine(flow, clock)), None, store.load, store.save)  # no default provider
    if way == "dispatch":
        await second.dispatch("s", event("call.answered", call_id=CALLER), provider=given)
    elif way == "fire_timers":
        clock.advance(RESUME_AFTER)
        await second.fire_timers("s", provider=given)
    elif way == "finish_pending":
        await second.finish_pending("s", provider=given)
    else:  # reconciliation that finds nothing missed still finishes the plan, and saves it
        assert await second.dispatch_derived("s", lambda session: [], provider=given) == []
    assert Session.from_json(json.loads(store.docs["s"])).outbox is None
    await second.finish_pending("s", provider=given)  # finished and saved: nothing is sent twice
    assert given.actions == ["conference_create", "conference_join"]


async def test_a_plan_is_resumed_once_when_an_event_and_reconciliation_come_together(flow: Flow) -> None:
    store, clock, _ = await crashed_after_create(flow)
    provider = RecordingProvider(yield_control=True)  # each command awaits, letting the other in
    second = Dispatcher(Executor(Engine(flow, clock)), provider, store.load, store.save)
    await asyncio.gather(second.dispatch("s", event("say.finished", call_id=CALLER)),
                         second.finish_pending("s"))
    assert provider.actions[:2] == ["conference_create", "conference_join"]
    assert provider.actions.count("conference_create") == 1


async def test_a_resumed_plan_records_its_progress_so_a_second_crash_resumes_after_it(flow: Flow) -> None:
    store, clock, _ = await crashed_after_create(flow)
    second, sent_second = engine_on(store, flow, clock)
    store.crash_at = store.saves + 3  # the writes before conference_create and conference_join, not the last
    with pytest.raises(Crash):
        await second.finish_pending("s")
    assert sent_second.actions == ["conference_create", "conference_join"]
    third, sent_third = engine_on(store, flow, clock)
    await third.finish_pending("s")
    assert sent_third.actions == ["conference_join"]  # conference_create's outcome was recorded


async def test_a_refused_write_ahead_sends_nothing(flow: Flow) -> None:
    """Fencing: an instance whose write is refused (another wrote the session since) stops before the
    command it was about to send."""
    store, clock = Store(), ManualClock()
    d, provider = engine_on(store, flow, clock)
    await d.dispatch("s", event("call.received", call_id=CALLER))
    store.conflict_at = store.saves + 2  # the write before conference_join
    with pytest.raises(ConflictError):
        await d.dispatch("s", event("call.answered", call_id=CALLER))
    assert provider.actions == ["answer", "conference_create"]


async def test_a_failure_plan_replaces_the_failed_one_in_the_outbox(flow: Flow) -> None:
    store, clock = Store(), ManualClock()
    d, provider = engine_on(store, flow, clock)
    await d.dispatch("s", event("call.received", call_id=CALLER))
    provider.fail("conference_create")
    session = await d.dispatch("s", event("call.answered", call_id=CALLER))
    assert session.outbox is None
    assert provider.actions[:2] == ["answer", "conference_create"]
    stored = Session.from_json(json.loads(store.docs["s"]))
    assert stored.outbox is None and stored.state == session.state


def test_an_event_survives_the_outbox_round_trip() -> None:
    """Templates of a resumed plan see the event they answered, every field of it."""
    original = Event(
        "dtmf.captured", call_id=CALLER, conference_id="r1", call="caller", conference="room",
        reason="timeout", digits="12", data={"x": [1]}, raw={"type": "DTMF_CAPTURED"}, event_id="e-1",
        at=1_767_225_600.5,
    )
    again = event_from_json(json.loads(json.dumps(event_to_json(original))))
    assert again == original
    assert event_to_json(None) is None


def test_a_plan_survives_the_outbox_round_trip(flow: Flow) -> None:
    engine = Engine(flow, ManualClock())
    session, _ = engine.handle(engine.new_session("s"), event("call.received", call_id=CALLER))
    _, plan = engine.handle(session, event("call.answered", call_id=CALLER))
    doc = json.loads(json.dumps(write_ahead(plan, 1, 2, 123.0)))
    left = pending(doc)
    assert [(c.action, dict(c.params), c.origin) for c in left.plan] == [
        (c.action, dict(c.params), c.origin) for c in plan
    ]
    assert (left.next, left.failures, left.plan.event) == (1, 2, plan.event)
    assert pending(json.loads(json.dumps(write_ahead(Plan(list(plan)), 0, 0, 1.0)))).plan.event is None
    moved = advance(doc, 2, 456.0)
    assert (pending(moved).next, moved["due"], moved["commands"]) == (2, 456.0, doc["commands"])


async def test_a_deferred_event_survives_a_restart_and_fires_once_when_due(flow: Flow) -> None:
    """Sinch's derived follow-ups (an implicit answer, say finished) wait in the store, not in memory."""
    store, clock = Store(), ManualClock()
    first, _ = engine_on(store, flow, clock)
    await first.dispatch("s", event("call.received", call_id=CALLER))
    answered = event("call.answered", call_id=CALLER, event_id="ice-1>1")
    await first.defer("s", answered, clock.now() + 2.0)
    stored = Session.from_json(json.loads(store.docs["s"]))
    assert to_record(stored).timers["ice-1>1"] == pytest.approx(clock.now() + 2.0)

    second, sent = engine_on(store, flow, clock)  # restarted before it was due
    clock.advance(1.0)
    session = await second.fire_timers("s")
    assert session is not None and session.state == "answering" and sent.actions == []
    clock.advance(1.0)
    session = await second.fire_timers("s")
    assert session is not None and session.deferred == {}
    assert sent.actions == ["conference_create", "conference_join"]
    session = await second.fire_timers("s")  # fired once: nothing left
    assert sent.actions == ["conference_create", "conference_join"]
    assert "ice-1>1" not in to_record(session).timers  # type: ignore[arg-type]


async def test_finish_pending_resumes_an_interrupted_plan_and_nothing_else(flow: Flow) -> None:
    """Reconciliation finishes a plan cut short first, so what its dial created is bound and asked about."""
    store, clock, _ = await crashed_after_create(flow)
    second, sent = engine_on(store, flow, clock)
    await second.finish_pending("s")
    assert sent.actions == ["conference_create", "conference_join"]
    assert Session.from_json(json.loads(store.docs["s"])).outbox is None
    saves = store.saves
    await second.finish_pending("s")  # nothing pending: no command, no write
    await second.finish_pending("nobody")
    assert (sent.actions, store.saves) == (["conference_create", "conference_join"], saves)
