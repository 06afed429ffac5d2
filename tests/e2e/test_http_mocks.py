"""`http:` mocks in scenarios, so `flowengine simulate` and `flowengine test` run flows with http actions
offline: a mock answers (status, body, delay), an unmocked request fails the scenario naming it, a
failure a mock meant is no failure of the scenario, any other http failure is, and `--http-allow` lets
an unmocked request reach a real host (an aiohttp server on 127.0.0.1)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from flowengine.cli import cli
from flowengine.scenarios.model import load_scenarios
from flowengine.scenarios.runner import ScenarioResult, run_scenario
from flowengine.server.serving import serving

FLOW = """\
flow: reminder-crm
version: 1
vars: {customer: null, tier: null, code: null}
initial: answering
states:
  answering:
    entry:
      - answer: {call: caller}
      - http:
          url: "CRMBASE/customers/{{ event.call_id }}"
          method: GET
          headers: {Authorization: "Bearer ${CRM_TOKEN}"}
          timeout: 2s
          as: customer
          save: {tier: response.body.tier, code: response.status}
    on:
      call.answered:
        - {target: gold, when: "vars.tier == 'gold'"}
        - plain
      action.failed: sorry
    after: {10s: sorry}
  gold:
    entry: [{say: {call: caller, text: "Welcome back, {{ vars.customer.name }}."}}]
    on: {say.finished: done}
    after: {10s: done}
  plain:
    entry: [{say: {call: caller, text: Hello.}}]
    on: {say.finished: done}
    after: {10s: done}
  sorry:
    entry: [{hangup: {call: caller}}]
    type: final
  done:
    entry: [{hangup: {call: caller}}]
    type: final
scenarios:
  gold-customer:
    http:
      - {method: GET, url: "CRMBASE/customers/*", body: {name: Ada, tier: gold}, delay: 500ms}
    expect: {state: done, states: [answering, gold, done]}
  crm-down:
    http:
      - {url: "CRMBASE/*", status: 503, body: {error: maintenance}}
    expect: {state: sorry}
  crm-slow:
    http:
      - {url: "CRMBASE/*", delay: 1m}
    expect: {state: sorry}
  wrong-mock:
    http:
      - {method: POST, url: "CRMBASE/customers/*"}
    expect: {state: sorry}
"""


def flow_file(tmp_path: Path, crm: str = "https://crm.example.com") -> Path:
    path = tmp_path / "reminder.yaml"
    path.write_text(FLOW.replace("CRMBASE", crm))
    return path


async def play(path: Path, name: str, provider: str, **options: Any) -> ScenarioResult:
    return await run_scenario(provider, path, load_scenarios(path)[name], **options)


@pytest.mark.parametrize("provider", ["infobip", "sinch"])
async def test_a_mock_answers_and_its_answer_is_mapped_into_variables(tmp_path: Path, provider: str) -> None:
    result = await play(flow_file(tmp_path), "gold-customer", provider)
    assert result.passed, result.failures
    assert result.session["vars"]["tier"] == "gold" and result.session["vars"]["code"] == 200
    (call,) = result.http_calls
    assert call["source"] == "mock" and call["method"] == "GET" and call["status"] == 200
    assert call["url"].startswith("https://crm.example.com/customers/")


@pytest.mark.parametrize("provider", ["infobip", "sinch"])
async def test_failures_a_mock_meant_leave_the_scenario_passing(tmp_path: Path, provider: str) -> None:
    down = await play(flow_file(tmp_path), "crm-down", provider)
    slow = await play(flow_file(tmp_path), "crm-slow", provider)
    for result in (down, slow):
        assert result.passed, result.failures
        assert result.session["state"] == "sorry"
    assert down.http_calls[0]["status"] == 503
    assert "no answer within 2 s (mock)" in (slow.http_calls[0]["error"] or "")
    # The action's 2 s timeout, not the mock's minute: virtual time shows where it gave up.
    assert slow.virtual_seconds < 10


@pytest.mark.parametrize("provider", ["infobip", "sinch"])
async def test_an_unmocked_request_fails_the_scenario_naming_it(tmp_path: Path, provider: str) -> None:
    result = await play(flow_file(tmp_path), "wrong-mock", provider)
    assert result.session["state"] == "sorry"  # the flow's expectation is met ...
    assert not result.passed  # ... but the scenario fails
    (failure,) = result.failures
    assert "http action failed" in failure
    assert "GET https://crm.example.com/customers/" in failure and "matches no http mock" in failure
    assert result.http_calls[0]["source"] == "unmocked"


@pytest.fixture
async def crm_server() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    async def customer(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({"name": "Grace", "tier": "gold"})

    app = web.Application()
    app.router.add_get("/customers/{id}", customer)
    async with serving(app) as url:
        yield url, seen


async def test_http_allow_lets_an_unmocked_request_reach_a_real_host(
    tmp_path: Path, crm_server: tuple[str, list[dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = crm_server
    monkeypatch.setenv("CRM_TOKEN", "t-123")
    path = flow_file(tmp_path, url)
    port = int(url.rsplit(":", 1)[1])
    allow = ({"host": "127.0.0.1", "ports": [port], "private": True},)
    result = await play(path, "wrong-mock", "infobip", http_allow=allow)
    # The real answer leads the call elsewhere than the offline expectation: no http failure, though.
    assert result.failures == ['ended in state "done", expected "sorry"']
    assert result.session["state"] == "done" and result.session["vars"]["customer"]["name"] == "Grace"
    assert result.http_calls[0]["source"] == "real" and seen[0]["Authorization"] == "Bearer t-123"
    # Without the allow-list entry, the same scenario stays offline and fails.
    offline = await play(path, "wrong-mock", "infobip")
    assert not offline.passed and len(seen) == 1


def test_flowengine_test_fails_on_an_unmocked_request_and_passes_with_mocks(tmp_path: Path) -> None:
    path = flow_file(tmp_path)
    runner = CliRunner()
    mocked = runner.invoke(cli, ["test", str(path), "--format", "json", "-p", "infobip"])
    report = json.loads(mocked.stdout)
    verdicts = {r["scenario"]: r["passed"] for f in report["files"] for r in f["scenarios"]}
    assert verdicts == {"gold-customer": True, "crm-down": True, "crm-slow": True, "wrong-mock": False}
    calls = {r["scenario"]: r["http"] for f in report["files"] for r in f["scenarios"]}
    assert [(c["source"], c["status"]) for c in calls["crm-down"]] == [("mock", 503)]
    assert [c["source"] for c in calls["wrong-mock"]] == ["unmocked"]
    assert mocked.exit_code == 1
    text = runner.invoke(cli, ["test", str(path), "-p", "sinch"])
    assert "FAIL wrong-mock on sinch" in text.output
    assert "matches no http mock of the scenario" in text.output


def test_simulate_takes_http_allow_and_refuses_a_bad_entry(tmp_path: Path) -> None:
    path = flow_file(tmp_path)
    runner = CliRunner()
    bad = runner.invoke(cli, ["simulate", str(path), "--http-allow", "crm.example.com:99999"])
    assert bad.exit_code == 2 and "port '99999' is not a number 1-65535" in bad.output
    good = runner.invoke(cli, ["simulate", str(path), "-s", "gold-customer", "-v",
                               "--http-allow", "example.com"])
    assert good.exit_code == 0, good.output
    assert "http ok: 200" in good.output
