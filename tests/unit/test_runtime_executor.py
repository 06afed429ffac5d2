"""The executor: arguments as the Provider port wants them, bindings, retries, failures and clean-up."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from flowengine.errors import ProviderError
from flowengine.flow.build import build_flow
from flowengine.flow.loader import load_flow_or_raise
from flowengine.flow.model import Flow
from flowengine.runtime.executor import Observe, RetryPolicy
from flowengine.runtime.ports import Endpoint, HttpAnswer, HttpRequest, Media
from flowengine.runtime.reconcile import CallSeen, ConferenceSeen, Observation
from flowengine.testing import RecordingProvider, drive, event

FLOW_FILE = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"
CALLER, ROOM = "caller-1", "conf-1"


@pytest.fixture(scope="module")
def conference() -> Flow:
    return load_flow_or_raise(FLOW_FILE)


def one_state(entry: list[dict[str, Any]], **extra: Any) -> Flow:
    """A flow whose initial state runs ``entry``; ``extra`` adds states or the state's ``on``."""
    states = {"start": {"entry": entry, "on": extra.pop("on", {})}, "end": {"type": "final"}, **extra}
    return build_flow({"flow": "t", "version": 1, "initial": "start", "states": states})


TO_DIALING = [
    event("call.received", call_id=CALLER),
    event("call.answered", call_id=CALLER),
    event("participant.joined", call_id=CALLER, conference_id=ROOM),
    event("say.finished", call_id=CALLER),
]


async def test_retryable_failure_is_retried_with_backoff(conference: Flow) -> None:
    provider = RecordingProvider()
    provider.fail("answer", times=1, retryable=True)
    driver = await drive(conference, TO_DIALING[:1], provider=provider)
    assert provider.calls == [("answer", {"call_id": CALLER})] * 2
    assert driver.clock.slept == [0.2]
    assert list(driver.session.trace[-1].commands) == [("answer", "ok", "after 2 attempts")]
    assert (driver.session.state, driver.session.status) == ("answering", "active")


async def test_retryable_failure_that_persists_fails_for_good(conference: Flow) -> None:
    provider = RecordingProvider()
    provider.fail("answer", times=None, retryable=True)
    driver = await drive(conference, TO_DIALING[:1], provider=provider, retry=RetryPolicy(attempts=4))
    assert provider.actions == ["answer"] * 4 + ["hangup"]  # then the clean-up hangs up the caller
    assert driver.clock.slept == [0.2, 0.4, 0.8]
    assert driver.session.status == "failed"


async def test_failure_for_good_skips_the_rest_and_fails_the_session(conference: Flow) -> None:
    provider = RecordingProvider()
    provider.fail("hold", message="file not found")
    driver = await drive(conference, TO_DIALING, provider=provider)
    assert provider.actions == [
        "answer", "conference_create", "conference_join", "say", "hold", "hangup", "conference_hangup"]
    assert provider.calls[-2:] == [("hangup", {"call_id": CALLER, "reason": None}),
                                   ("conference_hangup", {"conference_id": ROOM})]
    session = driver.session
    assert (session.state, session.status, session.timers) == ("failed", "failed", {})
    dialing, failed = session.trace[-2:]
    assert list(dialing.commands) == [
        ("hold", "error", "rejected: file not found"), ("conference_dial", "skipped", None)]
    assert (failed.event, failed.source, failed.target) == ("action.failed", "dialing", "failed")
    assert list(failed.commands) == [("hangup", "ok", None), ("conference_hangup", "ok", None)]
    assert failed.note == "unhandled action.failed: file not found"


async def test_failed_session_hangs_up_only_what_is_still_up(conference: Flow) -> None:
    provider = RecordingProvider()
    provider.fail("resume")
    driver = await drive(conference, [
        *TO_DIALING,
        event("participant.join_failed", call_id="call-1", conference_id=ROOM, reason="no_answer"),
    ], provider=provider)
    # The callee never came up, so only the caller and the room are hung up.
    assert provider.actions[-3:] == ["resume", "hangup", "conference_hangup"]
    assert provider.calls[-2][1]["call_id"] == CALLER
    assert driver.session.status == "failed"


async def test_cleanup_is_best_effort(conference: Flow) -> None:
    provider = RecordingProvider()
    provider.fail("conference_dial")
    provider.fail("hangup", times=None)
    driver = await drive(conference, TO_DIALING, provider=provider)
    assert provider.actions[-2:] == ["hangup", "conference_hangup"]
    assert list(driver.session.trace[-1].commands) == [
        ("hangup", "error", "rejected: hangup failed (scripted)"), ("conference_hangup", "ok", None)]


async def test_unsupported_action_fails_at_once(conference: Flow) -> None:
    provider = RecordingProvider()
    provider.fail("answer", unsupported=True)
    driver = await drive(conference, TO_DIALING[:1], provider=provider, retry=RetryPolicy(attempts=5))
    assert provider.actions == ["answer", "hangup"]  # never retried; the ringing caller is hung up
    assert list(driver.session.trace[-2].commands) == [
        ("answer", "error", 'not_allowed: provider "recording" cannot perform action "answer"')]
    assert driver.session.status == "failed"


async def test_action_missing_from_capabilities_is_not_sent() -> None:
    flow = one_state([{"answer": {"call": "caller"}}])
    provider = RecordingProvider(capabilities={"hangup"})
    driver = await drive(flow, [event("call.received", call_id=CALLER)], provider=provider)
    assert provider.actions == ["hangup"]  # only the clean-up
    assert driver.session.status == "failed"
    assert list(driver.session.trace[0].commands) == [
        ("answer", "error", 'not_allowed: provider "recording" cannot perform action "answer"')]


async def test_unbound_role_is_an_action_failed_with_a_clear_error() -> None:
    flow = one_state([{"say": {"call": "callee", "text": "hi"}}])
    driver = await drive(flow, [event("call.received", call_id=CALLER)])
    assert list(driver.session.trace[0].commands) == [
        ("say", "error", 'invalid: say: call role "callee" is not bound in this session')]
    failed = driver.session.trace[-1]
    assert failed.event == "action.failed"
    assert driver.plans[0].event is not None and driver.plans[0].event.name == "call.received"


async def test_flow_can_handle_action_failed() -> None:
    when = "event.data.action == 'say' and event.call == 'caller'"
    flow = one_state(
        [{"say": {"call": "caller", "text": "hi"}}, {"play": {"call": "caller", "url": "http://x/a.wav"}}],
        on={"action.failed": {"target": "sorry", "when": when}},
        sorry={"entry": [{"hangup": {"call": "caller", "reason": "rejected"}}],
               "on": {"call.finished": "end"}},
    )
    provider = RecordingProvider()
    provider.fail("say")
    driver = await drive(flow, [event("call.received", call_id=CALLER)], provider=provider)
    assert provider.calls[-1] == ("hangup", {"call_id": CALLER, "reason": "rejected"})
    assert provider.actions == ["say", "hangup"]
    assert (driver.session.state, driver.session.status) == ("sorry", "active")
    assert list(driver.session.trace[0].commands) == [
        ("say", "error", "rejected: say failed (scripted)"), ("play", "skipped", None)]


async def test_repeated_failures_abort_the_session() -> None:
    flow = one_state([{"say": {"call": "caller", "text": "hi"}}], on={"action.failed": "start"})
    provider = RecordingProvider()
    provider.fail("say", times=None)
    driver = await drive(flow, [event("call.received", call_id=CALLER)], provider=provider)
    assert provider.actions == ["say", "say", "say", "hangup"]
    assert driver.session.status == "failed"
    assert driver.session.trace[-1].note == "3 failures in a row: rejected: say failed (scripted)"


async def test_failure_in_a_final_state_leaves_the_session_ended(conference: Flow) -> None:
    provider = RecordingProvider()
    provider.fail("hangup")
    driver = await drive(conference, [event("call.received", call_id=CALLER)], provider=provider)
    await driver.advance(10)
    assert (driver.session.state, driver.session.status) == ("giving_up", "ended")
    assert list(driver.session.trace[-2].commands) == [
        ("hangup", "error", "rejected: hangup failed (scripted)")]
    assert driver.session.trace[-1].note == "session ended"


class JsonHttp:
    """An HttpClient on the port's terms that answers from a table."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Mapping[str, Any] | None]] = []

    async def request(self, request: HttpRequest) -> HttpAnswer:
        self.requests.append((request.method, request.url, request.json))
        return HttpAnswer(200, {"ok": True, "echo": dict(request.json or {})})


async def test_arguments_bindings_and_pure_actions() -> None:
    flow = one_state([
        {"conference_create": {"as": "room"}},
        {"dial": {"to": {"sip": "alice@example.com"}, "timeout": "500ms", "as": "agent",
                  "connect": "caller"}},
        {"set": {"agent_id": "{{ agent.id }}", "n": "{{ 1 + 1 }}"}},
        {"conference_join": {"conference": "room", "call": "agent"}},
        {"hold": {"conference": "room", "call": "agent"}},
        {"record": {"call": "caller", "max_duration": "2m"}},
        {"capture_dtmf": {"call": "caller", "max_digits": "{{ vars.n }}", "timeout": 5}},
        {"conference_play": {"conference": "room", "file_id": "f-1"}},
        {"conference_info": {"conference": "room", "as": "info"}},
        {"http": {"url": "https://api.example.com/x", "body": {"who": "{{ vars.agent_id }}"}, "as": "reply"}},
        {"log": {"message": "room {{ room.id }} agent {{ vars.agent_id }}", "level": "warning"}},
    ])
    http = JsonHttp()
    driver = await drive(flow, [event("call.received", call_id=CALLER)], http=http)
    assert driver.provider.calls == [
        ("conference_create", {"name": None}),
        ("dial", {"to": Endpoint("sip", "alice@example.com"), "from_": None, "timeout": 0.5,
                  "connect_call_id": CALLER, "machine_detection": False}),
        ("conference_join", {"conference_id": "conf-1", "call_id": "call-1"}),
        ("hold", {"conference_id": "conf-1", "call_id": "call-1", "music": "music1", "media": None,
                  "loop": 10}),
        ("record", {"call_id": CALLER, "max_duration": 120.0, "beep": False}),
        ("capture_dtmf", {"call_id": CALLER, "max_digits": 2, "timeout": 5.0, "terminator": None,
                          "prompt": None, "language": "en"}),
        ("conference_play", {"conference_id": "conf-1", "media": Media(file_id="f-1"), "loop": 1}),
        ("conference_info", {"conference_id": "conf-1"}),
    ]
    assert http.requests == [("POST", "https://api.example.com/x", {"who": "call-1"})]
    session = driver.session
    assert session.vars == {"agent_id": "call-1", "n": 2, "info": {"participants": []},
                            "reply": {"ok": True, "echo": {"who": "call-1"}}}
    assert session.calls == {"caller": CALLER, "agent": "call-1"}
    assert session.call_states["call-1"] == "dialing"
    assert session.trace[-1].commands[-1] == ("log", "ok", "room conf-1 agent call-1")


async def test_http_without_a_client_is_unsupported() -> None:
    flow = one_state([{"http": {"url": "https://api.example.com/x"}}])
    driver = await drive(flow, [event("call.received", call_id=CALLER)])
    assert list(driver.session.trace[0].commands) == [
        ("http", "error", 'not_allowed: provider "engine" cannot perform action "http"')]


async def test_bad_endpoint_and_template_errors_fail_the_command() -> None:
    speak_error = {"say": {"call": "caller", "text": "{{ event.data.error }}"}}
    flow = one_state(
        [{"dial": {"to": {"fax": "123"}, "as": "x"}}, {"say": {"call": "caller", "text": "{{ nope }}"}}],
        on={"action.failed": {"actions": [speak_error]}},
    )
    driver = await drive(flow, [event("call.received", call_id=CALLER)])
    assert driver.session.trace[0].commands[0][:2] == ("dial", "error")
    assert "not an endpoint" in str(driver.session.trace[0].commands[0][2])
    # The internal action.failed handler spoke the error; the session is still active.
    assert driver.provider.actions == ["say"]
    assert "not an endpoint" in driver.provider.calls[0][1]["text"]
    assert driver.session.status == "active"


# -- a refusal that shows an end the session missed ("gone": the platform answers 404) -------------------
def platform_shows(calls: Mapping[str, CallSeen], rooms: Mapping[str, ConferenceSeen]) -> Observe:
    """The platform's answer to ``observe``, as an adapter would turn it into an ``Observation``."""
    asked: list[tuple[list[str], list[str]]] = []

    async def observe(call_ids: list[str], conference_ids: list[str]) -> Observation:
        asked.append((call_ids, conference_ids))
        return Observation({c: calls[c] for c in call_ids if c in calls},
                           {r: rooms[r] for r in conference_ids if r in rooms})

    observe.asked = asked  # type: ignore[attr-defined]
    return observe


async def test_gone_refusal_first_delivers_the_end_the_platform_shows(
    conference: Flow, caplog: pytest.LogCaptureFixture
) -> None:
    # The caller hung up as the dial went out: the room closed with them, and the dial into it is refused
    # before the caller's call.finished webhook arrives. The flow hears the hang-up, not a stale error.
    provider = RecordingProvider()
    provider.fail("conference_dial", status=404, message=f"Conference with ID {ROOM} not found.")
    observe = platform_shows({CALLER: CallSeen(ended=True, reason="hangup")},
                             {ROOM: ConferenceSeen(ended=True)})
    with caplog.at_level(logging.WARNING, logger="flowengine.flow"):
        driver = await drive(conference, TO_DIALING, provider=provider, observe=observe)
    assert (driver.session.state, driver.session.status) == ("abandoned", "ended")
    assert [r.getMessage() for r in caplog.records if r.name == "flowengine.flow"] == [
        "session-1: call.finished found on asking after a refusal (no webhook yet)",
        "session-1: conference.finished found on asking after a refusal (no webhook yet)"]
    assert observe.asked == [([CALLER], [ROOM])]  # type: ignore[attr-defined]
    after_dial = [(step.event, step.source, step.target) for step in driver.session.trace[4:]]
    assert after_dial[0] == ("call.finished", "dialing", "abandoned")
    assert ("conference.finished", "abandoned", None) in after_dial


async def test_gone_refusal_stands_when_the_platform_shows_nothing_missed(conference: Flow) -> None:
    provider = RecordingProvider()
    provider.fail("conference_dial", status=404)
    observe = platform_shows({CALLER: CallSeen(up=True)}, {ROOM: ConferenceSeen(members=frozenset({CALLER}))})
    driver = await drive(conference, TO_DIALING, provider=provider, observe=observe)
    assert driver.session.trace[-1].event == "action.failed"
    assert driver.session.status == "failed"


async def test_other_refusals_are_not_asked_about(conference: Flow) -> None:
    provider = RecordingProvider()
    provider.fail("conference_dial", status=400)
    observe = platform_shows({CALLER: CallSeen(ended=True)}, {})
    driver = await drive(conference, TO_DIALING, provider=provider, observe=observe)
    assert observe.asked == []  # type: ignore[attr-defined]
    assert driver.session.status == "failed"


async def test_gone_refusal_stands_when_the_platform_cannot_be_asked(
    conference: Flow, caplog: pytest.LogCaptureFixture
) -> None:
    # Asking fails too (the platform is down): nothing is made up, the refusal is handled as before.
    provider = RecordingProvider()
    provider.fail("conference_dial", status=404)
    asked: list[int] = []

    async def unreachable(calls: list[str], rooms: list[str]) -> Observation:
        asked.append(1)
        raise ProviderError("no answer within the 3 s deadline", retryable=True, outcome_unknown=True)

    with caplog.at_level(logging.WARNING, logger="flowengine.flow"):
        driver = await drive(conference, TO_DIALING, provider=provider, observe=unreachable)
    assert asked == [1]
    assert [r.getMessage() for r in caplog.records if r.name == "flowengine.flow"] == [
        "session-1: could not ask what the refusal missed: no answer within the 3 s deadline"]
    assert driver.session.trace[-1].event == "action.failed"
    assert driver.session.status == "failed"


async def test_a_required_parameter_rendered_to_nothing_fails_the_action_unsent() -> None:
    flow = one_state([{"set": {"vars": {"name": None}}},
                      {"say": {"call": "caller", "text": "{{ vars.name }}"}},
                      {"play": {"call": "caller", "url": "http://x/a.wav"}}])
    driver = await drive(flow, [event("call.received", call_id=CALLER)])
    assert driver.provider.actions == ["hangup"]  # no say without text, no play: the failed session ends
    assert list(driver.session.trace[0].commands) == [
        ("set", "ok", None),
        ("say", "error", "invalid: say: \"text\" rendered to nothing ('{{ vars.name }}')"),
        ("play", "skipped", None)]
    assert driver.session.trace[-1].event == "action.failed"


class NotFound:
    """An HttpClient whose host answers 404, as the http action's client reports it."""

    async def request(self, request: HttpRequest) -> HttpAnswer:
        raise ProviderError("the host answered 404", status=404)


async def test_an_http_404_says_nothing_of_the_calls_and_is_not_asked_about() -> None:
    flow = one_state([{"http": {"url": "https://api.example.com/x"}}],
                     on={"action.failed": {"actions": [{"log": {"message": "{{ event.data.kind }}"}}]},
                         "call.finished": "end"})
    observe = platform_shows({CALLER: CallSeen(ended=True, reason="hangup")}, {})
    driver = await drive(flow, [event("call.received", call_id=CALLER)], http=NotFound(), observe=observe)
    assert observe.asked == []  # type: ignore[attr-defined]
    assert (driver.session.state, driver.session.status) == ("start", "active")
    assert driver.session.trace[-1].event == "action.failed"
    assert list(driver.session.trace[-1].commands) == [("log", "ok", "not_found")]
