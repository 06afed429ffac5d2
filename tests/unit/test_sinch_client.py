"""The Sinch REST client against a scripted platform on 127.0.0.1: signed requests that verify, Basic,
Sinch's error body made a ProviderError, and retries through the shared HTTP module on virtual time."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from flowengine.errors import ProviderError
from flowengine.providers.retry import RetryPolicy, backoff_delay
from flowengine.providers.sinch import SinchSettings, commands, signing
from flowengine.providers.sinch.client import SinchClient
from flowengine.runtime.clock import VIRTUAL_EPOCH, VirtualClock
from flowengine.runtime.ports import Endpoint
from flowengine.simulator.testing import serving

KEY, SECRET = "app-key", "BeIukql3pTKJ8RGL5zo0DA=="


@dataclass
class Platform:
    """Answers from ``script`` in order (then 200 ``{}``) and records what it got, with whether the
    request verified as Sinch would check it."""

    script: list[tuple[int, Any]] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        verified = signing.verify(
            request.headers,
            application_key=KEY,
            application_secret=SECRET,
            method=request.method,
            path=request.rel_url.raw_path,
            body=raw,
        )
        self.seen.append(
            {
                "method": request.method,
                "path": request.rel_url.raw_path,
                "raw": raw,
                "headers": dict(request.headers),
                "verified": verified,
            }
        )
        status, body = self.script.pop(0) if self.script else (200, {})
        text = body if isinstance(body, str) else json.dumps(body)
        return web.Response(status=status, text=text, content_type="application/json")


@pytest.fixture
async def platform() -> AsyncIterator[tuple[Platform, str]]:
    fake = Platform()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    async with serving(app) as url:
        yield fake, url


@pytest.fixture
async def make(clock: VirtualClock, platform: tuple[Platform, str]) -> AsyncIterator[Any]:
    clients: list[SinchClient] = []

    def build(**overrides: Any) -> SinchClient:
        settings = SinchSettings(
            application_key=KEY, application_secret=SECRET, base_url=platform[1], **overrides
        )
        client = SinchClient(settings, clock=clock, jitter=lambda: 1.0)
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.close()


async def test_signed_requests_verify_with_and_without_a_body(
    make: Any, platform: tuple[Platform, str]
) -> None:
    fake, _ = platform
    fake.script = [(200, {"callId": "c-9"}), (200, {"participants": []})]
    client = make()
    callout = commands.conference_callout("room 1", Endpoint("phone", "4670"), None)
    assert await client.send(callout) == {"callId": "c-9"}
    assert await client.send(commands.conference_info("room 1")) == {"participants": []}
    first, second = fake.seen
    assert first["verified"] and second["verified"]
    assert json.loads(first["raw"]) == callout.body and second["raw"] == b""
    assert second["path"] == "/calling/v1/conferences/id/room%201"  # signed exactly as sent
    assert first["headers"]["Authorization"].startswith(f"Application {KEY}:")
    assert first["headers"]["x-timestamp"] == "2026-01-01T00:00:00+00:00"  # the clock's time
    assert first["headers"]["Content-Type"] == "application/json; charset=UTF-8"


async def test_basic_requests(make: Any, platform: tuple[Platform, str]) -> None:
    fake, _ = platform
    await make(request_auth="basic").send(commands.kick_all("room"))
    [seen] = fake.seen
    assert seen["verified"] and seen["headers"]["Authorization"] == signing.basic_header(KEY, SECRET)


async def test_sinch_error_bodies_become_provider_errors(make: Any, platform: tuple[Platform, str]) -> None:
    fake, _ = platform
    fake.script = [
        (
            404,
            {
                "status": 404,
                "errorCode": 40400,
                "message": "Conference room not found.",
                "reference": "ref-1",
            },
        ),
        (403, "<html>nope</html>"),
    ]
    client = make()
    with pytest.raises(ProviderError) as caught:
        await client.send(commands.conference_info("room"))
    error = caught.value
    assert (str(error), error.status, error.code, error.retryable) == (
        "Conference room not found.",
        404,
        "40400",
        False,
    )
    with pytest.raises(ProviderError, match=r"^Sinch answered HTTP 403: <html>nope</html>$"):
        await client.send(commands.conference_info("room"))
    assert len(fake.seen) == 2  # neither is retried


async def test_retries_5xx_on_the_clock_and_signs_each_attempt_afresh(
    make: Any, platform: tuple[Platform, str], clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake, _ = platform
    busy = {"status": 503, "errorCode": 50000, "message": "Internal error.", "reference": "r"}
    fake.script = [(503, busy), (500, busy), (200, {"callId": "c"})]
    client = make(retry=RetryPolicy(attempts=3, base_delay=1.0))
    assert await client.send(commands.custom_callout(Endpoint("phone", "4670"), None)) == {"callId": "c"}
    assert clock.now() - VIRTUAL_EPOCH == pytest.approx(1.0 + 2.0)
    assert [s["headers"]["x-timestamp"] for s in fake.seen] == [
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T00:00:01+00:00",
        "2026-01-01T00:00:03+00:00",
    ]
    assert all(s["verified"] for s in fake.seen)
    assert "sinch POST /calling/v1/callouts -> 503" in caplog.text and SECRET not in caplog.text


def test_backoff_delay() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0, max_retry_after=10.0)
    assert [backoff_delay(policy, n, None, 1.0) for n in range(4)] == [0.5, 1.0, 2.0, 3.0]
    assert backoff_delay(policy, 0, None, 0.0) == 0.25
    assert backoff_delay(policy, 5, 60.0, 1.0) == 10.0


def test_repr_hides_the_secret() -> None:
    client = SinchClient(SinchSettings(application_key=KEY, application_secret=SECRET))
    assert SECRET not in repr(client)
