"""Reloading the flows without a restart: ``POST /api/flows/reload`` (bearer token, like the rest of the
API) and SIGHUP to ``flowengine serve``.

Every flow file the config names is read and checked again, as ``flowengine validate`` checks it. Any
error and nothing changes: the request is answered 422 with the diagnostics (path, line, col, rule,
message), SIGHUP logs them, and the versions loaded keep serving. Otherwise new calls start on the new
versions while the sessions in progress finish on the version they started on (``server.catalog``); the
answer says, per flow, what changed (version hash before and after). The config itself is not read
again: routes, provider and store stay as the service started with them.

Each instance reloads from its own files: with several instances sharing a store, a deploy reloads each
one. Until it has, an instance starts new calls on the version it has loaded, and runs a session that
another instance started on a newer version on that newer version, compiled from the store.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from flowengine.config import ServiceConfig
from flowengine.errors import FlowError, StoreError
from flowengine.flow.diagnostics import Diagnostic
from flowengine.server.flows import read_flows
from flowengine.server.service import Service

log = logging.getLogger("flowengine.server")


async def reload_flows(service: Service, config: ServiceConfig) -> list[dict[str, Any]]:
    """Read and check every flow again, then serve the new versions: what changed per flow. ``FlowError``
    (nothing changed) when any flow has an error; ``StoreError`` when the new sources cannot be stored."""
    loaded = await asyncio.to_thread(read_flows, config)  # file reads and checks: off the event loop
    changes = await service.reload(loaded)
    log.info("flows reloaded: %s", "; ".join(_change_text(c) for c in changes))
    return changes


def diagnostics_json(diagnostics: Sequence[Diagnostic]) -> list[dict[str, Any]]:
    """As ``flowengine validate --format json`` prints them."""
    return [{"path": d.path, "line": d.line, "col": d.col, "severity": d.severity, "rule": d.rule,
             "message": d.message} for d in diagnostics]


def add_routes(app: web.Application, service: web.AppKey[Service], config: web.AppKey[ServiceConfig]) -> None:
    async def reload(request: web.Request) -> web.Response:
        try:
            changes = await reload_flows(request.app[service], request.app[config])
        except FlowError as exc:
            log.warning("flows not reloaded (%d problems): %s", len(exc.diagnostics), exc)
            body = {"error": "the flows have errors: nothing was reloaded, the loaded versions keep serving",
                    "status": 422, "diagnostics": diagnostics_json(exc.diagnostics)}
            return web.json_response(body, status=422)
        except StoreError as exc:
            log.error("flows not reloaded: the store failed: %s", exc)
            return web.json_response({"error": "session store unavailable", "status": 503}, status=503)
        return web.json_response({"reloaded": True, "flows": changes})

    app.router.add_post("/api/flows/reload", reload)


def reload_on_hangup(
    app: web.Application, service: web.AppKey[Service], config: web.AppKey[ServiceConfig]
) -> None:
    """SIGHUP reloads the flows (``flowengine serve``): the outcome, or every diagnostic, goes to the log."""
    running: set[asyncio.Task[None]] = set()

    async def hangup() -> None:
        try:
            await reload_flows(app[service], app[config])
        except FlowError as exc:
            log.error("SIGHUP: flows not reloaded, the loaded versions keep serving:\n%s",
                      "\n".join(d.format() for d in exc.diagnostics))
        except StoreError as exc:
            log.error("SIGHUP: flows not reloaded: the store failed: %s", exc)

    def on_signal() -> None:
        task = asyncio.get_running_loop().create_task(hangup())
        running.add(task)  # kept until done: the loop holds tasks weakly
        task.add_done_callback(running.discard)

    async def installed(_: web.Application) -> Any:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, on_signal)
        yield
        loop.remove_signal_handler(signal.SIGHUP)

    app.cleanup_ctx.append(installed)


def _change_text(change: dict[str, Any]) -> str:
    name, kind = change["name"], change["change"]
    return f"{name} {kind}" + (f" {change['from']} -> {change['to']}" if kind == "changed" else "")
