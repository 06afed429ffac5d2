"""The whole-call benchmark's parts (bench/): the recorded seed call is what the engine and the Infobip
simulator really exchange, the hand-written app sends the engine's requests byte for byte, and the fake
platform fails a call whose app strays from them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from bench import fake_platform, handwritten_app, seed_call
from bench.seed_call import CALLEE, CALLER, ROOM, SESSION, CallIds, Conversation
from flowengine.config import ServiceConfig
from flowengine.runtime.clock import SystemClock
from flowengine.server.app import create_app
from flowengine.server.serving import serving

# What both apps' HTTP clients send that is theirs to choose; Host names the port, which differs.
COMPARED_HEADERS = ("authorization", "content-type", "accept", "content-length", "accept-encoding",
                    "user-agent")


@pytest.fixture
async def platform() -> AsyncIterator[fake_platform.Driver]:
    platform, server = await fake_platform.serve(0, keep_requests=True)
    try:
        yield fake_platform.Driver(platform)
    finally:
        platform.close_connections()
        server.close()
        await server.wait_closed()


def engine_app(api_url: str) -> web.Application:
    config = ServiceConfig(
        provider="infobip", port=0, store="memory://", default_flow=seed_call.FLOW, insecure_webhooks=True,
        provider_settings={"base_url": api_url, "api_key": seed_call.API_KEY,
                           "calls_configuration_id": seed_call.CONFIGURATION},
    )
    return create_app(config, clock=SystemClock())


def hand_app(api_url: str) -> web.Application:
    return handwritten_app.make_app(api_url, seed_call.API_KEY, seed_call.CONFIGURATION)


async def run_calls(driver: fake_platform.Driver, app: web.Application, calls: int) -> dict[str, Any]:
    driver.platform.requests.clear()
    async with serving(app) as url:
        driver.target(f"{url}/webhooks/infobip", None)
        return await driver.saturate(calls, concurrency=calls)


def wire(driver: fake_platform.Driver) -> list[list[tuple[str, ...]]]:
    """Per call (in the order calls were placed), each request as (method, path, headers, body), the
    call's own ids made placeholders so two runs' calls compare."""
    calls: dict[CallIds, list[tuple[str, ...]]] = {}
    for ids, method, path, head, body in driver.platform.requests:
        lines = head.decode().split("\r\n")[1:]
        fields = (line.partition(": ") for line in lines)
        headers = sorted(f"{name.lower()}: {value}" for name, _, value in fields
                         if name.lower() in COMPARED_HEADERS)
        parts = (method.decode(), path.decode(), "\n".join(headers), body.decode())
        calls.setdefault(ids, []).append(tuple(_placeholders(ids, part) for part in parts))
    return list(calls.values())


def _placeholders(ids: CallIds, text: str) -> str:
    return (text.replace(ids.session, SESSION).replace(ids.caller, CALLER).replace(ids.room, ROOM)
            .replace(ids.callee, CALLEE))


async def test_the_recording_is_what_the_engine_and_the_simulator_exchange() -> None:
    """bench/flows/seed_call.json, recorded again now: same requests, answers, webhooks and release
    points (re-record with `python -m bench.seed_call` when the engine or the simulator changes)."""
    recorded, now = Conversation.load(), await seed_call._record()
    assert [r["method"] + " " + r["path"] for r in now.requests] == [
        r["method"] + " " + r["path"] for r in recorded.requests]
    assert now.requests == recorded.requests
    assert [w["type"] for w in now.webhooks] == [w["type"] for w in recorded.webhooks]
    assert now.webhooks == recorded.webhooks
    assert (len(now.requests), len(now.webhooks)) == (11, 17)


async def test_the_hand_written_app_sends_the_engines_requests_request_by_request(
    platform: fake_platform.Driver,
) -> None:
    engine = await run_calls(platform, engine_app(platform.platform.api_url), 3)
    engine_wire = wire(platform)
    hand = await run_calls(platform, hand_app(platform.platform.api_url), 3)
    hand_wire = wire(platform)
    assert (engine["ok"], engine["failed"], hand["ok"], hand["failed"]) == (3, 0, 3, 0), (engine, hand)
    assert len(engine_wire) == len(hand_wire) == 3
    for engine_call, hand_call in zip(engine_wire, hand_wire, strict=True):
        assert len(engine_call) == len(hand_call) == 11
        for number, (sent_by_engine, sent_by_hand) in enumerate(zip(engine_call, hand_call, strict=True), 1):
            assert sent_by_hand == sent_by_engine, f"request {number}"
    # Every call ended with the conference hung up, after the caller's hang-up was answered.
    assert all(call[-1][:2] == ("POST", f"/calls/1/conferences/{ROOM}/hangup") for call in hand_wire)


async def test_a_call_whose_app_strays_from_the_recording_fails(
    platform: fake_platform.Driver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(handwritten_app, "JOINING", "Someone else is joining now.")
    result = await run_calls(platform, hand_app(platform.platform.api_url), 2)
    assert (result["ok"], result["failed"]) == (0, 2)
    assert "request 10: POST /calls/1/calls/" in result["failures"][0]
    assert "Someone else" in result["failures"][0]


async def test_an_app_answering_a_webhook_with_an_error_fails_the_call(
    platform: fake_platform.Driver,
) -> None:
    async def refuse(_: web.Request) -> web.Response:
        return web.Response(status=500)

    app = web.Application()
    app.router.add_post("/webhooks/infobip", refuse)
    result = await run_calls(platform, app, 1)
    assert (result["ok"], result["failed"], result["failures"]) == (0, 1, ["webhook 1 answered 500"])
