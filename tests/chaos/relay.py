"""A small load balancer between the simulator and several ``serve`` instances, served by the harness on
127.0.0.1: each webhook goes to the next instance in turn (so one call's webhooks alternate and race
across instances), and to another one when the chosen instance refuses the connection.

Like nginx's default for POST (``proxy_next_upstream`` never re-sends a non-idempotent request once it
was sent), it only falls back when nothing reached the instance; a webhook whose instance died after
receiving it gets 502, and the platform decides whether to redeliver.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

FORWARD_TIMEOUT = 30.0  # seconds: longer than any webhook the engine should take
_HOP_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding"})


@dataclass
class BalancingRelay:
    targets: list[str]  # each instance's base URL, e.g. http://127.0.0.1:8080
    counts: Counter[str] = field(default_factory=Counter)  # "to 0", "fallback to 1", "502", ...
    _turn: itertools.count[int] = field(default_factory=itertools.count)
    _http: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._forward)
        app.cleanup_ctx.append(self._client)
        return app

    async def _client(self, _: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=FORWARD_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            self._http = http
            yield

    async def _forward(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        first = next(self._turn) % len(self.targets)
        order = [(first + i) % len(self.targets) for i in range(len(self.targets))]
        for attempt, index in enumerate(order):
            try:
                response = await self._post(self.targets[index] + request.path_qs, raw, headers)
            except aiohttp.ClientConnectorError:
                continue  # nothing was sent: safe to try the next instance
            except (aiohttp.ClientError, TimeoutError):
                self.counts["502 (instance failed mid-request)"] += 1
                return web.Response(status=502, text="upstream failed mid-request")
            self.counts[f"{'fallback to' if attempt else 'to'} {index}"] += 1
            return response
        self.counts["503 (no instance up)"] += 1
        return web.Response(status=503, text="no instance up")

    async def _post(self, url: str, raw: bytes, headers: dict[str, str]) -> web.Response:
        assert self._http is not None
        async with self._http.post(url, data=raw, headers=headers) as upstream:
            body = await upstream.read()
            kept = {k: v for k, v in upstream.headers.items() if k.lower() == "content-type"}
            return web.Response(status=upstream.status, body=body, headers=kept)
