"""The `http` action: JSON to an allowed host binds the answer into vars; anything the allow-list, the
address check or the limits refuse fails the action (``action.failed``) and the flow goes on along its
failure path, with the step saved and the webhook answered normally.

Every server here is on 127.0.0.1, so the entries that should reach it say ``private: true``; the SSRF
cases show what happens without it or off the list: redirects off the list, ports not listed, names
that resolve to loopback, oversized and slow answers, malformed URLs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from yarl import URL

from flowengine.runtime.clock import SystemClock
from flowengine.scenarios.model import parse_scenario
from flowengine.scenarios.runner import play
from flowengine.scenarios.stack import running_stack
from flowengine.server.http_action import AllowListHttp
from flowengine.server.serving import serving

FLOW = """
flow: crm-lookup
version: 1
vars: {customer: null}
initial: answering
states:
  answering:
    entry:
      - answer: {call: caller}
      - http:
          url: "CRM_URL"
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
BIG = 2 * 1_048_576  # bytes of an oversized answer: twice the default limit


@dataclass
class Crm:
    """A CRM on loopback, and an "admin" server beside it that nothing should ever reach."""

    url: str
    admin_url: str
    hits: list[str] = field(default_factory=list)  # paths asked of the CRM, in order
    admin_hits: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)  # lets a slow answer go

    @property
    def port(self) -> int:
        return int(URL(self.url).port or 0)


def crm_app(crm: Crm) -> web.Application:
    async def route(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        crm.hits.append(name)
        if name == "lookup":
            return web.json_response({"name": "Ada", "tier": "gold"})
        if name == "moved":  # a redirect that stays on the list: followed
            raise web.HTTPTemporaryRedirect("/lookup")
        if name == "to-admin":  # to a port the list does not name
            raise web.HTTPFound(f"{crm.admin_url}/admin")
        if name == "to-localhost":  # to a name that resolves to loopback, listed without private
            raise web.HTTPFound(f"http://localhost:{crm.port}/lookup")
        if name == "loop":
            raise web.HTTPFound("/loop")
        if name == "big":
            return web.Response(body=b"[" + b"0," * (BIG // 2) + b"0]", content_type="application/json")
        if name == "big-stream":  # no Content-Length: the cap must hold while reading
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            for _ in range(BIG // 65_536 + 1):
                await response.write(b" " * 65_536)
            return response
        if name == "deep":  # small, but nested deeper than a recursive decoder goes
            return web.Response(body=b"[" * 200_000, content_type="application/json")
        if name == "slow":
            await asyncio.wait_for(crm.release.wait(), 10)
            return web.json_response({"late": True})
        if name == "fail":
            return web.json_response({"error": "boom"}, status=500)
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_post("/{name}", route)
    app.router.add_get("/{name}", route)
    return app


def admin_app(crm: Crm) -> web.Application:
    async def admin(request: web.Request) -> web.Response:
        crm.admin_hits.append(request.path)
        return web.json_response({"secret": "admin page"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", admin)
    return app


@asynccontextmanager
async def crm_servers() -> AsyncIterator[Crm]:
    crm = Crm("", "")
    async with serving(admin_app(crm)) as admin_url, serving(crm_app(crm)) as url:
        crm.url, crm.admin_url = url, admin_url
        try:
            yield crm
        finally:
            crm.release.set()


def private(crm: Crm) -> dict[str, Any]:
    """The entry a loopback CRM needs: its port, and private addresses allowed."""
    return {"host": "127.0.0.1", "ports": [crm.port], "private": True}


async def run(tmp_path: Path, url: str, allow: tuple[Any, ...], **options: Any) -> dict[str, Any]:
    """One inbound call through the flow with its http action pointed at ``url``; the session, with
    the engine's answers to the webhooks under ``answers``."""
    flow = tmp_path / "crm.yaml"
    flow.write_text(FLOW.replace("CRM_URL", url.replace("\\", "\\\\")))
    scenario = parse_scenario("lookup", {})
    async with running_stack("infobip", flow, parties=scenario.parties, http_allow=allow,
                             service_options=options) as stack:
        result = await play(stack, scenario)
    return {**result.session, "answers": [event["status"] for event in result.webhooks]}


def http_errors(session: dict[str, Any]) -> list[str]:
    return [c[2] for step in session["trace"] for c in step["commands"] if c[:2] == ["http", "error"]]


def failed_cleanly(session: dict[str, Any]) -> str:
    """The session took its failure path with the webhooks answered 2xx; the http error it recorded."""
    assert session["state"] == "refused" and session["status"] == "ended"
    assert session["answers"] and all(200 <= status < 300 for status in session["answers"])
    errors = http_errors(session)
    assert errors, session["trace"]
    return errors[0]


async def test_an_allowed_host_answers_into_vars(tmp_path: Path) -> None:
    async with crm_servers() as crm:
        session = await run(tmp_path, f"{crm.url}/lookup", (private(crm),))
    assert session["vars"]["customer"] == {"name": "Ada", "tier": "gold"}
    assert session["state"] == "done"
    assert crm.hits == ["lookup"]
    said = [c for step in session["trace"] for c in step["commands"] if c[0] == "say"]
    assert said == [["say", "ok", None]]


async def test_a_redirect_within_the_list_is_followed(tmp_path: Path) -> None:
    async with crm_servers() as crm:
        session = await run(tmp_path, f"{crm.url}/moved", (private(crm),))
    assert crm.hits == ["moved", "lookup"]
    assert session["vars"]["customer"] == {"name": "Ada", "tier": "gold"}


async def test_a_host_not_on_the_list_is_never_called(tmp_path: Path) -> None:
    async with crm_servers() as crm:
        session = await run(tmp_path, f"{crm.url}/lookup", ("crm.example.com",))
    assert crm.hits == []
    assert "not on the service's http_allow list" in failed_cleanly(session)


async def test_a_redirect_to_a_port_off_the_list_is_not_followed(tmp_path: Path) -> None:
    async with crm_servers() as crm:
        session = await run(tmp_path, f"{crm.url}/to-admin", (private(crm),))
    assert crm.hits == ["to-admin"] and crm.admin_hits == []
    error = failed_cleanly(session)
    assert "redirect to" in error and "is not allowed" in error
    assert session["vars"]["customer"] is None


async def test_a_redirect_to_a_name_resolving_to_loopback_is_refused(tmp_path: Path) -> None:
    async with crm_servers() as crm:
        # localhost is listed, on the right port, but without private: its address is loopback.
        session = await run(tmp_path, f"{crm.url}/to-localhost", (private(crm), f"localhost:{crm.port}"))
    assert crm.hits == ["to-localhost"]
    error = failed_cleanly(session)
    assert "redirected to http://localhost:" in error
    assert "localhost resolves to 127.0.0.1, a loopback address" in error


async def test_a_port_not_in_the_entry_is_refused(tmp_path: Path) -> None:
    async with crm_servers() as crm:
        entry = {"host": "127.0.0.1", "ports": [crm.port + 1], "private": True}
        session = await run(tmp_path, f"{crm.url}/lookup", (entry, "127.0.0.1"))
    assert crm.hits == []
    assert f"port {crm.port} is not allowed for 127.0.0.1" in failed_cleanly(session)


def test_a_bare_host_means_ports_80_and_443() -> None:
    http = AllowListHttp(("api.example.com", "*.crm.example.com", "api.example.com:8080"), SystemClock())
    assert http.allowed("https://api.example.com/x") and http.allowed("http://api.example.com/x")
    assert http.allowed("http://api.example.com:8080/x") and http.allowed("https://eu.crm.example.com/y")
    assert not http.allowed("http://eu.crm.example.com:8080/y") and not http.allowed("https://example.com/")
    assert not http.allowed("https://api.example.com:22/") and not http.allowed("https://api.example.com.evil.io/")
    assert not http.allowed("ftp://api.example.com/") and not http.allowed("/relative")


async def test_a_name_resolving_to_loopback_is_refused_unless_private(tmp_path: Path) -> None:
    async with crm_servers() as crm:
        refused = await run(tmp_path, f"http://localhost:{crm.port}/lookup", (f"localhost:{crm.port}",))
        assert crm.hits == []
        allowed = await run(tmp_path, f"http://localhost:{crm.port}/lookup",
                            ({"host": "localhost", "ports": [crm.port], "private": True},))
    assert "localhost resolves to 127.0.0.1, a loopback address" in failed_cleanly(refused)
    assert allowed["vars"]["customer"] == {"name": "Ada", "tier": "gold"} and crm.hits == ["lookup"]


async def test_a_loopback_address_is_refused_without_private(tmp_path: Path) -> None:
    async with crm_servers() as crm:
        session = await run(tmp_path, f"{crm.url}/lookup", (f"127.0.0.1:{crm.port}",))
    assert crm.hits == []
    assert "refused: 127.0.0.1, a loopback address" in failed_cleanly(session)


async def test_oversized_answers_fail_the_action(tmp_path: Path) -> None:
    async with crm_servers() as crm:
        declared = await run(tmp_path, f"{crm.url}/big", (private(crm),))
        streamed = await run(tmp_path, f"{crm.url}/big-stream", (private(crm),))
        small_limit = await run(tmp_path, f"{crm.url}/lookup", (private(crm),), http_max_bytes=10)
    assert f"({BIG + 3} bytes) is over the 1048576-byte limit" in failed_cleanly(declared)
    assert "the answer is over the 1048576-byte limit" in failed_cleanly(streamed)
    assert "is over the 10-byte limit" in failed_cleanly(small_limit)
    for session in (declared, streamed, small_limit):
        assert session["vars"]["customer"] is None


async def test_an_answer_nested_too_deep_fails_the_action(tmp_path: Path) -> None:
    async with crm_servers() as crm:
        session = await run(tmp_path, f"{crm.url}/deep", (private(crm),))
    assert "answered JSON that does not parse" in failed_cleanly(session)


async def test_too_many_redirects_fail_the_action(tmp_path: Path) -> None:
    async with crm_servers() as crm:
        session = await run(tmp_path, f"{crm.url}/loop", (private(crm),))
    assert "more than 5 redirects" in failed_cleanly(session)
    assert crm.hits == ["loop"] * 6


async def test_malformed_urls_fail_the_action_cleanly(tmp_path: Path) -> None:
    async with crm_servers() as crm:
        for url in (f"http://127.0.0.1:{crm.port}\\@crm.example.com/lookup", f"{crm.url}/look up",
                    f"http://127.1:{crm.port}/lookup", "http:///lookup", "not a url", f"{crm.url}:99999/x"):
            session = await run(tmp_path, url, (private(crm), "crm.example.com", "127.1"))
            error = failed_cleanly(session)
            assert "well-formed" in error or "absolute http" in error, (url, error)
    assert crm.hits == []


async def test_a_slow_answer_is_cut_at_the_timeout(tmp_path: Path) -> None:
    async with crm_servers() as crm:
        started = time.monotonic()
        session = await run(tmp_path, f"{crm.url}/slow", (private(crm),), http_timeout=0.3)
        took = time.monotonic() - started
    assert "no answer within 0.3 s" in failed_cleanly(session)
    assert crm.hits == ["slow"]  # one try (the service does not retry actions), cut long before 10 s
    assert took < 3.0


async def test_query_values_and_credentials_stay_out_of_the_trace(tmp_path: Path) -> None:
    async with crm_servers() as crm:
        url = f"http://crm-user:PLANTED-PASSWORD@127.0.0.1:{crm.port}/fail?token=PLANTED-TOKEN&x=1"
        session = await run(tmp_path, url, (private(crm),))
    error = failed_cleanly(session)
    assert f"http://crm-user:***@127.0.0.1:{crm.port}/fail?token=***&x=*** answered 500" in error
    assert "PLANTED" not in json.dumps(session)
