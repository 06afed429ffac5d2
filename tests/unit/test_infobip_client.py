"""The Infobip REST client against a real aiohttp server on 127.0.0.1 (retries, errors, headers, logs).

Backoff runs on a VirtualClock, so a 30-second Retry-After costs nothing; jitter is pinned to 1.0 so the
virtual delays are exact.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from flowengine.errors import ProviderError
from flowengine.providers.infobip.client import InfobipClient
from flowengine.providers.infobip.config import InfobipSettings, RetryPolicy
from flowengine.providers.wire import Request
from flowengine.runtime.clock import VirtualClock
from flowengine.server.serving import serving

API_KEY = "api-key-TOP-SECRET"


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hold: asyncio.Event | None = None  # wait for this before answering


@dataclass
class Platform:
    """A scripted stand-in for Infobip: answers from ``script`` in order, then 200 ``{}``."""

    base_url: str = ""
    script: list[Reply] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append({"method": request.method, "path": request.path, "headers": dict(request.headers),
                          "body": await request.text()})
        reply = self.script.pop(0) if self.script else Reply(body={})
        if reply.hold is not None:
            await reply.hold.wait()
        text = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
        return web.Response(status=reply.status, text=text, headers=reply.headers,
                            content_type="application/json")


@pytest.fixture
async def platform() -> AsyncIterator[Platform]:
    fake = Platform()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    async with serving(app) as url:
        fake.base_url = url
        yield fake


def settings(base_url: str, **retry: Any) -> InfobipSettings:
    # A budget wide enough for a capped 30-second Retry-After (the default 15 s would stop retrying).
    return InfobipSettings(base_url=base_url, api_key=API_KEY, calls_configuration_id="cfg-1",
                           total_timeout=2.0, command_budget=120.0, retry=RetryPolicy(**retry))


@pytest.fixture
async def make_client(clock: VirtualClock) -> AsyncIterator[Any]:
    clients: list[InfobipClient] = []

    async def make(base_url: str, **retry: Any) -> InfobipClient:
        client = InfobipClient(settings(base_url, **retry), clock=clock, jitter=lambda: 1.0)
        await client.start()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


CREATE = Request("POST", "/calls/1/calls", {"endpoint": {"type": "PHONE", "phoneNumber": "4479"},
                                            "callsConfigurationId": "cfg-1"})


def infobip_error(text: str, message_id: str = "BAD_REQUEST", **validation: list[str]) -> dict[str, Any]:
    exception: dict[str, Any] = {"messageId": message_id, "text": text}
    if validation:
        exception["validationErrors"] = validation
    return {"requestError": {"serviceException": exception}}


async def test_sends_authorization_json_and_returns_the_answer(platform: Platform, make_client: Any) -> None:
    platform.script = [Reply(201, {"id": "call-9", "state": "CALLING"})]
    client = await make_client(platform.base_url)
    assert await client.send(CREATE) == {"id": "call-9", "state": "CALLING"}
    [seen] = platform.seen
    assert (seen["method"], seen["path"]) == ("POST", "/calls/1/calls")
    assert seen["headers"]["Authorization"] == f"App {API_KEY}"
    assert seen["headers"]["Content-Type"] == "application/json"
    assert json.loads(seen["body"]) == CREATE.body


async def test_a_request_without_body_sends_none_and_empty_answers_are_empty(
    platform: Platform, make_client: Any
) -> None:
    platform.script = [Reply(200, "")]
    client = await make_client(platform.base_url)
    assert await client.send(Request("POST", "/calls/1/conferences/k/hangup")) == {}
    assert platform.seen[0]["body"] == ""


async def test_retries_503_with_exponential_backoff_then_succeeds(
    platform: Platform, make_client: Any, clock: VirtualClock
) -> None:
    platform.script = [Reply(503, infobip_error("Service unavailable")), Reply(502, "bad gateway"),
                       Reply(201, {"id": "call-9"})]
    client = await make_client(platform.base_url, base_delay=0.25)
    started = clock.now()
    assert await client.send(CREATE) == {"id": "call-9"}
    assert len(platform.seen) == 3
    assert clock.now() - started == pytest.approx(0.25 + 0.5)  # virtual seconds


async def test_honours_retry_after_seconds_and_caps_it(
    platform: Platform, make_client: Any, clock: VirtualClock
) -> None:
    busy = infobip_error("Too many requests", "TOO_MANY_REQUESTS")
    platform.script = [Reply(429, busy, {"Retry-After": "7"}),
                       Reply(503, "", {"Retry-After": "3600"}), Reply(200, {"id": "x"})]
    client = await make_client(platform.base_url, max_retry_after=30.0)
    started = clock.now()
    assert await client.send(CREATE) == {"id": "x"}
    assert clock.now() - started == pytest.approx(7 + 30)


async def test_gives_up_after_the_last_attempt_with_a_retryable_error(
    platform: Platform, make_client: Any
) -> None:
    platform.script = [Reply(429, infobip_error("Too many requests", "TOO_MANY_REQUESTS"))] * 3
    client = await make_client(platform.base_url, attempts=3)
    with pytest.raises(ProviderError) as caught:
        await client.send(CREATE)
    error = caught.value
    assert (str(error), error.status, error.retryable, error.code) == (
        "Too many requests", 429, True, "TOO_MANY_REQUESTS")
    assert len(platform.seen) == 3


async def test_no_retry_on_400_and_the_platform_text_surfaces(platform: Platform, make_client: Any) -> None:
    body = infobip_error("Invalid request", connectTimeout=["must be less than or equal to 60"])
    platform.script = [Reply(400, body)]
    client = await make_client(platform.base_url)
    with pytest.raises(ProviderError) as caught:
        await client.send(CREATE)
    error = caught.value
    assert str(error) == "Invalid request (connectTimeout: must be less than or equal to 60)"
    assert (error.status, error.retryable, error.code) == (400, False, "BAD_REQUEST")
    assert len(platform.seen) == 1


@pytest.mark.parametrize(("status", "body", "message"), [
    (404, infobip_error("Call not found.", "NOT_FOUND"), "Call not found."),
    (401, infobip_error("Invalid login details", "UNAUTHORIZED"), "Invalid login details"),
    (400, {"errorCode": "E400", "description": "Bad thing", "violations": [{"property": "name",
                                                                            "violation": "too long"}]},
     "Bad thing (name: too long)"),
    (403, "<html>Forbidden</html>", "Infobip answered HTTP 403: <html>Forbidden</html>"),
])
async def test_error_bodies_become_provider_errors(
    platform: Platform, make_client: Any, status: int, body: Any, message: str
) -> None:
    platform.script = [Reply(status, body)]
    client = await make_client(platform.base_url)
    with pytest.raises(ProviderError) as caught:
        await client.send(CREATE)
    assert (str(caught.value), caught.value.status, caught.value.retryable) == (message, status, False)


async def test_connection_refused_is_retryable(make_client: Any, clock: VirtualClock) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = await make_client(f"http://127.0.0.1:{port}", attempts=2, base_delay=1.0)
    started = clock.now()
    with pytest.raises(ProviderError) as caught:
        await client.send(CREATE)
    assert caught.value.retryable is True
    assert caught.value.status is None
    assert "Infobip unreachable" in str(caught.value)
    assert clock.now() - started == pytest.approx(1.0)


async def test_a_slow_answer_times_out_as_retryable(platform: Platform, clock: VirtualClock) -> None:
    release = asyncio.Event()
    platform.script = [Reply(200, {}, hold=release)]
    quick = InfobipSettings(base_url=platform.base_url, api_key=API_KEY, calls_configuration_id="c",
                            total_timeout=0.05, retry=RetryPolicy(attempts=1))
    client = InfobipClient(quick, clock=clock)
    try:
        with pytest.raises(ProviderError) as caught:
            await client.send(CREATE)
        assert caught.value.retryable is True
    finally:
        release.set()
        await client.close()


async def test_secrets_never_reach_the_logs(
    platform: Platform, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    platform.script = [Reply(201, {"id": "c"}), Reply(503, "down"), Reply(400, infobip_error("nope"))]
    client = await make_client(platform.base_url, base_delay=0.01)
    await client.send(CREATE)
    with pytest.raises(ProviderError):
        await client.send(CREATE)
    assert API_KEY not in caplog.text
    assert "POST /calls/1/calls -> 201" in caplog.text
    assert "POST /calls/1/calls -> 400" in caplog.text
    assert API_KEY not in repr(client)


async def test_an_injected_session_is_used_and_left_open(platform: Platform, clock: VirtualClock) -> None:
    async with aiohttp.ClientSession() as session:
        client = InfobipClient(settings(platform.base_url), clock=clock, session=session)
        await client.start()
        assert await client.send(CREATE) == {}
        await client.close()
        assert not session.closed
        assert len(platform.seen) == 1


async def test_send_opens_the_session_if_start_was_not_called(
    platform: Platform, clock: VirtualClock
) -> None:
    client = InfobipClient(settings(platform.base_url), clock=clock)
    try:
        assert await client.send(CREATE) == {}
    finally:
        await client.close()


async def test_what_may_have_been_done_is_not_resent_unless_the_caller_says_so(
    platform: Platform, make_client: Any
) -> None:
    """A 5xx may have been carried out: raised at once with ``outcome_unknown`` for the caller to ask the
    platform; a 429 did nothing: sent again whatever the command."""
    platform.script = [Reply(500, infobip_error("Internal error"))]
    client = await make_client(platform.base_url)
    with pytest.raises(ProviderError) as caught:
        await client.send(CREATE, resend_unknown=False)
    assert (caught.value.status, caught.value.outcome_unknown, len(platform.seen)) == (500, True, 1)
    platform.script = [Reply(429, infobip_error("Too many requests"), {"Retry-After": "2"}),
                       Reply(201, {"id": "call-9"})]
    assert await client.send(CREATE, resend_unknown=False) == {"id": "call-9"}
    assert len(platform.seen) == 3


async def test_refused_connections_are_nothing_sent_and_slow_answers_outcome_unknown(
    platform: Platform, make_client: Any, clock: VirtualClock
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = await make_client(f"http://127.0.0.1:{port}", attempts=2)
    with pytest.raises(ProviderError) as caught:
        await refused.send(CREATE, resend_unknown=False)
    assert (caught.value.retryable, caught.value.outcome_unknown) == (True, False)  # and it was retried
    release = asyncio.Event()
    platform.script = [Reply(201, {"id": "call-9"}, hold=release)]
    quick = InfobipSettings(base_url=platform.base_url, api_key=API_KEY, calls_configuration_id="c",
                            command_deadline=0.05, retry=RetryPolicy(attempts=3))
    client = InfobipClient(quick, clock=clock)
    try:
        with pytest.raises(ProviderError) as slow:
            await client.send(CREATE, resend_unknown=False)
        assert (slow.value.outcome_unknown, len(platform.seen)) == (True, 1)
        assert "0.05 s deadline" in str(slow.value)
    finally:
        release.set()
        await client.close()


@pytest.mark.parametrize(("budget", "tries"), [(15.0, 6), (3.0, 3)])
async def test_fast_failures_get_the_tries_the_budget_has_room_for(
    platform: Platform, clock: VirtualClock, budget: float, tries: int
) -> None:
    """A 503 answers at once: a try is made while the time spent, its backoff (0.25, 0.5, 1, 2 s) and one
    more 2 s deadline fit in the budget. 15 s: all six; 3 s: the third try's backoff would not fit."""
    platform.script = [Reply(503, infobip_error("Service unavailable", "SERVICE_UNAVAILABLE"))] * 6
    tight = InfobipSettings(base_url=platform.base_url, api_key=API_KEY, calls_configuration_id="cfg-1",
                            total_timeout=2.0, command_budget=budget, retry=RetryPolicy())
    client = InfobipClient(tight, clock=clock, jitter=lambda: 1.0)
    try:
        with pytest.raises(ProviderError):
            await client.send(Request("DELETE", "/calls/1/conferences/c-1/call/x"), resend_unknown=True)
    finally:
        await client.close()
    assert len(platform.seen) == tries
