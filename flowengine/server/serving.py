"""Serve an aiohttp app on a local port: for as long as a block runs (scenarios, tests, benchmarks), or
until SIGINT/SIGTERM (``flowengine serve``). Both serve through ``connections.GuardedRunner``, so the
connection limits of ``server:`` hold wherever the app runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from flowengine.config import ServerLimits
from flowengine.errors import ConfigError
from flowengine.server.connections import GuardedRunner


@asynccontextmanager
async def serving(
    app: web.Application, host: str = "127.0.0.1", port: int = 0, limits: ServerLimits | None = None
) -> AsyncIterator[str]:
    """Yields the base URL (``http://127.0.0.1:PORT``, no trailing slash); port 0 picks a free one."""
    runner = GuardedRunner(app, limits or ServerLimits(), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=runner.backlog)
        await site.start()
        bound = runner.addresses[0]
        yield f"http://{bound[0]}:{bound[1]}"
    finally:
        await runner.cleanup()


def run_until_stopped(
    app: web.Application,
    *,
    host: str,
    port: int,
    limits: ServerLimits,
    shutdown_timeout: float,
    announce: Callable[[str], None],
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully: in-flight requests get
    ``shutdown_timeout`` seconds to finish before the app's clean-up runs (as ``web.run_app`` does)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(app, host, port, limits, shutdown_timeout, announce))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():  # the runner's clean-up first, while the requests in flight still run
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            asyncio.set_event_loop(None)


async def _serve(
    app: web.Application, host: str, port: int, limits: ServerLimits, shutdown_timeout: float,
    announce: Callable[[str], None],
) -> None:
    runner = GuardedRunner(
        app, limits, access_log=None, handle_signals=True, shutdown_timeout=shutdown_timeout
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=runner.backlog)
        try:
            await site.start()
        except OSError as exc:  # taken, not ours to use, no such address: the operator's to change
            reason = os.strerror(exc.errno) if exc.errno else str(exc)  # asyncio's text repeats the address
            raise ConfigError(f"cannot listen on {host}:{port}: {reason}") from exc
        announce(f"======== Running on {site.name} ========\n(Press CTRL+C to quit)")
        await asyncio.Event().wait()  # until a signal raises GracefulExit
    finally:
        await runner.cleanup()
