"""The `http` action's request and answer through the real service: headers whose `${VAR}` is filled from
the service's environment (never stored), JSON and form bodies, the action's own timeout, the answer
mapped into variables by `save` expressions, a status that is not 2xx reaching `action.failed`, and the
flow's headers not following a redirect to another origin. The CRM is an aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from flowengine.errors import ProviderError
from flowengine.runtime.clock import SystemClock
from flowengine.runtime.ports import HttpRequest
from flowengine.scenarios.model import parse_scenario
from flowengine.scenarios.runner import play
from flowengine.scenarios.stack import running_stack
from flowengine.server.http_action import AllowListHttp
from flowengine.server.serving import serving

TOKEN = "PLANTED-crm-token-8f3a9c"


@dataclass
class Seen:
    """What the CRM received, request by request."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)  # what the second origin received


def crm_app(seen: Seen, other_url: list[str]) -> web.Application:
    async def route(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        form = dict(await request.post()) if request.content_type.endswith("urlencoded") else None
        body = await request.json() if request.content_type == "application/json" else None
        seen.requests.append({"name": name, "method": request.method, "headers": dict(request.headers),
                              "form": form, "json": body, "query": dict(request.query)})
        if name == "confirm":
            return web.json_response({"appointment": {"id": "a-7", "state": "confirmed"}, "n": 2},
                                     headers={"X-Request-Id": "r-1"})
        if name == "slow":
            await asyncio.sleep(5)
            return web.json_response({})
        if name == "gone":
            return web.json_response({"error": "no such appointment"}, status=404)
        if name == "away":  # to the same host on another port: another origin
            raise web.HTTPFound(f"{other_url[0]}/landing")
        if name == "text":
            return web.Response(text="plain words")
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_route("*", "/{name}", route)
    return app


def other_app(seen: Seen) -> web.Application:
    async def landing(request: web.Request) -> web.Response:
        seen.other.append({"headers": dict(request.headers)})
        return web.json_response({"landed": True})

    app = web.Application()
    app.router.add_route("*", "/landing", landing)
    return app


@dataclass
class Crm:
    url: str
    other: str
    seen: Seen

    def allow(self) -> tuple[dict[str, Any], ...]:
        ports = [int(u.rsplit(":", 1)[1]) for u in (self.url, self.other)]
        return ({"host": "127.0.0.1", "ports": ports, "private": True},)


@pytest.fixture
async def crm() -> AsyncIterator[Crm]:
    seen, other_url = Seen(), [""]
    async with serving(other_app(seen)) as other, serving(crm_app(seen, other_url)) as url:
        other_url[0] = other
        yield Crm(url, other, seen)


def flow_with(http: dict[str, Any], vars_: dict[str, Any] | None = None) -> str:
    """A flow whose entry answers, runs ``http`` and then goes to ``done``; a failure goes to
    ``failed``, keeping what action.failed said in vars."""
    return yaml.safe_dump({
        "flow": "crm", "version": 1, "vars": {"status": None, "kind": None, **(vars_ or {})},
        "initial": "asking",
        "states": {
            "asking": {
                "entry": [{"answer": {"call": "caller"}}, {"http": http}],
                "on": {"call.answered": "done",
                       "action.failed": {"target": "failed", "actions": [{"set": {
                           "status": "{{ event.data.status }}", "kind": "{{ event.data.kind }}"}}]}},
                "after": {"20s": "failed"},
            },
            "done": {"entry": [{"hangup": {"call": "caller"}}], "type": "final"},
            "failed": {"entry": [{"hangup": {"call": "caller"}}], "type": "final"},
        },
    }, sort_keys=False)


async def run(tmp_path: Path, flow: str, crm: Crm, provider: str = "infobip",
              **options: Any) -> dict[str, Any]:
    path = tmp_path / "crm.yaml"
    path.write_text(flow)
    scenario = parse_scenario("s", {})
    async with running_stack(provider, path, parties=scenario.parties, http_allow=crm.allow(),
                             service_options=options) as stack:
        result = await play(stack, scenario)
        record = await stack.service.store.get(result.session["id"])
        assert record is not None
        stored = json.dumps(record.data)
    return {**result.session, "stored": stored, "failures": result.failures}


@pytest.mark.parametrize("provider", ["infobip", "sinch"])
async def test_a_header_from_the_environment_reaches_the_host_and_nothing_stores_it(
    tmp_path: Path, crm: Crm, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    monkeypatch.setenv("CRM_TOKEN", TOKEN)
    flow = flow_with({
        "url": f"{crm.url}/confirm?who={{{{ event.call_id }}}}", "method": "PUT",
        "headers": {"Authorization": "Bearer ${CRM_TOKEN}", "Accept": "application/json"},
        "body": {"state": "confirmed", "caller": "{{ event.call_id }}"},
        "save": {"appointment": "response.body.appointment.id", "code": "response.status",
                 "request_id": "response.headers['x-request-id']", "twice": "response.body.n * 2"},
    }, {"appointment": None, "code": None, "request_id": None, "twice": None})
    session = await run(tmp_path, flow, crm, provider)
    assert session["state"] == "done"
    (request,) = crm.seen.requests
    assert request["method"] == "PUT" and request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["json"]["state"] == "confirmed" and request["json"]["caller"] == request["query"]["who"]
    assert session["vars"]["appointment"] == "a-7" and session["vars"]["code"] == 200
    assert session["vars"]["request_id"] == "r-1" and session["vars"]["twice"] == 4
    assert TOKEN not in session["stored"] and TOKEN not in json.dumps(session)


async def test_a_form_body_is_sent_form_encoded(tmp_path: Path, crm: Crm) -> None:
    form = {"state": "confirmed", "n": 3, "who": "{{ 40 + 2 }}"}
    flow = flow_with({"url": f"{crm.url}/confirm", "form": form, "as": "answer"}, {"answer": None})
    session = await run(tmp_path, flow, crm)
    (request,) = crm.seen.requests
    assert request["form"] == {"state": "confirmed", "n": "3", "who": "42"} and request["json"] is None
    assert session["vars"]["answer"]["appointment"]["state"] == "confirmed"


async def test_a_text_answer_binds_as_text(tmp_path: Path, crm: Crm) -> None:
    session = await run(tmp_path, flow_with({"url": f"{crm.url}/text", "method": "GET", "as": "said"},
                                            {"said": None}), crm)
    assert session["vars"]["said"] == "plain words"


async def test_the_actions_own_timeout_cuts_the_request(tmp_path: Path, crm: Crm) -> None:
    session = await run(tmp_path, flow_with({"url": f"{crm.url}/slow", "timeout": "300ms"}), crm)
    assert session["state"] == "failed" and session["vars"]["kind"] == "timeout"
    errors = [c[2] for step in session["trace"] for c in step["commands"] if c[:2] == ["http", "error"]]
    assert errors and "no answer within 0.3 s" in errors[0]


async def test_a_status_that_is_not_2xx_reaches_action_failed(tmp_path: Path, crm: Crm) -> None:
    session = await run(tmp_path, flow_with({"url": f"{crm.url}/gone", "method": "GET"}), crm)
    assert session["state"] == "failed"
    assert session["vars"]["status"] == 404 and session["vars"]["kind"] == "not_found"


async def test_the_flows_headers_do_not_follow_a_redirect_to_another_origin(
    tmp_path: Path, crm: Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_TOKEN", TOKEN)
    flow = flow_with({"url": f"{crm.url}/away", "method": "GET",
                      "headers": {"Authorization": "Bearer ${CRM_TOKEN}"}, "as": "landed"}, {"landed": None})
    session = await run(tmp_path, flow, crm)
    assert session["vars"]["landed"] == {"landed": True}
    assert crm.seen.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"
    (landing,) = crm.seen.other
    assert "Authorization" not in landing["headers"]


async def test_an_unset_variable_fails_the_action_unsent(
    tmp_path: Path, crm: Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CRM_TOKEN", raising=False)
    session = await run(tmp_path, flow_with({"url": f"{crm.url}/confirm",
                                             "headers": {"Authorization": "Bearer ${CRM_TOKEN}"}}), crm)
    assert crm.seen.requests == [] and session["state"] == "failed"
    errors = [c[2] for step in session["trace"] for c in step["commands"] if c[:2] == ["http", "error"]]
    assert 'http: the "Authorization" header: environment variable "CRM_TOKEN" is not set' in errors[0]


async def test_the_client_never_sends_the_services_own_variables(crm: Crm) -> None:
    """validate refuses such a flow; the client refuses the request too, whoever builds it."""
    environ = {"INFOBIP_API_KEY": "PLANTED-platform-key", "SINCH_APPLICATION_SECRET": "PLANTED-secret"}
    http = AllowListHttp(crm.allow(), SystemClock(), environ=environ)
    try:
        for name in environ:
            request = HttpRequest("POST", f"{crm.url}/confirm", {"X-Key": f"x ${{{name}}}"})
            with pytest.raises(ProviderError, match="the service's own variables") as caught:
                await http.request(request)
            assert "PLANTED" not in str(caught.value) and not caught.value.retryable
        with pytest.raises(ProviderError, match="line break"):
            await http.request(HttpRequest("POST", f"{crm.url}/confirm", {"X-A": "a\r\nX-B: b"}))
    finally:
        await http.close()
    assert crm.seen.requests == []
