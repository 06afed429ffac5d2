"""Failure semantics and control flow in the runtime: ``if`` and ``on_error`` on actions, teardown of
nothing as success, ``action.failed``'s neutral kinds, and ``always`` (eventless) transitions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flowengine.errors import ERROR_KINDS, ExpressionError, ProviderError, ProviderUnsupported, error_kind
from flowengine.flow.build import build_flow
from flowengine.flow.model import Flow
from flowengine.flow.vocabulary import ALWAYS_LIMIT
from flowengine.runtime.commands import Command, Plan
from flowengine.runtime.engine import Engine
from flowengine.runtime.executor import Executor, RetryPolicy
from flowengine.runtime.outbox import pending, write_ahead
from flowengine.runtime.session import Session
from flowengine.testing import ManualClock, RecordingProvider, drive, event

CALLER, AGENT = "caller-1", "call-1"
RECEIVED = event("call.received", call_id=CALLER)


def flow_of(states: dict[str, Any], **top: Any) -> Flow:
    """A flow starting in ``start``, with a final ``end`` (built without validation: some cases are flows
    ``validate`` refuses, to show what the engine does anyway)."""
    return build_flow({"flow": "t", "version": 1, "initial": "start", "vars": top.pop("vars", {}),
                       "states": {**states, "end": {"type": "final"}}, **top})


def commands(session: Session, index: int = 0) -> list[tuple[str, str, str | None]]:
    return list(session.trace[index].commands)


# -- if --------------------------------------------------------------------------------------------------
async def test_if_false_skips_the_action_and_the_trace_says_so() -> None:
    flow = flow_of({"start": {"entry": [
        {"set": {"vip": True}},
        {"say": {"call": "caller", "text": "welcome back", "if": "vars.vip"}},
        {"say": {"call": "caller", "text": "hello", "if": "not vars.vip"}},
    ], "on": {"call.finished": "end"}}})
    driver = await drive(flow, [RECEIVED])
    assert [args["text"] for _, args in driver.provider.calls] == ["welcome back"]  # it saw the set before it
    assert commands(driver.session) == [
        ("set", "ok", None), ("say", "ok", None), ("say", "skipped", "if not vars.vip: false")]
    assert driver.session.status == "active"


async def test_if_reads_role_state_so_a_flow_can_say_hang_up_if_still_up() -> None:
    up = "agent is defined and agent.state != 'ended'"
    flow = flow_of({
        "start": {"entry": [{"dial": {"to": "4477", "as": "agent"}}], "on": {"call.failed": "closing"}},
        "closing": {"entry": [{"log": {"message": "{{ agent.state }}"}},
                              {"hangup": {"call": "agent", "if": up}}], "on": {"call.finished": "end"}},
    })
    driver = await drive(flow, [RECEIVED, event("call.failed", call_id=AGENT, reason="busy")])
    assert driver.provider.actions == ["dial"]
    assert commands(driver.session, -1) == [("log", "ok", "ended"), ("hangup", "skipped", f"if {up}: false")]


async def test_an_if_that_cannot_be_evaluated_is_an_invalid_failure() -> None:
    invalid = {"target": "end", "when": "event.data.kind == 'invalid'"}
    flow = flow_of({"start": {"entry": [{"say": {"call": "caller", "text": "hi", "if": "vars.missing > 1"}}],
                              "on": {"action.failed": invalid}}})
    driver = await drive(flow, [RECEIVED])
    assert driver.provider.actions == []
    assert (driver.session.state, driver.session.status) == ("end", "ended")
    assert commands(driver.session)[0][:2] == ("say", "error")
    assert str(commands(driver.session)[0][2]).startswith("invalid: ")


# -- on_error ----------------------------------------------------------------------------------------------
async def test_on_error_continue_records_the_error_and_goes_on() -> None:
    flow = flow_of({"start": {"entry": [
        {"play": {"call": "caller", "url": "https://x/a.wav", "on_error": "continue"}},
        {"say": {"call": "caller", "text": "after"}},
    ], "on": {"action.failed": "end", "say.finished": "end"}}})
    provider = RecordingProvider()
    provider.fail("play", status=503)
    driver = await drive(flow, [RECEIVED], provider=provider, retry=RetryPolicy(attempts=1))
    assert driver.provider.actions == ["play", "say"]
    assert commands(driver.session) == [
        ("play", "error", "unavailable: play failed (scripted) (on_error: continue)"), ("say", "ok", None)]
    assert [step.event for step in driver.session.trace] == ["call.received"]  # no action.failed
    assert (driver.session.state, driver.session.status) == ("start", "active")


async def test_on_error_fail_is_the_default() -> None:
    play = {"play": {"call": "caller", "url": "https://x/a.wav", "on_error": "fail"}}
    flow = flow_of({"start": {"entry": [play, {"say": {"call": "caller", "text": "after"}}]}})
    provider = RecordingProvider()
    provider.fail("play")
    driver = await drive(flow, [RECEIVED], provider=provider)
    assert driver.provider.actions == ["play", "hangup"]  # the rest skipped; unhandled: the caller hung up
    assert commands(driver.session)[1] == ("say", "skipped", None)
    assert driver.session.status == "failed"


# -- teardown of nothing is success --------------------------------------------------------------------------
async def test_teardown_of_a_role_never_bound_is_success_and_not_sent() -> None:
    flow = flow_of({
        "start": {"on": {"call.answered": "closing", "dtmf.captured": "ringing"}},
        "ringing": {"entry": [{"dial": {"to": "4477", "as": "agent"}},
                              {"conference_create": {"as": "room"}}], "on": {"call.failed": "closing"}},
        "closing": {"entry": [{"stop_play": {"call": "agent"}},
                              {"kick": {"conference": "room", "call": "agent"}},
                              {"resume": {"conference": "room", "call": "caller"}},
                              {"conference_hangup": {"conference": "room"}}, {"hangup": {"call": "agent"}}],
                    "on": {"call.finished": "end"}},
    })
    driver = await drive(flow, [RECEIVED, event("call.answered", call_id=CALLER)])
    assert driver.provider.actions == []
    assert commands(driver.session, -1) == [
        ("stop_play", "ok", 'nothing to do: call role "agent" was never bound'),
        ("kick", "ok", 'nothing to do: conference role "room" was never bound'),
        ("resume", "ok", 'nothing to do: conference role "room" was never bound'),
        ("conference_hangup", "ok", 'nothing to do: conference role "room" was never bound'),
        ("hangup", "ok", 'nothing to do: call role "agent" was never bound'),
    ]
    assert driver.session.status == "active"


async def test_teardown_of_a_call_already_ended_is_success_and_not_sent() -> None:
    flow = flow_of({
        "start": {"entry": [{"dial": {"to": "4477", "as": "agent"}}, {"conference_create": {"as": "room"}}],
                  "on": {"call.failed": "closing"}},
        "closing": {"entry": [{"kick": {"conference": "room", "call": "agent"}},
                              {"hangup": {"call": "agent"}},
                              {"conference_hangup": {"conference": "room"}}, {"hangup": {"call": "caller"}}],
                    "on": {"call.finished": "end"}},
    })
    driver = await drive(flow, [RECEIVED, event("call.failed", call_id=AGENT, reason="busy")])
    # The room and the caller are still there: only they are sent.
    assert driver.provider.actions == ["dial", "conference_create", "conference_hangup", "hangup"]
    assert driver.provider.calls[-1] == ("hangup", {"call_id": CALLER, "reason": None})
    assert commands(driver.session, -1)[:2] == [
        ("kick", "ok", 'nothing to do: call "agent" has already ended'),
        ("hangup", "ok", 'nothing to do: call "agent" has already ended'),
    ]


# -- action.failed's neutral kinds -------------------------------------------------------------------------
@pytest.mark.parametrize("status, retryable, unknown, kind", [
    (404, False, False, "not_found"), (410, False, False, "not_found"), (400, False, False, "rejected"),
    (409, False, False, "rejected"), (422, False, False, "rejected"), (401, False, False, "not_allowed"),
    (403, False, False, "not_allowed"), (405, False, False, "not_allowed"), (429, True, False, "unavailable"),
    (500, True, True, "unavailable"), (503, True, True, "unavailable"), (502, True, True, "unavailable"),
    (408, False, False, "timeout"), (504, True, True, "timeout"), (None, True, True, "timeout"),
    (None, True, False, "unavailable"), (None, False, False, "not_allowed"),
])
def test_error_kinds_come_from_one_mapping(
    status: int | None, retryable: bool, unknown: bool, kind: str
) -> None:
    assert error_kind(status, retryable=retryable, outcome_unknown=unknown) == kind
    error = ProviderError("x", status=status, retryable=retryable, outcome_unknown=unknown)
    assert error.kind == kind


def test_unsupported_and_expression_errors_have_their_kinds() -> None:
    assert ProviderUnsupported("sinch", "stop_play").kind == "not_allowed"
    assert ExpressionError("bad").kind == "invalid"


SEEN = {"log": {"message": "{{ event.data.action }} {{ event.data.role }} {{ event.data.kind }} "
                          "{{ event.data.status }}"}}
GUARDED = {"start": {
    "entry": [{"conference_create": {"as": "room"}},
              {"conference_dial": {"conference": "room", "to": "4477", "as": "agent"}}],
    "on": {"action.failed": [
        {"target": "gone", "when": "event.data.kind == 'not_found'", "actions": [SEEN]},
        {"target": "later", "when": "event.data.kind == 'unavailable' and event.data.status == 503",
         "actions": [SEEN]},
    ]},
}, "gone": {"on": {"call.finished": "end"}}, "later": {"on": {"call.finished": "end"}}}


@pytest.mark.parametrize("status, retryable, target, seen", [
    (404, False, "gone", "conference_dial agent not_found 404"),
    (503, True, "later", "conference_dial agent unavailable 503"),
])
async def test_a_guard_tells_a_404_from_a_503(status: int, retryable: bool, target: str, seen: str) -> None:
    provider = RecordingProvider()
    provider.fail("conference_dial", status=status, retryable=retryable, times=None)
    driver = await drive(flow_of(GUARDED), [RECEIVED], provider=provider, retry=RetryPolicy(attempts=2))
    assert (driver.session.state, driver.session.status) == (target, "active")
    assert driver.session.trace[-1].event == "action.failed"
    assert commands(driver.session, -1) == [("log", "ok", seen)]


async def test_action_failed_carries_action_role_kind_and_status() -> None:
    say_it = SEEN
    flow = flow_of({"start": {"entry": [{"conference_create": {"as": "room"}},
                                        {"kick": {"conference": "room", "call": "caller"}}],
                              "on": {"action.failed": {"actions": [say_it]}}}})
    provider = RecordingProvider()
    provider.fail("kick", status=403)
    driver = await drive(flow, [RECEIVED], provider=provider)
    assert commands(driver.session, -1) == [("log", "ok", "kick caller not_allowed 403")]
    provider = RecordingProvider()
    flow_invalid = flow_of({"start": {"entry": [{"say": {"call": "agent", "text": "x"}}],
                                      "on": {"action.failed": {"actions": [say_it]}}}})
    driver = await drive(flow_invalid, [RECEIVED], provider=provider)
    assert commands(driver.session, -1) == [("log", "ok", "say agent invalid None")]


# -- always -------------------------------------------------------------------------------------------------
RETRY = {
    "start": {"entry": [{"answer": {"call": "caller"}}], "on": {"call.answered": "menu"}},
    "menu": {"entry": [{"capture_dtmf": {"call": "caller", "max_digits": 1, "timeout": "5s"}}],
             "on": {"dtmf.captured": [{"target": "end", "when": "event.digits == '1'"}, "retry"]},
             "after": {"10s": "retry"}},
    # The guard reads what the entry just set: always is tried once the entry actions have run.
    "retry": {"entry": [{"set": {"attempts": "{{ vars.attempts + 1 }}"}}],
              "always": [{"target": "menu", "when": "vars.attempts < 3"}, "sorry"]},
    "sorry": {"entry": [{"hangup": {"call": "caller"}}], "on": {"call.finished": "end"}},
}


def digits(keys: str) -> Any:
    return event("dtmf.captured", call_id=CALLER, digits=keys, reason="completed" if keys else "timeout")


async def test_always_reprompts_up_to_three_times_then_gives_up() -> None:
    script = [RECEIVED, event("call.answered", call_id=CALLER), digits("9"), digits(""), digits("7")]
    driver = await drive(flow_of(RETRY, vars={"attempts": 0}), script)
    assert driver.provider.actions == ["answer", "capture_dtmf", "capture_dtmf", "capture_dtmf", "hangup"]
    moves = [(s.event, s.source, s.target) for s in driver.session.trace]
    assert moves[-2:] == [("dtmf.captured", "menu", "retry"), ("always", "retry", "sorry")]
    assert moves.count(("always", "retry", "menu")) == 2
    assert driver.session.vars["attempts"] == 3
    assert driver.session.state == "sorry"


async def test_always_taken_once_a_key_is_pressed_in_time() -> None:
    script = [RECEIVED, event("call.answered", call_id=CALLER), digits("9"), digits("1")]
    driver = await drive(flow_of(RETRY, vars={"attempts": 0}), script)
    assert (driver.session.state, driver.session.status) == ("end", "ended")
    assert driver.session.vars["attempts"] == 1


async def test_always_in_the_initial_state_and_chains_in_one_step() -> None:
    flow = flow_of({
        "start": {"entry": [{"set": {"route": "b"}}],
                  "always": [{"target": "a", "when": "vars.route == 'a'"},
                             {"target": "b", "when": "vars.route == 'b'"}],
                  "on": {"call.finished": "end"}},
        "a": {"on": {"call.finished": "end"}},
        "b": {"entry": [{"say": {"call": "caller", "text": "b"}}], "always": "c"},
        "c": {"entry": [{"say": {"call": "caller", "text": "c"}}], "on": {"call.finished": "end"},
              "after": {"30s": "end"}},
    })
    driver = await drive(flow, [RECEIVED])
    assert driver.session.state == "c"
    assert [(s.event, s.source, s.target) for s in driver.session.trace] == [
        ("call.received", None, "start"), ("always", "start", "b"), ("always", "b", "c")]
    assert driver.session.trace[1].guards == (("vars.route == 'a'", False), ("vars.route == 'b'", True))
    assert [args["text"] for _, args in driver.provider.calls] == ["b", "c"]
    assert [t[0] for t in driver.session.timers.values()] == ["c"]  # only the state it settled in waits
    # Each eventless step is a step of its own: the commands' correlation keys differ.
    assert len({c.key for c in driver.provider.commands}) == 2


async def test_always_is_tried_again_after_an_internal_transition_in_the_state() -> None:
    flow = flow_of({"start": {
        "always": {"target": "end", "when": "vars.presses >= 2"},
        "on": {"dtmf.captured": {"actions": [{"set": {"presses": "{{ vars.presses + 1 }}"}}]}},
    }}, vars={"presses": 0})
    driver = await drive(flow, [RECEIVED, digits("1")])
    assert driver.session.state == "start"
    await driver.send(digits("2"))
    assert (driver.session.state, driver.session.status) == ("end", "ended")


async def test_an_event_the_state_does_not_handle_does_not_retry_always() -> None:
    flow = flow_of({"start": {"always": {"target": "end", "when": "event.name == 'say.finished'"},
                              "on": {"call.finished": "end"}}})
    driver = await drive(flow, [RECEIVED, event("say.finished", call_id=CALLER)])
    assert driver.session.state == "start"  # unmatched: no step, so nothing re-evaluated
    assert driver.session.trace[-1].note == "unmatched"


async def test_a_guard_error_in_always_is_false_and_noted() -> None:
    flow = flow_of({"start": {"always": [{"target": "end", "when": "vars.nope > 1"}],
                              "on": {"call.finished": "end"}}})
    driver = await drive(flow, [RECEIVED])
    assert driver.session.state == "start"
    step = driver.session.trace[-1]
    assert (step.event, step.target) == ("always", None)
    assert step.note is not None and step.note.startswith("guard error: ")


async def test_an_endless_always_loop_is_stopped_and_the_session_fails() -> None:
    flow = flow_of({"start": {"entry": [{"answer": {"call": "caller"}}], "on": {"call.answered": "ping"}},
                    "ping": {"entry": [{"set": {"n": "{{ vars.n + 1 }}"}}], "always": "pong"},
                    "pong": {"always": "ping"}}, vars={"n": 0})
    driver = await drive(flow, [RECEIVED, event("call.answered", call_id=CALLER)])
    assert driver.session.status == "failed"
    last = driver.session.trace[-1]
    assert (last.event, last.target) == ("always", "failed")
    assert last.note == (f"{ALWAYS_LIMIT} eventless (always) transitions in a row, the last into 'ping': "
                         "a loop no guard ends; stopped")
    assert driver.session.vars["n"] == 1 + ALWAYS_LIMIT // 2  # entered by the event, then every other step
    assert driver.provider.actions == ["answer", "hangup"]  # the clean-up hangs up the caller


async def test_a_plan_cut_short_still_settles_when_resumed() -> None:
    """The settle marker is written ahead with the plan, so an interrupted plan still takes ``always``."""
    flow = flow_of({"start": {"entry": [{"say": {"call": "caller", "text": "hi", "on_error": "continue"}},
                                        {"set": {"done": True}},
                                        {"play": {"call": "caller", "url": "https://x", "if": "vars.done"}}],
                              "always": {"target": "next", "when": "vars.done"},
                              "on": {"call.finished": "end"}},
                    "next": {"on": {"call.finished": "end"}}})
    clock = ManualClock()
    engine = Engine(flow, clock)
    session, plan = engine.handle(engine.new_session("s"), RECEIVED)
    assert [c.action for c in plan] == ["say", "set", "play", "always"]
    session.outbox = json.loads(json.dumps(write_ahead(plan, 0, 0, clock.now() + 10)))  # as stored
    left = pending(session.outbox)
    assert [(c.action, c.on_error, c.condition.source if c.condition else None) for c in left.plan] == [
        ("say", "continue", None), ("set", "fail", None), ("play", "fail", "vars.done"),
        ("always", "fail", None)]
    provider = RecordingProvider()
    session = await Executor(engine).resume(session, provider)
    assert provider.actions == ["say", "play"]
    assert (session.state, session.outbox) == ("next", None)


def test_the_settle_marker_is_one_command_per_step() -> None:
    engine = Engine(flow_of(RETRY, vars={"attempts": 0}))
    marker = engine.program.settle_command(3)
    assert (marker.action, dict(marker.params)) == ("always", {"step": 3})
    assert engine.program.settle_command(3) is marker
    assert isinstance(marker, Command)
    assert engine.program.settles == frozenset({"retry"})
    assert Plan([marker]).event is None


async def test_kicking_a_participant_still_being_dialled_in_hangs_its_call_up() -> None:
    flow = flow_of({
        "start": {"entry": [{"conference_create": {"as": "room"}},
                            {"conference_dial": {"conference": "room", "to": "4477", "as": "agent"}}],
                  "on": {"dtmf.captured": "closing"}},
        "closing": {"entry": [{"kick": {"conference": "room", "call": "agent"}}],
                    "on": {"call.finished": "end"}},
    })
    driver = await drive(flow, [RECEIVED, digits("1")])
    assert driver.provider.calls[-1] == ("hangup", {"call_id": AGENT, "reason": None})
    assert commands(driver.session, -1) == [("kick", "ok", "hung up: it was still being dialled in")]


def test_the_readme_lists_every_error_kind_with_its_meaning() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for kind, meaning in ERROR_KINDS.items():
        assert f"| `{kind}` | {meaning} |" in readme, kind
