"""What the engine writes down: every kind of step says when it happened, which event, from where to where,
what the guards said and why; a scenario run's trace limit is kept on every path; the events-handled count
the dashboard shows; and the session's own timestamps. The trace is what the API, the dashboard's timeline
and ``flowengine test``'s ``expect.states`` read, so a step with no time, no event or the wrong state is a
behaviour change, not a cosmetic one (a step with no time cannot even be loaded back from the store)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from flowengine.flow.build import build_flow
from flowengine.flow.model import Flow
from flowengine.flow.vocabulary import ALWAYS_LIMIT
from flowengine.runtime.binding import PLACED_BY, standin_id
from flowengine.runtime.engine import RING_TIMEOUT, Engine
from flowengine.runtime.events import Event
from flowengine.runtime.session import TRACE_LIMIT, Session, Step
from flowengine.testing import ManualClock, event

CALLER, AGENT = "caller-1", "call-9"
BROKEN = "vars.missing > 1"  # a guard that cannot be evaluated: false, and noted
PAD = TRACE_LIMIT + 8  # more steps than the default limit keeps

FLOW: dict[str, Any] = {
    "flow": "trace", "version": 1, "initial": "a", "vars": {"go": False},
    "states": {
        "a": {"on": {"dtmf.captured": [{"when": BROKEN, "target": "end"},
                                       {"when": "event.digits == '1'", "target": "b"}],
                     "call.finished": "end"},
              "after": {"5s": "b"}},
        "b": {"always": [{"when": BROKEN, "target": "end"}, {"when": "vars.go", "target": "c"}],
              "on": {"call.finished": "end"}},
        "c": {"on": {"call.finished": "end"}},
        "end": {"type": "final"},
    },
}

Row = tuple[float, str, str | None, str | None, tuple[tuple[str, bool], ...], str | None]


def row(step: Step) -> Row:
    return (step.at, step.event, step.source, step.target, step.guards, step.note)


@pytest.fixture
def flow() -> Flow:
    return build_flow(FLOW)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def engine(flow: Flow, clock: ManualClock) -> Engine:
    return Engine(flow, clock, trace_limit=1000)  # as a scenario run keeps every step


def padded(engine: Engine, clock: ManualClock) -> Session:
    """Started, then more unmatched events than the default trace limit keeps."""
    session, _ = engine.handle(engine.new_session("s-1"), event("call.received", call_id=CALLER))
    for _ in range(PAD):
        clock.advance(0.5)
        session, _ = engine.handle(session, event("say.finished", call_id=CALLER))
    return session


def in_b(engine: Engine, session: Session) -> Session:
    session, _ = engine.handle(session, event("dtmf.captured", call_id=CALLER, digits="1"))
    assert session.state == "b"
    return session


def with_callee(session: Session, call_id: str, state: str) -> Session:
    session.calls["callee"] = call_id
    session.call_states[call_id] = state
    return session


def guard_error(note: str | None) -> bool:
    return note == f"guard error: 'dict object' has no attribute 'missing' in '{BROKEN}'"


# Each case: how to get ready (untimed), the step to take (at a later time), and the rows it must add.
Ready = Callable[[Engine, Session], Session]
Take = Callable[[Engine, Session], Session]


def _duplicate(engine: Engine, session: Session) -> Session:
    return engine.handle(session, Event("say.finished", call_id=CALLER, event_id="twice"))[0]


def _stale_timer(engine: Engine, session: Session) -> Session:
    (due,) = engine.due_timers(session, session.updated + 1000)  # a's timer, cancelled on leaving a
    return engine.handle(in_b(engine, session), due)[0]


def _ring_timeout(name: str, *, flagged: bool) -> Event:
    return event(name, call_id=AGENT, reason="no_answer" if flagged else "cancelled",
                 data={RING_TIMEOUT: True} if flagged else {})


CASES: dict[str, tuple[Ready, Take, Callable[[float], list[Any]]]] = {
    "unmatched": (
        lambda e, s: s,
        lambda e, s: e.handle(s, event("say.finished", call_id=CALLER))[0],
        lambda t: [(t, "say.finished", "a", None, (), "unmatched")]),
    "duplicate": (
        _duplicate, _duplicate,
        lambda t: [(t, "say.finished", "a", None, (), "duplicate")]),
    "stale timer": (
        lambda e, s: s, _stale_timer,
        lambda t: [(t, "dtmf.captured", "a", "b", ((BROKEN, False), ("event.digits == '1'", True)),
                    guard_error),
                   (t, "timer", "b", None, (), "stale timer")]),
    "after the session ended": (
        lambda e, s: e.handle(s, event("call.finished", call_id=CALLER))[0],
        lambda e, s: e.handle(s, event("say.finished", call_id=CALLER))[0],
        lambda t: [(t, "say.finished", "end", None, (), "session ended")]),
    "always: a guard broke and nothing held": (
        in_b, lambda e, s: e.settle(s, Event("dtmf.captured"), 0)[0],
        lambda t: [(t, "always", "b", None, ((BROKEN, False), ("vars.go", False)), guard_error)]),
    "always taken after a guard broke": (
        in_b, lambda e, s: e.settle(_go(s), Event("dtmf.captured"), 0)[0],
        lambda t: [(t, "always", "b", "c", ((BROKEN, False), ("vars.go", True)), guard_error)]),
    "always stopped at the limit": (
        in_b, lambda e, s: e.settle(s, Event("dtmf.captured"), ALWAYS_LIMIT)[0],
        lambda t: [(t, "always", "b", "failed", (), lambda n: "eventless (always)" in (n or ""))]),
    "aborted on an event": (
        lambda e, s: s, lambda e, s: e.abort(s, "operator", Event("action.failed"))[0],
        lambda t: [(t, "action.failed", "a", "failed", (), "operator")]),
    "aborted with no event": (
        lambda e, s: s, lambda e, s: e.abort(s, "operator")[0],
        lambda t: [(t, "abort", "a", "failed", (), "operator")]),
    "a second stand-in of a ring timeout": (
        lambda e, s: e.handle(with_callee(s, AGENT, "dialing"), _ring_timeout("participant.join_failed",
                                                                               flagged=True))[0],
        lambda e, s: e.handle(s, _ring_timeout("call.failed", flagged=True))[0],
        lambda t: [(t, "call.failed", "a", None, (), "unmatched")]),
    "the platform's echo of a ring-timeout hang-up": (
        lambda e, s: e.handle(with_callee(s, AGENT, "dialing"),
                              _ring_timeout("call.failed", flagged=True))[0],
        lambda e, s: e.handle(s, _ring_timeout("call.failed", flagged=False))[0],
        lambda t: [(t, "call.failed", "a", None, (), "echo of a ring-timeout hang-up")]),
    "a call that came up after the flow let it go": (
        lambda e, s: with_callee(s, standin_id("k:1:0"), "ended"),
        lambda e, s: e.handle(s, event("call.answered", call_id="real-1", data={PLACED_BY: "k:1:0"}))[0],
        lambda t: [(t, "call.answered", "a", None, (), "came up after the flow let it go: hung up")]),
}


def _go(session: Session) -> Session:
    session.vars["go"] = True
    return session


@pytest.mark.parametrize("case", CASES)
def test_every_kind_of_step_says_when_what_and_where_and_the_limit_holds(
    engine: Engine, clock: ManualClock, case: str
) -> None:
    ready, take, expected = CASES[case]
    session = ready(engine, padded(engine, clock))
    before = len(session.trace)
    clock.advance(7)
    session = take(engine, session)
    rows = expected(clock.now())
    assert len(session.trace) == before + len(rows)  # nothing dropped: the engine's limit, not the default
    for step, want in zip(session.trace[before:], rows, strict=True):
        got = row(step)
        assert got[:5] == want[:5]
        assert want[5](got[5]) if callable(want[5]) else got[5] == want[5]
    assert session.updated == clock.now()
    # what the store keeps reads back the same
    assert Session.from_json(json.loads(json.dumps(session.to_json()))) == session


def test_a_session_started_by_another_event_records_both_steps_at_that_time(
    engine: Engine, clock: ManualClock
) -> None:
    clock.advance(3)
    session, _ = engine.handle(engine.new_session("s-1"), event("dtmf.captured", call_id=CALLER, digits="1"))
    t = clock.now()
    assert [row(step)[:4] for step in session.trace] == [
        (t, "dtmf.captured", None, "a"), (t, "dtmf.captured", "a", "b")]


def test_a_call_that_came_up_after_the_flow_let_it_go_counts_as_up_until_hung_up(engine: Engine) -> None:
    session, _ = engine.handle(engine.new_session("s-1"), event("call.received", call_id=CALLER))
    session = with_callee(session, standin_id("k:1:0"), "ended")
    came_up = event("call.answered", call_id="real-1", data={PLACED_BY: "k:1:0"})
    session, plan = engine.handle(session, came_up)
    assert session.calls["callee"] == "real-1"
    assert session.call_states["real-1"] == "up"  # so a failed session's clean-up would hang it up too
    assert [(c.action, dict(c.params)) for c in plan] == [("hangup", {"call": "callee"})]


def test_events_handled_counts_each_event_and_each_eventless_step_once(engine: Engine) -> None:
    """The dashboard's "events handled"; each step's commands are keyed by it, so it must never repeat."""
    session, _ = engine.handle(engine.new_session("s-1"), event("call.received", call_id=CALLER))
    assert session.seq == 1
    twice = event("say.finished", call_id=CALLER)
    session, _ = engine.handle(session, twice)
    session, _ = engine.handle(session, twice)  # a duplicate is not handled
    assert session.seq == 2
    session = in_b(engine, session)
    assert session.seq == 3
    session, _ = engine.settle(session, Event("dtmf.captured"), 0)  # nothing held: no step
    assert session.seq == 3
    session, _ = engine.settle(_go(session), Event("dtmf.captured"), 0)
    assert (session.state, session.seq) == ("c", 4)
    session, _ = engine.handle(session, event("say.finished", call_id=CALLER))
    assert session.seq == 5


def test_a_new_session_is_stamped_when_created_and_keeps_that_time(
    engine: Engine, clock: ManualClock
) -> None:
    session = engine.new_session("s-1")
    created = clock.now()
    assert (session.created, session.updated) == (created, created)
    assert (session.state, session.vars) == ("a", {"go": False})
    clock.advance(30)
    session, _ = engine.handle(session, event("call.received", call_id=CALLER))
    assert (session.created, session.updated) == (created, clock.now())


def test_an_engine_given_no_clock_keeps_wall_clock_time(flow: Flow) -> None:
    before = time.time()
    session = Engine(flow).new_session("s-1")
    assert before <= session.created <= time.time()
