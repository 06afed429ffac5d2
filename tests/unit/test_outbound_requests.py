"""What the write API accepts, checked before anything is dialled: a flow's variables as a typed contract,
the call and event requests, the session ids idempotency keys lead to, and where the config may list
outbound flows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowengine.config import ServiceConfig, parse_config
from flowengine.errors import ConfigError, RequestError
from flowengine.flow.loader import load_flow_or_raise
from flowengine.flow.variables import declared_types, parse_text, problems
from flowengine.server.api import describe_flow
from flowengine.server.flows import load_flows
from flowengine.server.outbound import CallRequest, parse_call
from flowengine.server.steering import parse_event

ROOT = Path(__file__).resolve().parents[2]
REMINDER = ROOT / "tests" / "testdata" / "outbound" / "reminder.yaml"
INBOUND = ROOT / "flows" / "two_party_conference.yaml"
DECLARED = {"name": "", "tries": 1, "ratio": 0.5, "vip": False, "tags": [], "extra": {}, "anything": None}


def test_each_declared_value_gives_its_variable_a_type() -> None:
    assert declared_types(DECLARED) == {
        "name": "string", "tries": "integer", "ratio": "number", "vip": "boolean", "tags": "list",
        "extra": "mapping", "anything": "any"}


@pytest.mark.parametrize(("given", "expected"), [
    ({"name": "Ada", "tries": 3, "ratio": 2, "vip": True, "tags": ["a"], "extra": {"k": 1}, "anything": [1]},
     []),
    ({"name": 5}, ['vars.name: expected a string (as declared: ""), got 5']),
    ({"tries": 2.5}, ["vars.tries: expected an integer (as declared: 1), got 2.5"]),
    ({"tries": True}, ["vars.tries: expected an integer (as declared: 1), got true"]),
    ({"ratio": "1"}, ['vars.ratio: expected a number (as declared: 0.5), got "1"']),
    ({"vip": "yes"}, ['vars.vip: expected true or false (as declared: false), got "yes"']),
    ({"tags": {}}, ["vars.tags: expected a list (as declared: []), got {}"]),
    ({"name": None}, ['vars.name: expected a string (as declared: ""), got null']),
    ({"nam": "Ada"}, ['vars: unknown variable "nam"; did you mean "name"? (the flow declares: anything, '
                      "extra, name, ratio, tags, tries, vip)"]),
])
def test_given_values_are_checked_against_the_declared_names_and_types(
    given: dict[str, Any], expected: list[str]
) -> None:
    assert problems(DECLARED, given) == expected


@pytest.mark.parametrize(("kind", "text", "value"), [
    ("string", "0044 7700", "0044 7700"), ("integer", "3", 3), ("number", "2.5", 2.5), ("number", "2", 2),
    ("boolean", "TRUE", True), ("list", '["a"]', ["a"]), ("mapping", '{"a": 1}', {"a": 1}),
    ("any", "plain words", "plain words"), ("any", "[1]", [1]),
])
def test_command_line_text_is_read_as_the_declared_type(kind: str, text: str, value: Any) -> None:
    assert parse_text(kind, text) == value


@pytest.mark.parametrize(("kind", "text"), [("integer", "3.5"), ("integer", "x"), ("boolean", "yes"),
                                            ("list", "{}"), ("number", "true")])
def test_command_line_text_that_is_not_of_the_type_says_what_was_expected(kind: str, text: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_text(kind, text)


@pytest.fixture(scope="module")
def flows() -> dict[str, Any]:
    config = ServiceConfig(provider="infobip", default_flow=INBOUND, flows=(REMINDER,))
    return load_flows(config)[0]


def test_a_call_request_is_normalised(flows: dict[str, Any]) -> None:
    call = parse_call({"flow": "reminder", "to": "+44 (7700) 900-001", "from": "Acme", "vars": {"tries": 2},
                       "idempotency_key": "job-1"}, flows)
    assert call == CallRequest("reminder", "447700900001", "Acme", {"tries": 2}, "job-1")
    sip = {"sip": "ada@example.com"}
    assert parse_call({"flow": "reminder", "to": sip}, flows).to == sip
    assert parse_call({"flow": "reminder", "to": {"phone": "+4477009"}}, flows).to == {"phone": "4477009"}


def test_an_idempotency_key_leads_every_instance_to_one_session_id() -> None:
    number = "447700900001"
    keyed = CallRequest("reminder", number, idempotency_key="job-1")
    assert keyed.session_id() == CallRequest("reminder", "1", idempotency_key="job-1").session_id()
    assert keyed.session_id() != CallRequest("reminder", number, idempotency_key="job-2").session_id()
    assert CallRequest("reminder", "1").session_id() != CallRequest("reminder", "1").session_id()
    other = CallRequest("reminder", "447700900002", idempotency_key="job-1")
    assert keyed.fingerprint() != other.fingerprint()
    assert keyed.fingerprint() == CallRequest("reminder", number, idempotency_key="job-9").fingerprint()


@pytest.mark.parametrize(("doc", "reason"), [
    ({"flow": "reminder", "to": "447700900001", "vars": {"tries": "2"}}, "vars.tries: expected an integer"),
    ({"flow": "reminder", "to": "+44 77OO"}, "to must be a phone number"),
    ({"flow": "reminder", "to": "1234567890123456"}, "to must be a phone number"),  # 16 digits
    ({"flow": "reminder", "to": {"fax": "1"}}, "to is required"),
    ({"flow": "reminder", "to": "447700900001", "from": "a\nb"}, "from must be a string of 1 to 256"),
    ({"flow": "reminder", "to": "447700900001", "idempotency_key": "k" * 256}, "idempotency_key must be"),
    ({"flow": 1, "to": "447700900001"}, "flow is required"),
    ("reminder", "the body must be a JSON object"),
])
def test_a_bad_call_request_says_what_is_wrong(flows: dict[str, Any], doc: Any, reason: str) -> None:
    with pytest.raises(RequestError, match=reason.replace("(", r"\(").replace(")", r"\)")) as refused:
        parse_call(doc, flows)
    assert refused.value.status == 400


@pytest.mark.parametrize(("doc", "reason"), [
    ({"name": "Agent.Free"}, "name is required: a custom event"),
    ({"name": "agent"}, "name is required"),
    ({"name": "agent.free", "data": "x"}, "data must be an object"),
    ({"name": "agent.free", "id": ""}, "id must be a string of 1 to 255"),
    ({"name": "agent.free", "extra": 1}, 'unknown field "extra"'),
    (None, "the body must be a JSON object"),
])
def test_a_bad_event_request_says_what_is_wrong(doc: Any, reason: str) -> None:
    with pytest.raises(RequestError, match=reason):
        parse_event(doc)


def test_an_event_request_is_read() -> None:
    request = parse_event({"name": "agent.free", "data": {"agent": "a7"}, "id": "crm-1"})
    assert (request.name, request.data, request.id) == ("agent.free", {"agent": "a7"}, "crm-1")


def test_flows_lists_outbound_flows_and_routes_answer_inbound_calls(tmp_path: Path) -> None:
    config = parse_config({"provider": "infobip", "default_flow": str(INBOUND), "flows": [str(REMINDER)]})
    assert config.flows == (REMINDER,) and config.flow_paths() == [INBOUND, REMINDER]
    with pytest.raises(ConfigError, match=r"is an outbound flow .* list it under `flows`"):
        load_flows(ServiceConfig(provider="infobip", default_flow=REMINDER))
    with pytest.raises(ConfigError, match="starts on inbound calls: route it"):
        load_flows(ServiceConfig(provider="infobip", flows=(INBOUND,)))
    flows, router = load_flows(ServiceConfig(provider="sinch", flows=(REMINDER,)))  # outbound only: fine
    assert list(flows) == ["reminder"] and router.default is None


def test_the_flow_listing_says_how_a_flow_starts_its_variables_and_events() -> None:
    described = describe_flow(load_flow_or_raise(REMINDER))
    assert (described["start"], described["events"]) == ("outbound", ["agent.free"])
    assert described["vars"] == {"name": "string", "slot": "string", "tries": "integer"}
    assert describe_flow(load_flow_or_raise(INBOUND))["start"] == "inbound"
