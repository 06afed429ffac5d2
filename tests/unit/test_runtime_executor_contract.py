"""The executor's promises a flow (or the provider, or an operator) can see: what later templates of a plan
see, each command's correlation key and ``resumed`` mark, what ``action.failed`` carries, latencies of
errors the plan goes past, log levels, ``http`` methods, failures of ``always`` plans and of plans run
while catching up with an end the platform shows."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from flowengine.flow.build import build_flow
from flowengine.flow.model import Flow
from flowengine.runtime.engine import Engine
from flowengine.runtime.executor import Executor, Observe, RetryPolicy
from flowengine.runtime.ports import HttpAnswer, HttpRequest
from flowengine.runtime.reconcile import CallSeen, Observation
from flowengine.testing import ManualClock, RecordingProvider, drive, event

CALLER, AGENT = "caller-1", "call-1"
RECEIVED = event("call.received", call_id=CALLER)
FIELDS = ("call", "call_id", "reason", "data.action", "data.role", "data.index", "data.origin", "data.kind",
          "data.status")
FAILED = "|".join("{{ event." + field + " }}" for field in FIELDS)  # what action.failed tells the flow


def flow_of(states: dict[str, Any], **top: Any) -> Flow:
    return build_flow({"flow": "t", "version": 1, "initial": "start", "vars": top.pop("vars", {}),
                       "states": {**states, "end": {"type": "final"}}, **top})


def details(driver: Any, index: int = -1) -> list[Any]:
    return [detail for _, _, detail in driver.session.trace[index].commands]


# -- what later commands of a plan see -------------------------------------------------------------------
async def test_a_command_after_a_hang_up_in_the_same_plan_sees_the_call_ended() -> None:
    """So ``if: agent.state != 'ended'`` holds what it says (the context was kept across the plan)."""
    flow = flow_of({
        "start": {"entry": [{"dial": {"to": "4477", "as": "agent"}}], "on": {"call.answered": "closing"}},
        "closing": {"entry": [{"log": {"message": "{{ agent.state }}"}},
                              {"hangup": {"call": "agent", "if": "agent.state == 'up'"}},
                              {"log": {"message": "{{ agent.state }}"}},
                              {"say": {"call": "agent", "text": "bye", "if": "agent.state != 'ended'"}}],
                    "on": {"call.finished": "end"}},
    })
    driver = await drive(flow, [RECEIVED, event("call.answered", call_id=AGENT)])
    assert driver.provider.actions == ["dial", "hangup"]
    assert details(driver) == ["up", None, "ended", "if agent.state != 'ended': false"]


async def test_a_role_a_command_binds_is_seen_by_the_next_command_of_the_plan() -> None:
    flow = flow_of({"start": {"entry": [{"log": {"message": "{{ room is defined }}"}},
                                        {"conference_create": {"as": "room"}},
                                        {"log": {"message": "{{ room is defined }} {{ room.id }}"}}]}})
    driver = await drive(flow, [RECEIVED])
    assert details(driver, 0) == ["False", "conf-1", "True conf-1"]


async def test_each_command_of_a_plan_has_its_own_correlation_key_and_is_not_marked_resumed() -> None:
    flow = flow_of({"start": {"entry": [{"answer": {"call": "caller"}}, {"conference_create": {"as": "room"}},
                                        {"say": {"call": "caller", "text": "hi"}}]}})
    driver = await drive(flow, [RECEIVED])
    assert [(c.key, c.resumed) for c in driver.provider.commands] == [
        ("session-1:1:0", False), ("session-1:1:1", False), ("session-1:1:2", False)]


async def test_a_retry_after_an_unknown_outcome_goes_out_marked_resumed() -> None:
    """So the provider reconciles before it could do a non-idempotent command twice."""
    provider = RecordingProvider()
    provider.fail("conference_create", times=1, retryable=True, outcome_unknown=True)
    provider.fail("answer", times=1, retryable=True)
    entry = [{"answer": {"call": "caller"}}, {"conference_create": {"as": "room"}}]
    await drive(flow_of({"start": {"entry": entry}}), [RECEIVED], provider=provider)
    assert [(c.action, c.resumed) for c in provider.commands] == [
        ("answer", False), ("answer", False), ("conference_create", False), ("conference_create", True)]


# -- action.failed ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("entry", "seen"), [
    ({"say": {"call": "caller", "text": "hi"}},
     f"caller|{CALLER}|failed|say|caller|1|states.start.entry[1]|rejected|400"),
    ({"conference_hangup": {"conference": "room"}},
     "None|None|failed|conference_hangup|room|1|states.start.entry[1]|rejected|400"),
    ({"http": {"url": "https://api.example.com/x", "as": "reply"}},  # a variable is no role
     "None|None|failed|http|None|1|states.start.entry[1]|not_allowed|None"),
])
async def test_action_failed_tells_the_flow_what_failed_where_and_about_whom(
    entry: dict[str, Any], seen: str
) -> None:
    action = next(iter(entry))
    flow = flow_of({"start": {"entry": [{"conference_create": {"as": "room"}}, entry],
                              "on": {"action.failed": {"actions": [{"log": {"message": FAILED}}]}}}})
    provider = RecordingProvider()
    provider.fail(action)
    driver = await drive(flow, [RECEIVED], provider=provider)
    assert details(driver) == [seen]
    assert driver.session.status == "active"


async def test_a_session_stopped_by_repeated_failures_says_which_event_stopped_it() -> None:
    flow = flow_of({"start": {"entry": [{"say": {"call": "caller", "text": "hi"}}],
                              "on": {"action.failed": "start"}}})
    provider = RecordingProvider()
    provider.fail("say", times=None)
    driver = await drive(flow, [RECEIVED], provider=provider)
    last = driver.session.trace[-1]
    assert (last.event, last.source, last.target) == ("action.failed", "start", "failed")


async def test_an_error_a_plan_goes_past_keeps_how_long_it_took() -> None:
    play = {"play": {"call": "caller", "url": "https://x/a.wav", "on_error": "continue"}}
    flow = flow_of({"start": {"entry": [play, {"say": {"call": "caller", "text": "after"}}]}})
    provider = RecordingProvider()
    provider.fail("play", times=None, retryable=True)
    driver = await drive(flow, [RECEIVED], provider=provider, retry=RetryPolicy(attempts=2))
    assert driver.session.trace[0].latencies == (0.2, 0.0)  # the backoff before the second try


async def test_an_executor_given_its_own_clock_backs_off_on_it() -> None:
    flow = flow_of({"start": {"entry": [{"answer": {"call": "caller"}}]}})
    engine_clock, executor_clock = ManualClock(), ManualClock()
    engine = Engine(flow, engine_clock)
    provider = RecordingProvider()
    provider.fail("answer", times=1, retryable=True)
    session, plan = engine.handle(engine.new_session("s"), RECEIVED)
    await Executor(engine, clock=executor_clock).run(session, plan, provider)
    assert (executor_clock.slept, engine_clock.slept) == ([0.2], [])


# -- log levels, http methods -----------------------------------------------------------------------------
async def test_a_log_action_logs_at_the_level_it_names(caplog: pytest.LogCaptureFixture) -> None:
    flow = flow_of({"start": {"entry": [{"log": {"message": "plain"}},
                                        {"log": {"message": "careful", "level": "warning"}},
                                        {"log": {"message": "broken", "level": "error"}}]}})
    with caplog.at_level(logging.DEBUG, logger="flowengine.flow"):
        await drive(flow, [RECEIVED])
    assert [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "flowengine.flow"] == [
        (logging.INFO, "session-1: plain"), (logging.WARNING, "session-1: careful"),
        (logging.ERROR, "session-1: broken")]


class Http:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    async def request(self, request: HttpRequest) -> HttpAnswer:
        self.requests.append((request.method, request.url))
        return HttpAnswer(200, {})


async def test_http_sends_the_method_asked_for_and_post_by_default() -> None:
    flow = flow_of({"start": {"entry": [{"http": {"url": "https://api.example.com/a"}},
                                        {"http": {"url": "https://api.example.com/b", "method": "GET"}}]}})
    http = Http()
    await drive(flow, [RECEIVED], http=http)
    assert http.requests == [("POST", "https://api.example.com/a"), ("GET", "https://api.example.com/b")]


class Counting:
    """An HttpClient whose host answers ``{"n": 2}``."""

    async def request(self, request: HttpRequest) -> HttpAnswer:
        return HttpAnswer(200, {"n": 2})


async def test_save_reads_the_session_and_the_answer_and_later_templates_see_what_it_saved() -> None:
    """A plan's first command with nothing to render still evaluates its ``save`` in the session's context."""
    save = {"total": "vars.base + response.body.n", "code": "response.status"}
    flow = flow_of({"start": {"entry": [{"http": {"url": "https://api.example.com/n", "save": save}},
                                        {"log": {"message": "{{ vars.total }} {{ vars.code }}"}}]}},
                   vars={"base": 40, "total": None, "code": None})
    driver = await drive(flow, [RECEIVED], http=Counting())
    assert (driver.session.vars["total"], driver.session.vars["code"]) == (42, 200)
    assert details(driver) == ["200", "42 200"]


# -- failures of plans the executor runs on its own ----------------------------------------------------------
async def test_a_failure_in_an_always_transitions_plan_reaches_the_flow() -> None:
    flow = flow_of({
        "start": {"always": {"target": "greet", "when": "vars.go"}, "on": {"call.finished": "end"}},
        "greet": {"entry": [{"say": {"call": "caller", "text": "hi"}}],
                  "on": {"action.failed": {"target": "sorry", "actions": [{"log": {"message": FAILED}}]}}},
        "sorry": {"on": {"call.finished": "end"}},
    }, vars={"go": True})
    provider = RecordingProvider()
    provider.fail("say")
    driver = await drive(flow, [RECEIVED], provider=provider)
    assert (driver.session.state, driver.session.status) == ("sorry", "active")
    assert details(driver) == [f"caller|{CALLER}|failed|say|caller|0|states.greet.entry[0]|rejected|400"]


def ended_on_the_platform(call_ids: list[str], conference_ids: list[str]) -> Any:
    async def observe(calls: list[str], conferences: list[str]) -> Observation:
        call_ids.extend(calls)
        conference_ids.extend(conferences)
        return Observation({c: CallSeen(ended=True, reason="hangup") for c in calls}, {})
    return observe


@pytest.mark.parametrize("max_failures", [2, 3])
async def test_a_gone_refusal_with_calls_only_asks_and_runs_what_it_learns(max_failures: int) -> None:
    """The agent hung up as the flow spoke to them (no webhook yet): the platform is asked, the flow hears
    the hang-up and says goodbye to the caller; that goodbye failing is the first failure in a row."""
    flow = flow_of({
        "start": {"entry": [{"dial": {"to": "4477", "as": "agent"}}], "on": {"call.answered": "talk"}},
        "talk": {"entry": [{"say": {"call": "agent", "text": "hello"}}],
                 "on": {"call.finished": {"target": "bye", "when": "event.call == 'agent'"}}},
        "bye": {"entry": [{"say": {"call": "caller", "text": "goodbye"}}],
                "on": {"action.failed": {"target": "end"}}},
    })
    asked: tuple[list[str], list[str]] = ([], [])
    observe: Observe = ended_on_the_platform(*asked)
    clock = ManualClock()
    engine = Engine(flow, clock)
    executor = Executor(engine, observe=observe, max_failures=max_failures)
    provider = RecordingProvider()
    provider.fail("say", times=2, status=404)
    session = engine.new_session("s")
    for sent in (RECEIVED, event("call.answered", call_id=AGENT)):
        session, plan = engine.handle(session, sent)
        session = await executor.run(session, plan, provider)
    assert asked == ([CALLER, AGENT], [])
    assert [(c.action, c.args.get("text")) for c in provider.commands] == [
        ("dial", None), ("say", "hello"), ("say", "goodbye")]
    assert (session.state, session.status) == ("end", "ended")  # handled, not a second failure in a row
