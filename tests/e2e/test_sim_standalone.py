"""The standalone simulator as a real process (``flowengine simulator``): its delivery flags, and
``--speed`` making a minute-long scripted call take a couple of seconds."""

from __future__ import annotations

import asyncio
import base64
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import aiohttp

from flowengine.providers.infobip.auth import sign
from flowengine.server.serving import serving
from flowengine.simulator.testing import WebhookRecorder

REAL_GUARD = 15.0  # seconds of wall time before a wait gives up (a 60 s call at speed 1 would)
AUTH = {"Authorization": "App secret"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def simulator_process(webhook_url: str, *flags: str) -> AsyncIterator[str]:
    """``flowengine simulator -p infobip`` on a free port; yields its base URL once it answers."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flowengine", "simulator", "-p", "infobip", "--port", str(port),
        "--webhook-url", webhook_url, *flags,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(int(REAL_GUARD / 0.1)):
                try:
                    async with http.get(base + "/_simulator/health") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the simulator process did not start listening")
        yield base
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), REAL_GUARD)


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(int(REAL_GUARD / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def event(hook: WebhookRecorder, type_: str) -> dict[str, Any]:
    return next(r.body for r in hook.received if r.body["type"] == type_)


def moment(body: dict[str, Any]) -> float:
    return datetime.fromisoformat(body["timestamp"]).timestamp()


async def test_speed_makes_a_minute_long_call_take_seconds_on_the_scaled_clock() -> None:
    hook = WebhookRecorder()
    async with (
        serving(hook.app) as hook_url,
        simulator_process(hook_url + "/hook", "--speed", "40", "--redelivery", "retry",
                          "--redelivery-attempts", "3", "--delivery-seed", "9") as base,
        aiohttp.ClientSession(headers=AUTH) as http,
    ):
        async with http.get(base + "/_simulator/delivery") as resp:
            policy = await resp.json()
        assert (policy["redelivery"], policy["attempts"], policy["seed"]) == ("retry", 3, 9)
        placed = {"from": "4477", "to": "4592", "script": {"hangup_after": 60}}
        async with http.post(base + "/_simulator/calls", json=placed) as resp:
            call_id = (await resp.json())["callId"]
        await until(lambda: any(r.body["type"] == "CALL_RECEIVED" for r in hook.received))
        async with http.post(f"{base}/calls/1/calls/{call_id}/answer", json={}) as resp:
            assert resp.status == 200
        # Done within REAL_GUARD of wall time: at speed 1 the caller would stay 60 s.
        await until(lambda: any(r.body["type"] == "CALL_FINISHED" for r in hook.received))
    answered, finished = event(hook, "CALL_ESTABLISHED"), event(hook, "CALL_FINISHED")
    # On the simulator's scaled clock the scripted minute did pass, and its call log says so.
    assert moment(finished) - moment(answered) >= 60.0 - 0.001
    assert finished["properties"]["callLog"]["duration"] >= 60


async def test_events_carry_the_hmac_or_basic_credentials_given() -> None:
    """What a subscription with HMAC (or Basic) security sends, so ``serve`` can take its events."""
    hook = WebhookRecorder()
    async with (
        serving(hook.app) as hook_url,
        simulator_process(hook_url + "/hook", "--webhook-hmac-secret", "s3cret",
                          "--webhook-basic", "fe:pa:ss") as base,
        aiohttp.ClientSession(headers=AUTH) as http,
    ):
        async with http.post(base + "/_simulator/calls", json={"from": "4477", "to": "4592"}) as resp:
            assert resp.status in (200, 201)
        await until(lambda: any(r.body["type"] == "CALL_RECEIVED" for r in hook.received))
    received = next(r for r in hook.received if r.body["type"] == "CALL_RECEIVED")
    assert received.headers["X-Signature"] == sign(received.raw, "s3cret")
    assert received.headers["Authorization"] == "Basic " + base64.b64encode(b"fe:pa:ss").decode()
