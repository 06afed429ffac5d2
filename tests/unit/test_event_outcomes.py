"""What metrics and logs say a step did with its event: every way a session can take or drop an event,
driven through the real engine and executor, counted by the service's observer into
``flowengine_events_total{event, outcome}`` (and transitions), read back from the registry. Each event
is counted once however many calls observe the session, and the engine's own settling steps not at all."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowengine.flow.build import build_flow
from flowengine.flow.loader import load_flow_or_raise
from flowengine.flow.model import Flow
from flowengine.runtime.engine import RING_TIMEOUT
from flowengine.runtime.events import Event
from flowengine.runtime.outbound import end_event, start_event
from flowengine.runtime.program import TIMER_EVENT
from flowengine.runtime.reconcile import CallSeen, Observation
from flowengine.server.metrics import Metrics
from flowengine.server.observer import ServiceObserver
from flowengine.testing import Driver, event

CALLER = "caller-1"
INBOUND = {
    "flow": "inbound", "version": 1, "initial": "start", "vars": {"never": False},
    "states": {
        "start": {
            "entry": [{"answer": {"call": "caller"}}],
            "on": {
                "call.answered": "checking",
                # a guard that cannot be evaluated: no route, and the note says why after "unmatched"
                "dtmf.captured": {"target": "talking", "when": "vars.missing.deep > 1"},
            },
            "after": {"5s": "talking"},
        },
        "checking": {"always": {"target": "talking"}},
        # settles after every event it takes, and its guard never passes: a decision with no new step
        "talking": {"on": {"call.finished": "end"}, "always": {"target": "end", "when": "vars.never"}},
        "end": {"type": "final"},
    },
}
OUTBOUND = """
flow: callback
start:
  outbound: {as: customer, timeout: 25s}
initial: talking
states:
  talking:
    on:
      call.finished: done
  done: {type: final}
"""


class Watched:
    """A driver whose executor reports every decision to the service's observer, as in the service."""

    def __init__(self, flow: Flow) -> None:
        self.driver = Driver(flow)
        self.metrics = Metrics()
        self.observer = ServiceObserver(self.metrics)
        self.driver.executor.observer = self.observer

    async def send(self, *events: Event) -> None:
        driver = self.driver
        for sent in events:
            driver.session = await driver.executor.step(driver.session, sent, driver.provider)

    def counted(self, metric: str = "flowengine_events_total") -> Counter[tuple[str, ...]]:
        """Non-zero samples of ``metric`` by their label values."""
        found: Counter[tuple[str, ...]] = Counter()
        for family in self.metrics.registry.collect():
            for sample in family.samples:
                if sample.name == metric and sample.value:
                    found[tuple(sample.labels.values())] += int(sample.value)
        return found


@pytest.fixture
def inbound() -> Flow:
    return build_flow(INBOUND)


async def test_transitions_are_handled_and_settling_steps_are_not_events(inbound: Flow) -> None:
    watched = Watched(inbound)
    await watched.send(event("call.received", call_id=CALLER), event("call.answered", call_id=CALLER))
    assert watched.driver.session.state == "talking"  # through ``checking``'s always
    assert watched.counted() == {("call.received", "handled"): 1, ("call.answered", "handled"): 1}
    assert watched.counted("flowengine_transitions_total") == {("inbound",): 3}  # start, checking, talking
    assert watched.counted("flowengine_sessions_started_total") == {("inbound",): 1}


async def test_events_no_transition_takes_are_unmatched_guard_errors_included(inbound: Flow) -> None:
    watched = Watched(inbound)
    await watched.send(event("call.received", call_id=CALLER), event("dtmf.captured", call_id=CALLER),
                       event("call.finished", call_id=CALLER))
    note = watched.driver.session.trace[-2].note
    assert note is not None and note.startswith("unmatched; guard error")
    assert watched.counted() == {("call.received", "handled"): 1, ("dtmf.captured", "unmatched"): 1,
                                 ("call.finished", "unmatched"): 1}


async def test_an_event_delivered_again_is_a_duplicate(inbound: Flow) -> None:
    watched = Watched(inbound)
    answered = event("call.answered", call_id=CALLER)
    await watched.send(event("call.received", call_id=CALLER), answered, answered)
    assert watched.counted()[("call.answered", "duplicate")] == 1
    assert watched.counted()[("call.answered", "handled")] == 1


async def test_events_after_the_session_ended_or_failed_are_late(inbound: Flow) -> None:
    watched = Watched(inbound)
    await watched.send(event("call.received", call_id=CALLER), event("call.answered", call_id=CALLER),
                       event("call.finished", call_id=CALLER), event("dtmf.captured", call_id=CALLER),
                       end_event("operator"))
    assert watched.driver.session.status == "ended"
    assert watched.counted() == {
        ("call.received", "handled"): 1, ("call.answered", "handled"): 1, ("call.finished", "handled"): 1,
        ("dtmf.captured", "late"): 1, ("end", "late"): 1,
    }
    assert watched.counted("flowengine_sessions_ended_total") == {("inbound", "ended"): 1}

    failed = Watched(inbound)
    await failed.send(event("call.received", call_id=CALLER))
    failed.driver.session, _ = failed.driver.engine.abort(failed.driver.session, "broken")
    await failed.send(event("call.answered", call_id=CALLER))
    assert failed.counted()[("call.answered", "late")] == 1


async def test_ending_a_live_session_is_handled(inbound: Flow) -> None:
    watched = Watched(inbound)
    await watched.send(event("call.received", call_id=CALLER), end_event("operator"))
    assert watched.counted()[("end", "handled")] == 1


async def test_a_timer_its_state_cancelled_is_stale_and_timers_count_under_one_name(inbound: Flow) -> None:
    watched = Watched(inbound)
    await watched.send(event("call.received", call_id=CALLER))
    engine, clock = watched.driver.engine, watched.driver.clock
    clock.advance(5)
    [timer] = engine.due_timers(watched.driver.session, clock.now())  # taken before the state is left
    await watched.send(event("call.answered", call_id=CALLER), timer)
    assert watched.counted()[(TIMER_EVENT, "stale")] == 1

    fired = Watched(inbound)
    await fired.send(event("call.received", call_id=CALLER))
    fired.driver.clock.advance(5)
    await fired.send(*fired.driver.engine.due_timers(fired.driver.session, fired.driver.clock.now()))
    assert fired.driver.session.state == "talking"
    assert fired.counted() == {("call.received", "handled"): 1, (TIMER_EVENT, "handled"): 1}


async def test_outbound_starts_repeated_and_events_before_the_call_began() -> None:
    watched = Watched(build_flow(yaml.safe_load(OUTBOUND)))
    start = start_event("session-1", "4477", None, {}, "req-1")
    await watched.send(start)
    # a retried request: a fresh event id, so not a duplicate by key, but never dialled again
    again = Event(start.name, data=start.data, event_id="start:again")
    await watched.send(start, again, event("call.finished", call_id="someone-else"))
    assert watched.counted() == {("start", "handled"): 1, ("start", "duplicate"): 2,
                                 ("call.finished", "unmatched"): 1}

    inbound = Watched(build_flow(INBOUND))
    await inbound.send(event("call.received", call_id=CALLER), start)
    assert inbound.counted()[("start", "unmatched")] == 1  # not an outbound flow


RING_FLOW = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"


async def dialling(watched: Watched) -> None:
    """The seed flow's session dialling its callee."""
    await watched.send(event("call.received", call_id="c1"), event("call.answered", call_id="c1"),
                       event("participant.joined", call_id="c1", conference_id="conf-1"),
                       event("say.finished", call_id="c1"))


async def test_a_ring_timeouts_echo_is_a_duplicate_and_a_late_stand_in_is_late() -> None:
    flow = load_flow_or_raise(RING_FLOW)
    watched = Watched(flow)
    await dialling(watched)
    assert watched.driver.session.state == "dialing"
    callee = watched.driver.session.calls["callee"]
    flag: dict[str, Any] = {"implicit": True, RING_TIMEOUT: True}
    await watched.send(event("call.failed", call_id=callee, reason="no_answer", data=flag),
                       event("call.failed", call_id=callee, reason="cancelled"))  # the platform's echo
    assert watched.counted()[("call.failed", "duplicate")] == 1

    answered = Watched(flow)
    await dialling(answered)
    callee = answered.driver.session.calls["callee"]
    await answered.send(event("call.answered", call_id=callee),
                        event("call.failed", call_id=callee, reason="no_answer", data=flag))
    assert answered.counted()[("call.failed", "late")] == 1


async def test_each_step_is_counted_once_though_the_trace_keeps_only_the_last_few(inbound: Flow) -> None:
    watched = Watched(inbound)
    watched.driver.engine.trace_limit = 2
    await watched.send(event("call.received", call_id=CALLER))
    for _ in range(3):
        await watched.send(event("dtmf.captured", call_id=CALLER))
    # one call to the observer that sees more new steps than the trace keeps counts what the trace holds
    before = watched.driver.session
    for _ in range(3):
        await watched.driver.send(event("dtmf.captured", call_id=CALLER))
    watched.observer.stepped(before, watched.driver.session)
    assert watched.counted() == {("call.received", "handled"): 1, ("dtmf.captured", "unmatched"): 5}


async def test_only_steps_that_entered_a_state_are_logged_at_info(
    inbound: Flow, caplog: pytest.LogCaptureFixture,
) -> None:
    watched = Watched(inbound)
    with caplog.at_level(logging.DEBUG, logger="flowengine.session"):
        await watched.send(event("call.received", call_id=CALLER), event("dtmf.captured", call_id=CALLER))
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    debug = [r.getMessage() for r in caplog.records
             if r.levelno == logging.DEBUG and "not acted on" in r.getMessage()]
    assert info == ["session session-1 flow inbound: state (start) -> start on event call.received"]
    assert len(debug) == 1 and "event dtmf.captured in state start not acted on (unmatched; guard" in debug[0]


async def test_the_answer_that_begins_an_outbound_session_is_one_event_handled() -> None:
    """It begins the session (entering ``initial``) and is then offered to ``initial`` (which does not
    take it): two steps of one event, counted once, as handled."""
    watched = Watched(build_flow(yaml.safe_load(OUTBOUND)))
    await watched.send(start_event("session-1", "4477", None, {}, "req-1"))
    dialled = watched.driver.session.calls["customer"]
    await watched.send(event("call.answered", call_id=dialled))
    assert watched.driver.session.state == "talking"
    steps = [step.event for step in watched.driver.session.trace]
    assert steps.count("call.answered") == 2  # what made this worth a test
    assert watched.counted() == {("start", "handled"): 1, ("call.answered", "handled"): 1}
    assert watched.counted("flowengine_transitions_total") == {("callback",): 1}


SPEAKING = {"flow": "speaking", "version": 1, "initial": "start", "states": {
    "start": {"entry": [{"say": {"call": "caller", "text": "hi"}}], "on": {"call.finished": "end"}},
    "end": {"type": "final"}}}


async def test_a_failed_command_and_an_end_found_after_a_refusal_are_counted_as_events() -> None:
    refused = Watched(build_flow(SPEAKING))
    refused.driver.provider.fail("say")
    await refused.send(event("call.received", call_id=CALLER))
    assert refused.driver.session.status == "failed"
    assert refused.counted() == {("call.received", "handled"): 1, ("action.failed", "handled"): 1}
    assert refused.counted("flowengine_sessions_ended_total") == {("speaking", "failed"): 1}

    # the say is refused as gone: the platform, asked, shows the caller hung up; the flow hears that
    gone = Watched(build_flow(SPEAKING))
    gone.driver.provider.fail("say", status=404)

    async def hung_up(calls: list[str], conferences: list[str]) -> Observation:
        return Observation({call: CallSeen(ended=True, reason="hangup") for call in calls}, {})

    gone.driver.executor.observe = hung_up
    await gone.send(event("call.received", call_id=CALLER))
    assert gone.driver.session.status == "ended"
    assert gone.counted() == {("call.received", "handled"): 1, ("call.finished", "handled"): 1}
    assert gone.counted("flowengine_sessions_ended_total") == {("speaking", "ended"): 1}
