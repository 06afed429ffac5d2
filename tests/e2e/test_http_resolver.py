"""Names are checked by the connector's own resolver: the connection goes to the very address that was
checked, and a name is looked up once per connection, so a DNS answer that changes between a check and
the use (rebinding) has nothing to slip through. The DNS itself is a stand-in here (every name a test
uses is made up); the HTTP server answering is real, on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from flowengine.errors import ProviderError
from flowengine.runtime.clock import SystemClock
from flowengine.runtime.ports import HttpRequest
from flowengine.server.allow_list import AllowList
from flowengine.server.http_action import AddressRefused, AllowListHttp, GuardedResolver
from flowengine.server.serving import serving


class Dns(AbstractResolver):
    """Answers from a table; counts the questions."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [{"hostname": host, "host": address, "port": port, "family": socket.AF_INET6 if ":" in address
                 else socket.AF_INET, "proto": 0, "flags": socket.AI_NUMERICHOST}
                for address in self.table[host]]

    async def close(self) -> None:
        return None


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, list[str]]]:
    hosts: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        hosts.append(request.host)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/", answer)
    async with serving(app) as url:
        yield int(url.rsplit(":", 1)[1]), hosts


async def test_the_connection_goes_to_the_checked_address(server: tuple[int, list[str]]) -> None:
    port, hosts = server
    dns = Dns({"crm.internal.test": ["127.0.0.1"]})
    http = AllowListHttp([{"host": "crm.internal.test", "ports": [port], "private": True}], SystemClock(),
                         resolver=dns)
    try:
        answer = await http.request(HttpRequest("GET", f"http://crm.internal.test:{port}/"))
        assert (answer.status, answer.body) == (200, {"ok": True})
    finally:
        await http.close()
    assert hosts == [f"crm.internal.test:{port}"] and dns.asked == ["crm.internal.test"]


async def test_a_public_name_resolving_to_loopback_is_refused_after_one_lookup(
    server: tuple[int, list[str]],
) -> None:
    port, hosts = server
    dns = Dns({"crm.example.test": ["127.0.0.1"]})
    http = AllowListHttp([f"crm.example.test:{port}"], SystemClock(), resolver=dns)
    try:
        with pytest.raises(ProviderError, match=r"example\.test resolves to 127\.0\.0\.1, a loop") as caught:
            url = f"http://crm.example.test:{port}/?token=t0k"
            await http.request(HttpRequest("POST", url, json={"a": 1}))
    finally:
        await http.close()
    assert not caught.value.retryable and "t0k" not in str(caught.value)
    assert hosts == [] and dns.asked == ["crm.example.test"]


async def test_only_the_allowed_addresses_of_a_mixed_answer_are_used() -> None:
    allow = AllowList(["api.example.test", {"host": "lab.example.test", "private": True}])
    dns = Dns({"api.example.test": ["10.0.0.7", "93.184.216.34", "169.254.169.254", "::ffff:127.0.0.1"],
               "lab.example.test": ["10.0.0.7"], "meta.example.test": ["169.254.169.254"]})
    guarded = GuardedResolver(allow, dns)
    assert [r["host"] for r in await guarded.resolve("api.example.test", 443)] == ["93.184.216.34"]
    assert [r["host"] for r in await guarded.resolve("lab.example.test", 80)] == ["10.0.0.7"]
    with pytest.raises(AddressRefused, match="not on the http_allow list"):
        await guarded.resolve("meta.example.test", 80)
    with pytest.raises(AddressRefused, match="not on the http_allow list"):
        await guarded.resolve("api.example.test", 8080)  # a port the entry does not name
