"""Sessions started and ended from outside, in the engine: an outbound start plans the flow's dial (written
ahead like any command, resumed marked as such after a crash), the session begins on that call's answer or
failure, a start that comes again never dials again, and an end hangs up what the session owns."""

from __future__ import annotations

import pytest
from test_runtime_outbox import Crash, Store

from flowengine.flow.loader import load_flow_or_raise
from flowengine.flow.model import Flow
from flowengine.runtime.binding import PLACED_BY, standin_id
from flowengine.runtime.dispatcher import Dispatcher
from flowengine.runtime.engine import RING_TIMEOUT, Engine
from flowengine.runtime.events import Event
from flowengine.runtime.executor import Executor
from flowengine.runtime.outbound import END, REPEATED, START, end_event, repeated, start_event
from flowengine.runtime.ports import ActionResult, Endpoint, ProviderCommand
from flowengine.runtime.session import DIALING, ENDED
from flowengine.testing import Driver, ManualClock, RecordingProvider, event

FLOW = """
flow: callback
start:
  outbound: {as: customer, from: "{{ vars.caller_id }}", timeout: 25s}
vars: {caller_id: "4592457976", name: ""}
events: [agent.free]
initial: calling
states:
  calling:
    on:
      call.answered: talking
      call.failed:
        target: failed
        actions: [{set: {why: "{{ event.reason }}", kind: "{{ event.data.kind | default('') }}",
                         who: "{{ event.call }}"}}]
    after: {2m: failed}
  talking:
    entry:
      - say: {call: customer, text: "Hello {{ vars.name }}"}
      - conference_create: {as: room}
    on:
      agent.free: {target: done, actions: [{set: {agent: "{{ event.data.agent }}"}}]}
    after: {10m: done}
  done:
    type: final
    entry: [{hangup: {call: customer}}]
  failed: {type: final}
"""


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow_or_raise(FLOW)


def start(session_id: str = "session-1", from_: str | None = None, **variables: object) -> Event:
    return start_event(session_id, "447700900001", from_, variables, "fingerprint")


async def test_a_start_plans_the_flow_s_dial_and_waits_for_the_call(flow: Flow) -> None:
    driver = Driver(flow)
    session = await driver.send(start(name="Ada"))
    assert (session.status, session.vars["name"]) == ("new", "Ada")
    assert session.origin == {"start": "outbound", "request": "fingerprint"}
    assert driver.provider.calls == [("dial", {"to": Endpoint("phone", "447700900001"), "from_": "4592457976",
                                               "timeout": 25.0, "connect_call_id": None,
                                               "machine_detection": False})]
    assert driver.provider.commands[0].key == "session-1:1:0" and not driver.provider.commands[0].resumed
    assert session.calls == {"customer": "call-1"} and session.call_states["call-1"] == DIALING
    assert session.trace[0].event == START and session.trace[0].commands == (("dial", "ok", "call-1"),)
    assert session.trace[0].note == "dialling the 'customer' call"


async def test_the_request_s_caller_id_wins_over_the_flow_s(flow: Flow) -> None:
    driver = Driver(flow)
    await driver.send(start(from_="441234567890"))
    assert driver.provider.calls[0][1]["from_"] == "441234567890"


async def test_a_start_asks_for_machine_detection_and_begins_on_who_answered() -> None:
    amd = load_flow_or_raise(FLOW.replace("timeout: 25s}", "timeout: 25s, machine_detection: true}"))
    driver = Driver(amd)
    await driver.send(start())
    assert driver.provider.calls[0][1]["machine_detection"] is True
    session = await driver.send(event("call.answered", call_id="call-1", reason="machine"))
    assert (session.status, session.state) == ("active", "talking")
    assert session.trace[-1].event == "call.answered"


async def test_the_session_begins_on_the_answer_and_handles_it_in_the_initial_state(flow: Flow) -> None:
    driver = Driver(flow)
    await driver.send(start(name="Ada"))
    early = await driver.send(event("dtmf.captured", call_id="call-1", digits="1"))
    assert early.status == "new"
    assert early.trace[-1].note == "before the 'customer' call was answered or failed: not handled"
    assert (early.trace[-1].at, early.trace[-1].source) == (driver.clock.now(), None)
    custom = await driver.send(event("agent.free", data={"agent": "a1"}))
    assert custom.status == "new" and custom.trace[-1].note is not None
    session = await driver.send(event("call.answered", call_id="call-1"))
    assert (session.status, session.state) == ("active", "talking")
    assert [(s.event, s.source, s.target) for s in session.trace[-2:]] == [
        ("call.answered", None, "calling"), ("call.answered", "calling", "talking")]
    assert driver.provider.actions == ["dial", "say", "conference_create"]
    session = await driver.send(event("agent.free", data={"agent": "a7"}))
    assert (session.state, session.vars["agent"]) == ("done", "a7")


@pytest.mark.parametrize("reason", ["busy", "no_answer", "rejected"])
async def test_the_session_begins_on_the_call_s_failure_with_its_reason(flow: Flow, reason: str) -> None:
    driver = Driver(flow)
    await driver.send(start())
    session = await driver.send(event("call.failed", call_id="call-1", reason=reason))
    assert (session.status, session.state, session.vars["why"]) == ("ended", "failed", reason)
    assert session.vars["who"] == "customer"


async def test_a_call_about_another_call_does_not_begin_it(flow: Flow) -> None:
    driver = Driver(flow)
    await driver.send(start())
    session = await driver.send(event("call.answered", call_id="somebody-else"))
    assert session.status == "new"


async def test_a_dial_the_platform_refuses_begins_the_flow_as_a_failed_call(flow: Flow) -> None:
    provider = RecordingProvider()
    provider.fail("dial", status=400, message="invalid destination")
    driver = Driver(flow, provider=provider)
    session = await driver.send(start())
    assert (session.status, session.state) == ("ended", "failed")
    assert [session.vars[name] for name in ("why", "kind", "who")] == ["failed", "rejected", "customer"]
    assert session.calls == {} and session.trace[0].commands[0][:2] == ("dial", "error")


async def test_a_ring_timeout_the_engine_stands_in_for_hangs_up_the_call_and_begins(flow: Flow) -> None:
    driver = Driver(flow)
    await driver.send(start())
    timeout = event("call.failed", call_id="call-1", reason="no_answer", data={RING_TIMEOUT: True})
    session = await driver.send(timeout)
    assert (session.state, session.vars["why"]) == ("failed", "no_answer")
    assert driver.provider.calls[-1] == ("hangup", {"call_id": "call-1", "reason": None})
    echo = await driver.send(event("call.failed", call_id="call-1", reason="cancelled"))
    assert echo.trace[-1].note == "echo of a ring-timeout hang-up"


async def test_a_start_that_comes_again_never_dials_again(flow: Flow) -> None:
    driver = Driver(flow)
    await driver.send(start())
    again = await driver.send(start())
    assert again.trace[-1].note == "duplicate" and repeated(again)
    await driver.send(event("call.answered", call_id="call-1"))
    for index in range(40):  # the session's short memory of event keys forgets the start
        await driver.send(event("play.finished", call_id="call-1", data={"n": index}))
    late = await driver.send(start())
    assert late.trace[-1].note == REPEATED and repeated(late)
    assert driver.provider.actions.count("dial") == 1


async def test_an_inbound_flow_dials_nothing_on_a_start() -> None:
    inbound = load_flow_or_raise("flow: x\ninitial: a\nstates:\n  a:\n    on: {call.answered: b}\n"
                                 "    after: {1s: b}\n  b: {type: final}\n")
    driver = Driver(inbound)
    session = await driver.send(start())
    assert driver.provider.calls == [] and session.status == "new"
    assert session.trace[-1].note == "not an outbound flow"


async def test_a_crash_after_the_dial_is_resumed_as_a_dial_that_may_have_been_done(flow: Flow) -> None:
    """Killed between sending the dial and the write that records it: the next handling of the session
    (the retried start) finishes the plan with the dial marked resumed, under the same key, so the
    provider asks the platform before anything is sent again; the start itself is then a duplicate."""
    store, clock = Store(), ManualClock()
    first_provider = RecordingProvider()
    first = Dispatcher(Executor(Engine(flow, clock)), first_provider, store.load, store.save)
    store.crash_at = 2  # the write-ahead (save 1) is done; the write after the dial (save 2) dies
    with pytest.raises(Crash):
        await first.dispatch("s", start("s"), flow="callback")
    assert first_provider.actions == ["dial"] and store.log == [("save", 0)]
    store.crash_at = None
    second_provider = RecordingProvider()
    second = Dispatcher(Executor(Engine(flow, clock)), second_provider, store.load, store.save)
    session = await second.dispatch("s", start("s"), flow="callback")
    resumed = second_provider.commands
    assert [(c.action, c.key, c.resumed) for c in resumed] == [("dial", first_provider.commands[0].key, True)]
    assert repeated(session) and session.calls == {"customer": "call-1"} and session.outbox is None


async def test_an_end_hangs_up_what_the_session_owns_and_goes_on_past_a_failure(flow: Flow) -> None:
    provider = RecordingProvider()
    driver = Driver(flow, provider=provider)
    await driver.send(start())
    await driver.send(event("call.answered", call_id="call-1"))
    provider.fail("hangup", status=503, message="try later")
    session = await driver.send(end_event("ended through the API"))
    assert (session.status, session.state, session.timers) == ("ended", "talking", {})
    assert provider.actions[-2:] == ["hangup", "conference_hangup"]  # the failed hang-up did not stop it
    step = session.trace[-1]
    assert (step.event, step.at, step.source, step.target) == (END, driver.clock.now(), "talking", None)
    assert step.note == "ended through the API"
    assert [record[:2] for record in step.commands] == [("hangup", "error"), ("conference_hangup", "ok")]
    driver.clock.advance(3)
    again = await driver.send(end_event("again"))
    assert again.trace[-1].note == "session ended" and provider.actions.count("conference_hangup") == 1
    assert (again.trace[-1].at, again.trace[-1].source) == (driver.clock.now(), "talking")


async def test_an_end_before_the_answer_cancels_the_call(flow: Flow) -> None:
    driver = Driver(flow)
    await driver.send(start())
    session = await driver.send(end_event("ended through the API"))
    assert session.status == "ended" and session.call_states["call-1"] == ENDED
    assert driver.provider.actions == ["dial", "hangup"]
    late = await driver.send(event("call.answered", call_id="call-1"))
    assert late.status == "ended" and late.trace[-1].note is not None


async def test_an_end_goes_on_past_a_conference_that_cannot_be_hung_up(flow: Flow) -> None:
    provider = RecordingProvider()
    driver = Driver(flow, provider=provider)
    await driver.send(start())
    await driver.send(event("call.answered", call_id="call-1"))
    provider.fail("conference_hangup", message="room busy")
    session = await driver.send(end_event(""))  # no reason given: the note says "ended"
    assert session.status == "ended"
    step = session.trace[-1]  # the failure is recorded there; no action.failed reaches the ended session
    assert (step.event, step.note) == (END, "ended")
    assert list(step.commands) == [
        ("hangup", "ok", None), ("conference_hangup", "error", "rejected: room busy (on_error: continue)")]


async def test_a_failed_session_stays_failed_when_ended(flow: Flow) -> None:
    provider = RecordingProvider()
    provider.fail("say", times=None)
    provider.fail("hangup", times=None)  # the clean-up could not hang the customer up: still live
    driver = Driver(flow, provider=provider)
    await driver.send(start())
    failed = await driver.send(event("call.answered", call_id="call-1"))
    assert failed.status == "failed" and failed.call_states["call-1"] != ENDED
    sent = len(provider.calls)
    session = await driver.send(end_event("ended through the API"))
    assert (session.status, session.trace[-1].note) == ("failed", "session failed")
    assert (session.trace[-1].event, session.trace[-1].source) == (END, failed.state)
    assert len(provider.calls) == sent  # nothing hung up again


async def test_a_start_for_a_session_begun_already_is_noted_where_it_came(flow: Flow) -> None:
    driver = Driver(flow)
    await driver.send(start())
    await driver.send(event("call.answered", call_id="call-1"))
    driver.clock.advance(1)
    session = await driver.send(Event(START, data=start().data, event_id="start:retried"))
    step = session.trace[-1]
    assert (step.event, step.at, step.source, step.target, step.note) == (
        START, driver.clock.now(), "talking", None, REPEATED)
    assert driver.provider.actions.count("dial") == 1


async def test_a_short_trace_stays_short_whatever_the_session_was_sent(flow: Flow) -> None:
    """An engine keeping fewer steps than the default keeps that few, through early events, repeated
    starts and ends alike."""
    driver = Driver(flow)
    driver.engine.trace_limit = 2
    await driver.send(start())
    for digits in "123":
        session = await driver.send(event("dtmf.captured", call_id="call-1", digits=digits))
        assert len(session.trace) == 2
    await driver.send(event("call.answered", call_id="call-1"))
    for index in range(3):
        session = await driver.send(Event(START, data=start().data, event_id=f"start:again-{index}"))
        assert len(session.trace) == 2 and session.trace[-1].note == REPEATED
    for index in range(3):
        session = await driver.send(end_event(f"end {index}"))
        assert len(session.trace) == 2
    assert [step.note for step in session.trace] == ["session ended", "session ended"]


class StandIn(RecordingProvider):
    """A provider that could not confirm the dial (its answer was lost): the call is bound under a
    stand-in id until the platform's first webhook names it (``PLACED_BY``), as Sinch's adapter does."""

    async def execute(self, command: ProviderCommand) -> ActionResult:
        if command.action == "dial":
            self.calls.append((command.action, dict(command.args)))
            return ActionResult(id=standin_id(command.key))
        return await super().execute(command)


async def test_a_dial_bound_under_a_stand_in_begins_on_the_first_webhook_that_names_it(flow: Flow) -> None:
    driver = Driver(flow, provider=StandIn())
    session = await driver.send(start())
    key = "session-1:1:0"
    assert session.calls == {"customer": standin_id(key)}
    session = await driver.send(event("call.answered", call_id="real-1", data={PLACED_BY: key}))
    assert (session.status, session.state) == ("active", "talking")
    assert session.calls["customer"] == "real-1" and standin_id(key) not in session.call_states
