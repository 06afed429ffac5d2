"""Simulator webhook delivery: webhooks per second the simulators' sender gets through to an app on
127.0.0.1, all in one lane (one call: in order, one at a time, as every webhook of the platform went
before lanes) against 50 lanes (50 calls delivered concurrently, ``max_in_flight`` 64).

Two apps: one answering 200 at once (the sender's own cost, with the receiver in the same process), and
one that takes 5 ms per webhook without using the CPU (an engine waiting on its store or the platform's
API), which is where one-at-a-time delivery capped whole-call load tests. No goals: figures to compare.
Run: ``python bench/bench_delivery.py``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from bench import run_quietly
from flowengine.runtime.clock import SystemClock
from flowengine.server.serving import serving
from flowengine.simulator.delivery import WebhookSender

WEBHOOKS = 2_000
WAITING_APP_SECONDS = 0.005
GUARD = 120.0  # seconds: a stuck run fails instead of hanging the benchmark


async def _rate(url: str, lanes: int, webhooks: int) -> float:
    sender = WebhookSender(SystemClock(), url, delay=0.0)
    try:
        # A first webhook opens the connection, so the figure is not the TCP handshake's.
        await asyncio.wait_for(sender.send({"warm": True}), GUARD)
        started = time.perf_counter()
        sent = [sender.send({"n": i}, lane=f"call-{i % lanes}") for i in range(webhooks)]
        await asyncio.wait_for(asyncio.gather(*sent), GUARD)
        elapsed = time.perf_counter() - started
    finally:
        await sender.close()
    return webhooks / elapsed


async def _app(wait: float) -> web.Application:
    async def handle(_: web.Request) -> web.Response:
        if wait:
            await asyncio.sleep(wait)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", handle)
    return app


async def _all() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for app, wait, count in (("", 0.0, WEBHOOKS), ("5ms_app_", WAITING_APP_SECONDS, WEBHOOKS // 4)):
        async with serving(await _app(wait)) as base:
            for lanes in (1, 50):
                name = f"{app}{lanes}_lane{'s' if lanes > 1 else ''}_webhooks_per_s"
                figures[name] = await _rate(base + "/hook", lanes, count)
    return figures


def run() -> dict[str, Any]:
    return run_quietly(_all)


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:36} {value:,.0f}")
