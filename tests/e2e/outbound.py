"""Shared pieces of the outbound and session-control end-to-end tests: the engine and a simulated platform on
127.0.0.1 (``running_stack``) with the reminder flow loaded as an outbound flow, the write API over real
HTTP, and what the simulator saw (its dials, its calls)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from flowengine.config import ServiceConfig
from flowengine.runtime.clock import VirtualClock
from flowengine.scenarios.model import parse_scenario
from flowengine.scenarios.stack import Stack, provider_settings, running_stack
from flowengine.server.app import CONFIG, create_app
from flowengine.server.serving import serving
from flowengine.stores.base import SessionRecord

from .conftest import FLOW, until

ROOT = Path(__file__).resolve().parents[2]
REMINDER = ROOT / "tests" / "testdata" / "outbound" / "reminder.yaml"
CUSTOMER = "447700900123"
CALLER_ID = "4592457976"
# The request that creates a call, per platform (reads and the rest are other requests).
DIAL = {"infobip": ("POST", "/calls/1/calls"), "sinch": ("POST", "/calling/v1/callouts")}


@dataclass
class Outbound:
    """A running stack with an HTTP client that carries its API token."""

    stack: Stack
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.stack.engine_url

    async def call(self, body: Any = None, **fields: Any) -> tuple[int, dict[str, Any]]:
        """``POST /api/calls``: the reminder to the customer unless ``body`` or ``fields`` say otherwise."""
        doc = body if body is not None else {"flow": "reminder", "to": CUSTOMER, **fields}
        return await self.send("POST", "/api/calls", doc)

    async def send(self, method: str, path: str, doc: Any = None, *, raw: bytes | None = None,
                   headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        data = raw if raw is not None else (json.dumps(doc).encode() if doc is not None else None)
        async with self.http.request(method, self.url + path, data=data, headers=headers) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else {}

    async def session(self, session_id: str) -> dict[str, Any]:
        status, body = await self.send("GET", f"/api/sessions/{session_id}")
        assert status == 200, body
        return body

    def dials(self) -> list[dict[str, Any]]:
        """Every request the platform got to create a call."""
        method, path = DIAL[self.stack.provider]
        return [r.to_dict() for r in self.stack.simulator.requests if (r.method, r.path) == (method, path)]

    async def record(self, session_id: str) -> SessionRecord | None:
        return await self.stack.service.store.get(session_id)

    async def until_status(self, session_id: str, *statuses: str) -> dict[str, Any]:
        """Until the session's status is one of ``statuses`` (virtual time runs meanwhile)."""
        seen: list[dict[str, Any]] = []

        async def reached() -> bool:
            record = await self.record(session_id)
            if record is not None and record.data["status"] in statuses:
                seen.append(record.data)
            return bool(seen)

        await until(reached, f"session {session_id} in {statuses}")
        return seen[0]

    async def until_over(self, session_id: str) -> dict[str, Any]:
        """Until the session is over and the platform holds no live call."""
        await until(self._over(session_id), f"session {session_id} and its calls to end")
        return await self.session(session_id)

    def _over(self, session_id: str) -> Any:
        async def over() -> bool:
            record = await self.record(session_id)
            return (record is not None and record.data["status"] in ("ended", "failed")
                    and not self.stack.live_calls())
        return over


@asynccontextmanager
async def outbound(provider: str, parties: Mapping[str, Any] | None = None, *,
                   clock: VirtualClock | None = None, flows: tuple[Path, ...] = (REMINDER,),
                   **options: Any) -> AsyncIterator[Outbound]:
    """The engine serving ``provider``'s simulator with the reminder flow (or ``flows``) loaded for outbound
    starts (and the seed flow answering inbound calls); ``parties``: number -> party script."""
    book = parse_scenario("outbound", {"parties": dict(parties or {})}).parties
    service_options = {"flows": flows, **options.pop("service_options", {})}
    async with running_stack(provider, FLOW, parties=book, clock=clock, service_options=service_options,
                             **options) as stack, aiohttp.ClientSession(headers=stack.api_headers) as http:
        yield Outbound(stack, http)


@asynccontextmanager
async def second_instance(side: Outbound) -> AsyncIterator[Outbound]:
    """Another engine instance beside ``side``'s, on the same store, platform, clock and token (the
    platform's webhooks still go to the first)."""
    stack = side.stack
    config = ServiceConfig(
        provider=stack.provider, port=0, store=stack.app[CONFIG].store, default_flow=FLOW, flows=(REMINDER,),
        provider_settings=provider_settings(stack.simulator, stack.simulator_url),
        api_tokens=(stack.api_token,), pacing=stack.app[CONFIG].pacing,
    )
    async with serving(create_app(config, clock=stack.clock, timer_poll=None)) as url:
        other = Stack(stack.provider, stack.clock, stack.simulator, stack.app, url, stack.simulator_url,
                      stack.api_token)
        yield Outbound(other, side.http)


def said(stack: Stack) -> list[str]:
    """What was said on calls, whichever the platform: Infobip's say requests, Sinch's ``say`` steps in
    callback replies (SVAML) and in call updates over REST."""
    texts: list[tuple[float, str]] = []
    for request in stack.simulator.requests:
        if request.path.endswith("/say") and isinstance(request.body, dict):
            texts.append((request.at, str(request.body.get("text"))))
        else:
            texts.extend((request.at, text) for text in _say_steps(request.body))
    for event in stack.simulator.events:
        texts.extend((event["at"], text) for text in _say_steps(event["reply"]))
    return [text for _, text in sorted(texts, key=lambda item: item[0])]


def _say_steps(doc: Any) -> list[str]:
    if isinstance(doc, dict):
        own = [str(doc["text"])] if doc.get("name") == "say" and "text" in doc else []
        return own + [text for value in doc.values() for text in _say_steps(value)]
    if isinstance(doc, list):
        return [text for item in doc for text in _say_steps(item)]
    return []
