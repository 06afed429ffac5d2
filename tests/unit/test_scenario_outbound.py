"""Scenarios of outbound flows (``start: {outbound: {...}}``) and expectations on the http requests a flow
made (``expect.http``): how they are read, what is refused and how, and how requests are compared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowengine.runtime.ports import HttpRequest
from flowengine.scenarios.http_expect import check_http, parse_expected_http
from flowengine.scenarios.http_mocks import HttpCall
from flowengine.scenarios.model import OutboundStart, ScenarioError, load_scenarios, parse_scenario

OUTBOUND_FLOW = """\
flow: ring
start: outbound
initial: calling
states:
  calling:
    on: {call.answered: done, call.failed: done}
    after: {1m: done}
  done: {type: final}
scenarios:
"""
INBOUND_FLOW = OUTBOUND_FLOW.replace("start: outbound\n", "")


def test_an_outbound_start_is_the_api_request() -> None:
    scenario = parse_scenario("s", {"start": {"outbound": {"to": 447700900123, "vars": {"time": "9:30"}}}})
    assert scenario.outbound == OutboundStart("447700900123", None, {"time": "9:30"})
    request = scenario.outbound.request("ring")
    assert request == {"flow": "ring", "to": "447700900123", "vars": {"time": "9:30"}}
    with_from = OutboundStart({"sip": "a@b.example"}, "4592457976")
    assert with_from.request("ring")["from"] == "4592457976"


@pytest.mark.parametrize(("body", "message"), [
    ({"start": "outbound"}, 'start: {outbound: {to: "<number>", from?, vars?}}'),
    ({"start": {"inbound": {}}}, "start: {outbound:"),
    ({"start": {"outbound": {}}}, "start.outbound.to: the number dialled"),
    ({"start": {"outbound": {"to": "1", "vrs": {}}}}, "unknown field(s) vrs; allowed: to, from, vars"),
    ({"start": {"outbound": {"to": "1", "vars": [1]}}}, "vars is a mapping"),
    ({"start": {"outbound": {"to": "1"}}, "caller": {"from": "1"}}, "not both"),
])
def test_a_wrong_start_is_refused_saying_how_to_write_it(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=r"^scenario: ") as caught:
        parse_scenario("s", body)
    assert message in str(caught.value)


def test_a_scenario_starts_its_session_the_way_its_flow_does(tmp_path: Path) -> None:
    outbound, inbound = tmp_path / "out.yaml", tmp_path / "in.yaml"
    outbound.write_text(OUTBOUND_FLOW + "  s: {parties: {}}\n")
    inbound.write_text(INBOUND_FLOW + '  s: {start: {outbound: {to: "447700900123"}}}\n')
    with pytest.raises(ScenarioError) as refused_out:
        load_scenarios(outbound)
    with pytest.raises(ScenarioError) as refused_in:
        load_scenarios(inbound)
    said_out = str(refused_out.value)
    assert f'{outbound}: scenario "s": the flow starts by dialling (start: outbound)' in said_out
    assert "start: {outbound: {to:" in str(refused_out.value)
    assert f'{inbound}: scenario "s": start: outbound is for a flow that starts by dialling' in str(
        refused_in.value)
    assert "this flow answers inbound calls" in str(refused_in.value)
    outbound.write_text(OUTBOUND_FLOW + '  s: {start: {outbound: {to: "447700900123"}}}\n')
    assert load_scenarios(outbound)["s"].outbound is not None


def call(method: str = "POST", url: str = "https://crm.example.com/results", json: Any = None,
         headers: dict[str, str] | None = None, form: dict[str, str] | None = None) -> HttpCall:
    request = HttpRequest(method, url, headers or {}, json, form)
    return HttpCall.of(request, "mock", 0.0, status=200)


def expect(*entries: dict[str, Any]) -> Any:
    return parse_expected_http(list(entries))


def test_requests_that_match_in_order_pass() -> None:
    made = [call(json={"result": "confirmed", "attempts": 1, "extra": {"a": 1, "b": 2}},
                 headers={"Authorization": "Bearer ${CRM_TOKEN}"}),
            call("GET", "https://crm.example.com/next?id=7")]
    wanted = expect({"method": "POST", "url": "https://crm.example.com/*",
                     "json": {"result": "confirmed", "extra": {"b": 2}},
                     "headers": {"authorization": "Bearer ${CRM_TOKEN}"}},
                    {"url": "https://crm.example.com/next*"})
    assert check_http(wanted, made) == []
    assert check_http(expect(), []) == []


def test_a_request_that_differs_is_named_with_what_differed() -> None:
    made = [call(json={"result": "cancelled", "extra": {"a": 1}})]
    wanted = expect({"method": "PUT", "url": "https://crm.example.com/other",
                     "json": {"result": "confirmed", "extra": {"b": 2}, "attempts": 1}})
    (problem,) = check_http(wanted, made)
    assert problem.startswith("http request 1 of 1 (POST https://crm.example.com/results) is not "
                              "expect.http[0] (PUT https://crm.example.com/other): ")
    assert "method was POST, expected PUT" in problem
    assert "url was https://crm.example.com/results, expected https://crm.example.com/other" in problem
    assert 'json.result: was "cancelled", expected "confirmed"' in problem
    assert "json.extra.b: missing (it has a)" in problem and "json.attempts: missing" in problem


def test_json_values_compare_as_json_does() -> None:
    assert check_http(expect({"url": "*", "json": {"n": 1}}), [call(json={"n": 1.0})]) == []
    (problem,) = check_http(expect({"url": "*", "json": {"n": 1}}), [call(json={"n": True})])
    assert "json.n: was true, expected 1" in problem
    (listed,) = check_http(expect({"url": "*", "json": {"l": [1, 2]}}), [call(json={"l": [1, 2, 3]})])
    assert "json.l: was [1, 2, 3], expected [1, 2]" in listed
    (none,) = check_http(expect({"url": "*", "json": {"n": 1}}), [call(form={"n": "1"})])
    assert "json: the request had none" in none


def test_requests_missing_or_more_than_expected_are_listed() -> None:
    (missing,) = check_http(expect({"url": "https://a.example/*"}, {"method": "GET", "url": "https://b.example/"}),
                            [call(url="https://a.example/x")])
    assert missing == ("the flow made 1 http request, expect.http lists 2: never made: GET https://b.example/")
    (extra,) = check_http(expect(), [call(), call("GET")])
    assert extra == ("the flow made 2 http requests, expect.http lists 0: not expected: "
                     "POST https://crm.example.com/results, GET https://crm.example.com/results")


@pytest.mark.parametrize(("raw", "message"), [
    ({"method": "POST"}, "expect.http[0]: an expected request is a mapping with at least a url"),
    ({"url": "x", "body": {}}, "expect.http[0]: unknown field(s) body; allowed: method, url, json, form"),
    ({"url": "x", "method": "FETCH"}, "expect.http[0].method: one of GET, POST"),
    ({"url": "x", "headers": ["a"]}, "expect.http[0].headers: a mapping"),
])
def test_a_wrong_expectation_is_refused_saying_which(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario("s", {"expect": {"http": [raw]}})
    assert message in str(caught.value)
    with pytest.raises(ValueError, match="a list of the requests expected"):
        parse_expected_http({"url": "x"})
