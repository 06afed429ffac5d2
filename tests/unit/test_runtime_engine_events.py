"""What a flow sees of an event and of its calls: role names and every field of a resolved event, the
states of its calls and conferences as events arrive, the event that led into a state reaching that
state's ``always`` guards and every template of the plan, the ``always`` limit counted from the first
step, and timers of a state that ``always`` left at once."""

from __future__ import annotations

from typing import Any

import pytest

from flowengine.flow.build import build_flow
from flowengine.flow.model import Flow
from flowengine.flow.vocabulary import ALWAYS_LIMIT
from flowengine.runtime.engine import RING_TIMEOUT, Engine
from flowengine.testing import Advance, ManualClock, drive, event

CALLER, AGENT, ROOM = "caller-1", "call-1", "conf-1"  # RecordingProvider hands out call-1, conf-1
RECEIVED = event("call.received", call_id=CALLER)
STATES = "caller={{ caller.state }} agent={{ agent.state }} room={{ room.state }}"


def flow_of(states: dict[str, Any], **top: Any) -> Flow:
    return build_flow({"flow": "t", "version": 1, "initial": "start", "vars": top.pop("vars", {}),
                       "states": {**states, "end": {"type": "final"}}, **top})


def logged(driver: Any) -> str | None:
    """What the last step's ``log`` action wrote (its trace detail)."""
    return driver.session.trace[-1].commands[-1][2]


# -- the states of what the session owns ---------------------------------------------------------------------
async def test_a_flow_sees_its_calls_and_conference_come_up_and_end() -> None:
    probe = {"actions": [{"log": {"message": STATES}}]}
    names = ("call.answered", "participant.joined", "participant.join_failed", "call.finished", "call.failed",
             "conference.finished", "dtmf.captured")
    flow = flow_of({"start": {"entry": [{"dial": {"to": "4477", "as": "agent"}},
                                        {"conference_create": {"as": "room"}}]}},
                   on={name: probe for name in names})
    driver = await drive(flow, [RECEIVED, event("dtmf.captured", call_id=CALLER)])
    assert logged(driver) == "caller=ringing agent=dialing room=active"
    steps = [
        (event("call.answered", call_id=CALLER), "caller=up agent=dialing room=active"),
        (event("participant.joined", call_id=AGENT, conference_id=ROOM), "caller=up agent=up room=active"),
        # a call that is up stays up when a join fails
        (event("participant.join_failed", call_id=CALLER, conference_id=ROOM),
         "caller=up agent=up room=active"),
        (event("call.finished", call_id=AGENT), "caller=up agent=ended room=active"),
        # a late event about a call that has ended does not bring it back
        (event("participant.joined", call_id=AGENT, conference_id=ROOM), "caller=up agent=ended room=active"),
        (event("call.failed", call_id=CALLER), "caller=ended agent=ended room=active"),
        (event("conference.finished", conference_id=ROOM), "caller=ended agent=ended room=ended"),
    ]
    for sent, seen in steps:
        await driver.send(sent)
        assert logged(driver) == seen, sent.name
    # what has ended is not hung up again when the session fails
    _, plan = driver.engine.abort(driver.session, "stop")
    assert list(plan) == []


async def test_events_about_calls_and_conferences_the_session_does_not_own_change_nothing() -> None:
    nothing = {"actions": []}
    flow = flow_of({"start": {"entry": [{"dial": {"to": "4477", "as": "agent"}}],
                              "on": {"call.finished": nothing, "conference.finished": nothing}}})
    driver = await drive(flow, [RECEIVED])
    before = (dict(driver.session.call_states), dict(driver.session.conference_states))
    await driver.play([event("call.answered", call_id="stranger"), event("call.finished", call_id="stranger"),
                       event("conference.finished", conference_id="other-room")])
    assert (driver.session.call_states, driver.session.conference_states) == before


async def test_only_call_received_binds_the_caller() -> None:
    flow = flow_of({"start": {"on": {"call.finished": "end"}}})
    engine = Engine(flow, ManualClock())
    session, _ = engine.handle(engine.new_session("s"), event("call.answered", call_id="outbound-1"))
    assert (session.status, session.calls, session.call_states) == ("active", {}, {})


# -- what a flow reads of a resolved event -------------------------------------------------------------------
async def test_a_resolved_event_keeps_its_reason_ids_and_roles() -> None:
    busy = "event.call == 'agent' and event.reason == 'busy'"
    seen = "{{ event.conference }} {{ event.conference_id }} {{ event.reason }}"
    flow = flow_of({
        "start": {"entry": [{"conference_create": {"as": "room"}}, {"dial": {"to": "4477", "as": "agent"}}],
                  "on": {"call.failed": {"target": "busy", "when": busy}}},
        "busy": {"on": {"conference.finished": {"target": "end", "when": "event.conference == 'room'",
                                                "actions": [{"log": {"message": seen}}]}}},
    })
    driver = await drive(flow, [RECEIVED, event("call.failed", call_id=AGENT, reason="busy")])
    assert driver.session.state == "busy"
    await driver.send(event("conference.finished", conference_id=ROOM, reason="hangup"))
    assert driver.session.state == "end"
    assert driver.session.trace[-1].commands == (("log", "ok", f"room {ROOM} hangup"),)


async def test_a_failed_action_keeps_the_role_it_names_when_that_role_has_no_call_yet() -> None:
    flow = flow_of({
        "start": {"entry": [{"say": {"call": "agent", "text": "hi"}}],  # agent is not bound yet
                  "on": {"action.failed": {"target": "recover", "when": "event.call == 'agent'"}}},
        "recover": {"on": {"call.finished": "end"}},
    })
    driver = await drive(flow, [RECEIVED])
    assert (driver.session.state, driver.session.status) == ("recover", "active")


# -- the event that led into a state reaches its ``always`` and every template ------------------------------
MENU = {
    "start": {"on": {"dtmf.captured": {"target": "check",
                                       "actions": [{"set": {"pressed": "{{ event.digits }}"}}]}}},
    "check": {"always": [{"target": "sales", "when": "event.digits == '1'",
                          "actions": [{"set": {"routed": "{{ event.digits }}"}}]},
                         {"target": "start"}]},
    "sales": {"entry": [{"set": {"heard": "{{ event.digits }}"}}],
              "always": {"target": "end", "when": "event.digits == '1'"}},
}


async def test_always_guards_and_actions_see_the_event_that_led_there() -> None:
    driver = await drive(flow_of(MENU), [RECEIVED, event("dtmf.captured", call_id=CALLER, digits="1")])
    assert driver.session.vars == {"pressed": "1", "routed": "1", "heard": "1"}
    assert (driver.session.state, driver.session.status) == ("end", "ended")
    driver = await drive(flow_of(MENU), [RECEIVED, event("dtmf.captured", call_id=CALLER, digits="2")])
    assert (driver.session.state, driver.session.vars) == ("start", {"pressed": "2"})


async def test_a_session_started_by_another_event_shows_it_to_its_first_plan() -> None:
    flow = flow_of({"start": {
        "entry": [{"set": {"first": "{{ event.name }}"}}],
        "on": {"dtmf.captured": {"actions": [{"set": {"digits": "{{ event.digits }}"}}]}}}})
    driver = await drive(flow, [event("dtmf.captured", digits="4")])
    assert driver.session.vars == {"first": "dtmf.captured", "digits": "4"}


async def test_a_ring_timeout_shows_its_reason_to_the_flow() -> None:
    flow = flow_of({
        "start": {"entry": [{"dial": {"to": "4477", "as": "agent"}}],
                  "on": {"call.failed": {"target": "gone",
                                         "actions": [{"set": {"why": "{{ event.reason }}"}}]}}},
        "gone": {"on": {"call.finished": "end"}},
    })
    stand_in = event("call.failed", call_id=AGENT, reason="no_answer", data={RING_TIMEOUT: True})
    driver = await drive(flow, [RECEIVED, stand_in])
    assert driver.provider.actions == ["dial", "hangup"]
    assert (driver.session.state, driver.session.vars) == ("gone", {"why": "no_answer"})


# -- always: its limit, and the timers of a state it leaves ------------------------------------------------
@pytest.mark.parametrize("first", ["call.received", "say.finished"])
async def test_exactly_the_always_limit_of_eventless_steps_is_allowed_from_the_first(first: str) -> None:
    loops = ALWAYS_LIMIT - 1  # then one more into ``done``: ALWAYS_LIMIT in a row
    flow = flow_of({
        "start": {"always": [{"target": "start", "when": f"vars.n < {loops}",
                              "actions": [{"set": {"n": "{{ vars.n + 1 }}"}}]}, "done"]},
        "done": {"on": {"call.finished": "end"}},
    }, vars={"n": 0})
    driver = await drive(flow, [event(first, call_id=CALLER)])
    session = driver.session
    assert (session.state, session.status, session.vars["n"]) == ("done", "active", loops)
    assert session.seq == 1 + ALWAYS_LIMIT  # the event, then each eventless step


async def test_a_timer_of_a_state_always_left_at_once_never_fires_later() -> None:
    flow = flow_of({
        "start": {"on": {"dtmf.captured": "wait"}},
        "wait": {"after": {"10s": "timed_out"}, "always": {"target": "done", "when": "event.digits == '1'"}},
        "done": {"on": {"dtmf.captured": "wait"}},
        "timed_out": {"on": {"call.finished": "end"}},
    })
    press = lambda keys: event("dtmf.captured", call_id=CALLER, digits=keys)  # noqa: E731
    driver = await drive(flow, [RECEIVED, press("1")])
    assert (driver.session.state, driver.session.timers) == ("done", {})
    # back in ``wait`` 5 s later: its timeout counts from then, not from the first visit
    await driver.play([Advance(5), press("2"), Advance(7)])
    assert driver.session.state == "wait"
    await driver.advance(3)
    assert driver.session.state == "timed_out"
