"""From a command's rendered parameters to the provider's arguments, and from its result back into the
session: media by URL, endpoints a template renders wrongly, optional roles, what each result binds (or
does not), and how a provider's settled answers read in the trace."""

from __future__ import annotations

from typing import Any

import pytest

from flowengine.flow.build import build_flow
from flowengine.flow.model import Flow
from flowengine.runtime.ports import (
    ALREADY,
    UNKNOWN,
    ActionResult,
    Endpoint,
    HttpAnswer,
    HttpRequest,
    Media,
    ProviderCommand,
)
from flowengine.testing import RecordingProvider, drive, event

CALLER = "caller-1"
RECEIVED = event("call.received", call_id=CALLER)


def flow_of(entry: list[dict[str, Any]], **top: Any) -> Flow:
    states = {"start": {"entry": entry, "on": top.pop("on", {})}, "end": {"type": "final"}}
    return build_flow({"flow": "t", "version": 1, "initial": "start", "vars": top.pop("vars", {}),
                       "states": states, **top})


def outcomes(driver: Any, index: int = 0) -> list[tuple[str, str, Any]]:
    return list(driver.session.trace[index].commands)


async def test_media_by_url_reaches_the_provider_for_play_and_hold() -> None:
    driver = await drive(flow_of([
        {"conference_create": {"as": "room"}},
        {"play": {"call": "caller", "url": "https://x/a.wav"}},
        {"hold": {"conference": "room", "call": "caller", "url": "https://x/music.mp3"}},
        {"hold": {"conference": "room", "call": "caller"}},  # the platform's own music: no media
    ]), [RECEIVED])
    media = [args.get("media") for _, args in driver.provider.calls[1:]]
    assert media == [Media(url="https://x/a.wav"), Media(url="https://x/music.mp3"), None]


@pytest.mark.parametrize("rendered", [["4477"], {"phone": "1", "sip": "a@b"}, {"fax": "1"}, 4.5])
async def test_an_endpoint_a_template_renders_to_no_endpoint_is_a_clear_failure(rendered: Any) -> None:
    driver = await drive(flow_of([{"dial": {"to": "{{ vars.to }}", "as": "agent"}}], vars={"to": rendered}),
                         [RECEIVED])
    ((action, status, detail),) = outcomes(driver)
    assert (action, status) == ("dial", "error") and str(detail).startswith("invalid: not an endpoint: ")
    assert "dial" not in driver.provider.actions


async def test_a_dial_without_as_binds_no_role() -> None:
    driver = await drive(flow_of([{"dial": {"to": "4477"}}]), [RECEIVED])
    assert driver.session.calls == {"caller": CALLER}
    assert outcomes(driver) == [("dial", "ok", "call-1")]  # the id still shows in the trace


async def test_a_conference_hung_up_counts_as_ended() -> None:
    driver = await drive(flow_of([
        {"conference_create": {"as": "room"}}, {"conference_hangup": {"conference": "room"}},
        {"log": {"message": "{{ room.state }}"}}, {"conference_hangup": {"conference": "room"}},
    ]), [RECEIVED])
    assert driver.provider.actions == ["conference_create", "conference_hangup"]
    assert [detail for _, _, detail in outcomes(driver)][2:] == [
        "ended", 'nothing to do: conference "room" has already ended']


class Http:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.bodies: list[Any] = []

    async def request(self, request: HttpRequest) -> HttpAnswer:
        self.bodies.append(request.json)
        return HttpAnswer(200, self.answer)


async def test_http_keeps_an_answer_and_a_body_that_are_lists() -> None:
    http = Http([{"id": 1}, {"id": 2}])
    flow = flow_of([{"http": {"url": "https://api.example.com/x", "body": "{{ vars.ids }}", "as": "found"}}],
                   vars={"ids": [1, 2]})
    driver = await drive(flow, [RECEIVED], http=http)
    assert http.bodies == [[1, 2]]
    assert driver.session.vars["found"] == [{"id": 1}, {"id": 2}]


class Settling(RecordingProvider):
    """Answers some actions as a provider that found them already done, or could not tell."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__()
        self.answers = answers

    async def execute(self, command: ProviderCommand) -> ActionResult:
        result = await super().execute(command)
        return ActionResult(data=self.answers[command.action]) if command.action in self.answers else result


async def test_a_providers_settled_answers_read_in_the_trace() -> None:
    provider = Settling({"answer": ALREADY, "say": UNKNOWN})
    driver = await drive(flow_of([{"answer": {"call": "caller"}}, {"say": {"call": "caller", "text": "hi"}},
                                  {"play": {"call": "caller", "url": "https://x/a.wav"}}]),
                         [RECEIVED], provider=provider)
    assert outcomes(driver) == [
        ("answer", "ok", "already so"), ("say", "ok", "outcome unknown: not sent again"),
        ("play", "ok", None)]


async def test_optional_roles_and_plain_values_reach_the_provider_converted() -> None:
    driver = await drive(flow_of([
        {"dial": {"to": 4477, "as": "agent"}},
        {"dial": {"to": "4478", "as": "other", "connect": "agent", "timeout": "90s"}},
        {"record": {"call": "caller", "beep": "{{ 1 }}", "max_duration": 30}},
    ]), [RECEIVED])
    assert driver.provider.calls == [
        ("dial", {"to": Endpoint("phone", "4477"), "from_": None, "timeout": 60.0, "connect_call_id": None,
                  "machine_detection": False}),
        ("dial", {"to": Endpoint("phone", "4478"), "from_": None, "timeout": 90.0,
                  "connect_call_id": "call-1", "machine_detection": False}),
        ("record", {"call_id": CALLER, "max_duration": 30.0, "beep": True}),
    ]
