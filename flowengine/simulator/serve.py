"""Running a simulator on its own (``flowengine simulator --provider infobip --port 8081 …``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from flowengine.providers import PROVIDERS
from flowengine.runtime.clock import Clock, SystemClock
from flowengine.simulator.base import Simulator
from flowengine.simulator.clock import ScaledClock
from flowengine.simulator.infobip import InfobipSimulator
from flowengine.simulator.parties import PartyBook
from flowengine.simulator.sinch import SinchSimulator

log = logging.getLogger(__name__)


def build_simulator(
    provider: str,
    clock: Clock,
    webhook_url: str,
    *,
    parties: PartyBook | None = None,
    api_base_url: str = "http://127.0.0.1",
    **options: Any,
) -> Simulator:
    """A simulator by provider name. ``options`` go to the constructor: ``api_key`` for Infobip,
    ``application_key`` / ``application_secret`` for Sinch, ``seed``, ``event_delay``, ``delivery``, ..."""
    if provider == "infobip":
        return InfobipSimulator(
            clock, webhook_url=webhook_url, parties=parties, api_base_url=api_base_url, **options
        )
    if provider == "sinch":
        return SinchSimulator(
            clock, callback_url=webhook_url, parties=parties, api_base_url=api_base_url, **options
        )
    raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")


async def run_simulator(
    provider: str,
    host: str,
    port: int,
    webhook_url: str,
    *,
    parties: PartyBook | None = None,
    clock: Clock | None = None,
    ready: Callable[[Simulator, str], Awaitable[None] | None] | None = None,
    stop: asyncio.Event | None = None,
    **options: Any,
) -> None:
    """Serve a simulator until ``stop`` is set (or forever). ``ready(sim, base_url)`` runs once it listens."""
    base_url = f"http://{host}:{port}"
    sim = build_simulator(
        provider, clock or SystemClock(), webhook_url, parties=parties, api_base_url=base_url, **options
    )
    runner = web.AppRunner(sim.app)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("%s simulator on %s, webhooks to %s", provider, base_url, webhook_url)
        if ready is not None:
            result = ready(sim, base_url)
            if result is not None:
                await result
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()


def serve_simulator(
    provider: str,
    host: str = "127.0.0.1",
    port: int = 8081,
    webhook_url: str = "http://127.0.0.1:8080/webhooks",
    *,
    parties: PartyBook | None = None,
    speed: float = 1.0,
    **options: Any,
) -> None:
    """Blocking entry point for the CLI: serve on ``host:port`` until interrupted, with wall-clock time
    or, with ``speed`` N, a clock N times faster (every simulated wait N times shorter)."""
    clock = SystemClock() if speed == 1.0 else ScaledClock(speed)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a standalone simulator is stopped
        asyncio.run(
            run_simulator(provider, host, port, webhook_url, parties=parties, clock=clock, **options)
        )
