"""The `http` action: JSON to an allowed host binds the answer into vars; any other host fails the
action for good before a connection is made, and the flow can handle that."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from flowengine.runtime.clock import SystemClock
from flowengine.scenarios.model import parse_scenario
from flowengine.scenarios.runner import play
from flowengine.scenarios.stack import running_stack
from flowengine.server.http_action import AllowListHttp
from flowengine.server.serving import serving

FLOW = """
flow: crm-lookup
version: 1
vars: {crm: "http://127.0.0.1:1/unset", customer: null}
initial: answering
states:
  answering:
    entry:
      - answer: {call: caller}
      - http:
          url: "{{ vars.crm }}/lookup"
          body: {caller: "{{ event.call_id }}"}
          as: customer
    on:
      call.answered: greeting
      action.failed: refused
    after: {10s: refused}
  greeting:
    entry:
      - say: {call: caller, text: "Hello {{ vars.customer.name }}"}
    on: {say.finished: done}
    after: {10s: done}
  refused:
    entry: [{hangup: {call: caller}}]
    type: final
  done:
    entry: [{hangup: {call: caller}}]
    type: final
"""


async def crm(seen: list[Any]) -> web.Application:
    async def lookup(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.json_response({"name": "Ada", "tier": "gold"})

    app = web.Application()
    app.router.add_post("/lookup", lookup)
    return app


async def run(tmp_path: Path, crm_url: str, allow: tuple[str, ...]) -> dict[str, Any]:
    flow = tmp_path / "crm.yaml"
    flow.write_text(FLOW.replace("http://127.0.0.1:1/unset", crm_url))
    scenario = parse_scenario("lookup", {})
    async with running_stack("infobip", flow, parties=scenario.parties, http_allow=allow) as stack:
        return (await play(stack, scenario)).session


async def test_an_allowed_host_answers_into_vars(tmp_path: Path) -> None:
    seen: list[Any] = []
    async with serving(await crm(seen)) as url:
        session = await run(tmp_path, url, ("127.0.0.1",))
    assert session["vars"]["customer"] == {"name": "Ada", "tier": "gold"}
    assert session["state"] == "done"
    assert seen and set(seen[0]) == {"caller"}
    said = [c for step in session["trace"] for c in step["commands"] if c[0] == "say"]
    assert said == [["say", "ok", None]]


async def test_a_host_not_on_the_list_is_never_called(tmp_path: Path) -> None:
    seen: list[Any] = []
    async with serving(await crm(seen)) as url:
        session = await run(tmp_path, url, ("crm.example.com",))
    assert seen == []
    assert session["state"] == "refused"
    errors = [c[2] for step in session["trace"] for c in step["commands"] if c[:2] == ["http", "error"]]
    assert errors and "not on the service's http_allow list" in errors[0]


def test_allow_list_patterns() -> None:
    http = AllowListHttp(("api.example.com", "*.crm.example.com"), SystemClock())
    assert http.allowed("https://api.example.com/x") and http.allowed("http://eu.crm.example.com:8080/y")
    assert not http.allowed("https://example.com/") and not http.allowed("https://api.example.com.evil.io/")
    assert not http.allowed("ftp://api.example.com/") and not http.allowed("/relative")
