"""Engine.handle: plans in order, internal and reflexive transitions, guards, timers, duplicates, sessions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowengine.errors import StoreError
from flowengine.flow.build import build_flow
from flowengine.flow.model import Flow
from flowengine.runtime.engine import Engine, timer_event
from flowengine.runtime.events import Event
from flowengine.runtime.session import SEEN_LIMIT, TRACE_LIMIT, Session
from flowengine.testing import ManualClock, drive, event

CALLER = "caller-1"


def log(message: str) -> dict[str, Any]:
    return {"log": {"message": message}}


ORDER = {
    "flow": "order",
    "version": 3,
    "initial": "a",
    "vars": {"count": 0},
    "on": {"call.finished": {"target": "end", "when": "event.call == 'caller'"}},
    "states": {
        "a": {
            "entry": [log("enter a")],
            "exit": [log("exit a")],
            "on": {
                "dtmf.captured": [
                    {"when": "event.digits == '1'", "target": "b", "actions": [log("a to b")]},
                    {"when": "event.digits == '2'", "actions": [{"set": {"count": "{{ vars.count + 1 }}"}}]},
                    {"target": "a", "actions": [log("again")]},
                ],
            },
            "after": {"5s": "b"},
        },
        "b": {
            "entry": [log("enter b")],
            "on": {"call.finished": "end", "say.finished": {"target": "end", "when": "vars.missing == 1"}},
        },
        "end": {"type": "final"},
    },
}


@pytest.fixture
def flow() -> Flow:
    return build_flow(ORDER)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def engine(flow: Flow, clock: ManualClock) -> Engine:
    return Engine(flow, clock)


def started(engine: Engine) -> Session:
    session, _ = engine.handle(engine.new_session("s-1"), event("call.received", call_id=CALLER))
    return session


def messages(commands: list[Any]) -> list[Any]:
    return [c.params.get("message", c.action) for c in commands]


def test_call_received_starts_the_session_and_binds_the_caller(engine: Engine) -> None:
    session, plan = engine.handle(engine.new_session("s-1"), event("call.received", call_id=CALLER))
    assert (session.state, session.status) == ("a", "active")
    assert session.calls == {"caller": CALLER}
    assert messages(plan) == ["enter a"]
    assert plan.event is not None and plan.event.call == "caller"
    assert [(s.event, s.source, s.target) for s in session.trace] == [("call.received", None, "a")]


def test_plan_is_exit_then_transition_then_entry(engine: Engine) -> None:
    session, plan = engine.handle(started(engine), event("dtmf.captured", call_id=CALLER, digits="1"))
    assert messages(plan) == ["exit a", "a to b", "enter b"]
    assert [c.origin for c in plan] == [
        "states.a.exit[0]",
        "states.a.on.dtmf.captured[0].actions[0]",
        "states.b.entry[0]",
    ]
    assert session.state == "b"
    assert session.trace[-1].guards == (("event.digits == '1'", True),)


def test_internal_transition_runs_actions_only_and_keeps_timers(engine: Engine) -> None:
    before = started(engine)
    session, plan = engine.handle(before, event("dtmf.captured", call_id=CALLER, digits="2"))
    assert [c.action for c in plan] == ["set"]
    assert session.state == "a"
    assert session.timers == before.timers
    assert session.trace[-1].guards == (("event.digits == '1'", False), ("event.digits == '2'", True))


def test_reflexive_transition_exits_reenters_and_rearms(engine: Engine, clock: ManualClock) -> None:
    before = started(engine)
    clock.advance(2)
    session, plan = engine.handle(before, event("dtmf.captured", call_id=CALLER, digits="9"))
    assert messages(plan) == ["exit a", "again", "enter a"]
    assert list(session.timers) != list(before.timers)
    assert [due for _, _, due in session.timers.values()] == [clock.now() + 5]


def test_state_handler_overrides_flow_level_handler(engine: Engine) -> None:
    session, _ = engine.handle(started(engine), event("dtmf.captured", call_id=CALLER, digits="1"))
    # In b, b's own unguarded call.finished applies even for a call that is not the caller.
    session, _ = engine.handle(session, event("call.finished", call_id="stranger"))
    assert (session.state, session.status) == ("end", "ended")


def test_flow_level_handler_applies_where_the_state_has_none(engine: Engine) -> None:
    session, plan = engine.handle(started(engine), event("call.finished", call_id=CALLER))
    assert (session.state, session.status, messages(plan)) == ("end", "ended", ["exit a"])
    assert session.timers == {}


def test_unmatched_event_is_recorded_and_dropped(engine: Engine) -> None:
    before = started(engine)
    session, plan = engine.handle(before, event("recording.ready", call_id=CALLER))
    assert plan == [] and session.state == "a"
    step = session.trace[-1]
    assert (step.event, step.source, step.target, step.note) == ("recording.ready", "a", None, "unmatched")


def test_guard_that_fails_to_render_is_false_and_noted(engine: Engine) -> None:
    session, _ = engine.handle(started(engine), event("dtmf.captured", call_id=CALLER, digits="1"))
    session, plan = engine.handle(session, event("say.finished", call_id=CALLER))
    assert plan == [] and session.state == "b"
    assert session.trace[-1].guards == (("vars.missing == 1", False),)
    assert "guard error" in (session.trace[-1].note or "")


def test_duplicates_by_id_and_by_content_are_not_acted_on(engine: Engine) -> None:
    session = started(engine)
    by_id = Event("dtmf.captured", call_id=CALLER, digits="2", event_id="provider-7")
    session, first = engine.handle(session, by_id)
    session, again = engine.handle(
        session, Event("dtmf.captured", call_id=CALLER, digits="1", event_id="provider-7")
    )
    assert len(first) == 1 and again == [] and session.state == "a"
    by_content = Event("dtmf.captured", call_id=CALLER, digits="2", raw={"callId": CALLER, "seq": 5})
    session, first = engine.handle(session, by_content)
    session, again = engine.handle(
        session, Event("dtmf.captured", call_id=CALLER, digits="2", raw={"callId": CALLER, "seq": 5})
    )
    assert len(first) == 1 and again == []
    assert [s.note for s in session.trace[-4:]] == [None, "duplicate", None, "duplicate"]


def test_handle_does_not_touch_the_session_it_is_given(engine: Engine) -> None:
    before = started(engine)
    snapshot = json.dumps(before.to_json())
    engine.handle(before, event("dtmf.captured", call_id=CALLER, digits="1"))
    assert json.dumps(before.to_json()) == snapshot


def test_first_event_other_than_call_received_starts_then_is_handled(engine: Engine) -> None:
    session, plan = engine.handle(engine.new_session("s-1"), event("dtmf.captured", digits="1"))
    assert messages(plan) == ["enter a", "exit a", "a to b", "enter b"]
    assert session.state == "b" and session.calls == {}


def test_roles_are_resolved_from_ids(engine: Engine) -> None:
    session = started(engine)
    _, plan = engine.handle(session, event("dtmf.captured", call_id=CALLER, digits="2"))
    assert plan.event is not None and plan.event.call == "caller"
    _, plan = engine.handle(session, event("dtmf.captured", call_id="unknown", call="caller", digits="2"))
    assert plan.event is not None and plan.event.call is None  # an id the session does not own has no role


def test_timers_due_fired_and_stale(engine: Engine) -> None:
    session = started(engine)
    t0 = engine.clock.now()
    assert engine.next_wakeup(session) == t0 + 5
    assert engine.due_timers(session, t0 + 4.9) == []
    (due,) = engine.due_timers(session, t0 + 5)
    assert due.name == "timer" and due.at == t0 + 5
    fired, plan = engine.handle(session, due)
    assert fired.state == "b" and messages(plan) == ["exit a", "enter b"]
    assert fired.trace[-1].event == "after:a:5s"
    # The same timer delivered again is a duplicate; a cancelled one is stale.
    again, plan = engine.handle(fired, due)
    assert plan == [] and again.trace[-1].note == "duplicate"
    moved, _ = engine.handle(session, event("dtmf.captured", call_id=CALLER, digits="1"))
    assert moved.timers == {} and engine.next_wakeup(moved) is None
    stale, plan = engine.handle(moved, due)
    assert plan == [] and stale.state == "b" and stale.trace[-1].note == "stale timer"
    unknown, plan = engine.handle(moved, timer_event("no-such-timer"))
    assert plan == [] and unknown.trace[-1].note == "stale timer"


def test_abort_hangs_up_what_the_session_still_owns(engine: Engine) -> None:
    session = started(engine)
    session.calls["other"] = "call-9"
    session.call_states["call-9"] = "ended"
    session.conferences["room"] = "conf-1"
    failed, plan = engine.abort(session, "operator said so")
    assert [(c.action, dict(c.params)) for c in plan] == [
        ("hangup", {"call": "caller"}),
        ("conference_hangup", {"conference": "room"}),
    ]
    assert (failed.state, failed.status, failed.timers) == ("failed", "failed", {})
    assert failed.trace[-1].note == "operator said so"


def test_trace_and_seen_keys_are_bounded(engine: Engine) -> None:
    session = started(engine)
    for n in range(100):
        digit = event("dtmf.captured", call_id=CALLER, digits="2", event_id=f"d{n}")
        session, _ = engine.handle(session, digit)
    assert len(session.trace) == TRACE_LIMIT
    assert len(session.seen) == SEEN_LIMIT
    assert "id:d99" in session.seen and "id:d0" not in session.seen


async def test_session_json_round_trip_continues_identically(flow: Flow) -> None:
    driver = await drive(
        flow, [event("call.received", call_id=CALLER), event("dtmf.captured", call_id=CALLER, digits="2")]
    )
    doc = driver.session.to_json()
    assert doc["schema_version"] == 1
    restored = Session.from_json(json.loads(json.dumps(doc)))
    assert restored == driver.session
    nxt = event("dtmf.captured", call_id=CALLER, digits="1")
    left, left_plan = driver.engine.handle(driver.session, nxt)
    right, right_plan = driver.engine.handle(restored, nxt)
    assert left == right and left_plan == right_plan
    assert restored.vars["count"] == 1


def test_session_json_rejects_other_schema_versions() -> None:
    with pytest.raises(StoreError, match="schema_version"):
        Session.from_json({"schema_version": 99})
    with pytest.raises(StoreError, match="unreadable"):
        Session.from_json({"schema_version": 1, "id": "x"})


def test_trace_limit_is_the_engines_to_choose(flow: Flow) -> None:
    from flowengine.runtime.session import TRACE_LIMIT

    noise = [event("dtmf.captured", call_id="c", digits="2") for _ in range(TRACE_LIMIT + 5)]
    for limit, kept in ((3, 3), (TRACE_LIMIT, TRACE_LIMIT), (1000, TRACE_LIMIT + 6)):
        engine = Engine(flow, ManualClock(), trace_limit=limit)
        session, _ = engine.handle(engine.new_session("s"), event("call.received", call_id="c"))
        for item in noise:
            session, _ = engine.handle(session, item)
        assert len(session.trace) == kept
        assert session.trace[-1].event == "dtmf.captured"
