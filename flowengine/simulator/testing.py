"""Test helpers around the simulators: serve an app on loopback, receive webhooks in a small real aiohttp
app, and call the simulator's API while holding the clock busy (as the engine's HTTP client does)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import aiohttp
from aiohttp import web

from flowengine.runtime.clock import VIRTUAL_EPOCH, Clock, VirtualClock
from flowengine.server.serving import serving
from flowengine.simulator.base import Simulator
from flowengine.simulator.delivery import DeliveredEvent


@dataclass(frozen=True)
class Received:
    """One webhook the recorder got."""

    path: str
    headers: Mapping[str, str]
    raw: bytes
    body: Any


# Decides the answer to one webhook: (HTTP status, JSON body or None).
Responder = Callable[[Received], Awaitable[tuple[int, Any]]]


async def _ok(_: Received) -> tuple[int, Any]:
    return 200, None


@dataclass
class WebhookRecorder:
    """The application side in tests: records every webhook and answers via ``responder``."""

    responder: Responder = _ok
    received: list[Received] = field(default_factory=list)
    app: web.Application = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_post("/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        got = Received(request.path, dict(request.headers), raw, body)
        self.received.append(got)
        status, reply = await self.responder(got)
        if reply is None:
            return web.Response(status=status)
        return web.json_response(reply, status=status)

    def bodies(self) -> list[Any]:
        return [r.body for r in self.received]


class SimClient:
    """JSON over HTTP to a served simulator, each request inside ``clock.busy()``."""

    def __init__(self, clock: Clock, base_url: str, headers: Mapping[str, str] | None = None) -> None:
        self.clock = clock
        self.base_url = base_url
        self.headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, parsed JSON or None)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        all_headers = {**self.headers, **(headers or {})}
        if data is not None:
            all_headers.setdefault("Content-Type", "application/json")
        with self.clock.busy():
            async with self._session.request(
                method, self.base_url + path, data=data, headers=all_headers
            ) as resp:
                text = await resp.text()
        return resp.status, (json.loads(text) if text.strip() else None)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def event_names(events: list[DeliveredEvent]) -> list[str]:
    """Infobip ``type`` / Sinch ``event`` of each delivered webhook, in order."""
    return [str(e["body"].get("type") or e["body"].get("event")) for e in events]


S = TypeVar("S", bound=Simulator)


@dataclass
class Harness(Generic[S]):
    """A served simulator, the app side that receives its webhooks, and a client for its API."""

    clock: VirtualClock
    sim: S
    hook: WebhookRecorder
    client: SimClient
    base_url: str

    def names(self) -> list[str]:
        return event_names(self.sim.events)

    def bodies(self, name: str) -> list[dict[str, Any]]:
        return [e["body"] for e in self.sim.events if name in (e["body"].get("type"), e["body"].get("event"))]

    async def until(self, predicate: Callable[[], bool], limit: float = 3600.0) -> None:
        """Run virtual time until ``predicate()``; fails if ``limit`` virtual seconds pass first."""
        await self.clock.run_until(predicate, limit=limit, real_timeout=10.0)
        if not predicate():
            raise AssertionError(f"condition not met within {limit} virtual seconds; events: {self.names()}")

    async def wait_events(self, *names: str, limit: float = 3600.0) -> None:
        """Until every one of ``names`` has been delivered at least once."""
        await self.until(lambda: all(n in self.names() for n in names), limit)

    async def advance(self, seconds: float) -> None:
        """Let exactly ``seconds`` of virtual time pass (the clock stops at our own deadline)."""
        await self.clock.sleep(seconds)

    def elapsed(self) -> float:
        return self.clock.now() - VIRTUAL_EPOCH


@asynccontextmanager
async def harness(
    make: Callable[[VirtualClock, str], S],
    *,
    responder: Responder = _ok,
    headers: Mapping[str, str] | None = None,
    webhook_path: str = "/webhook",
) -> AsyncIterator[Harness[S]]:
    """Start a virtual clock, a webhook receiver and ``make(clock, webhook_url)`` served on loopback."""
    clock = VirtualClock()
    clock.start()
    hook = WebhookRecorder(responder)
    try:
        async with (
            serving(hook.app) as hook_url,
            serving((sim := make(clock, hook_url + webhook_path)).app) as base,
        ):
            sim.api_base_url = base
            client = SimClient(clock, base, headers)
            try:
                yield Harness(clock, sim, hook, client, base)
            finally:
                await client.close()
    finally:
        await clock.stop()
