"""The aiohttp application: webhook routes, health, readiness, metrics and the read API.

State lives under ``web.AppKey``s; start-up and shutdown are one ``cleanup_ctx`` (adapter client,
store, timer loop), so aiohttp's graceful shutdown finishes in-flight webhooks before closing them.
A second one sizes the garbage collector for serving while the app runs (``collector_tuning``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from flowengine.config import ServiceConfig
from flowengine.errors import ConfigError, SessionNotFound, StoreError, WebhookError
from flowengine.providers import platform
from flowengine.providers.base import Adapter, WebhookRequest
from flowengine.providers.intake import IntakeLimits
from flowengine.runtime.clock import Clock, SystemClock
from flowengine.runtime.ports import HttpClient
from flowengine.runtime.session import TRACE_LIMIT
from flowengine.server import api, control, reload
from flowengine.server.access import access_check
from flowengine.server.dashboard import dashboard
from flowengine.server.flows import start_flows
from flowengine.server.http_action import AllowListHttp
from flowengine.server.metrics import Metrics
from flowengine.server.openapi import openapi_json
from flowengine.server.pacing import paces
from flowengine.server.providers import WEBHOOK_AUTH_HELP, build_adapter
from flowengine.server.recording import recorder
from flowengine.server.service import Service
from flowengine.stores.base import SessionStore, open_store

log = logging.getLogger("flowengine.server")

SERVICE = web.AppKey("service", Service)
CONFIG = web.AppKey("config", ServiceConfig)
CLOCK = web.AppKey("clock", Clock)
HTTP = web.AppKey("http", AllowListHttp)
# This app's description, served as is, under the outbound flows it was made for (one entry: the latest).
OPENAPI = web.AppKey("openapi", dict[tuple[str, ...], bytes])

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(
    config: ServiceConfig,
    *,
    clock: Clock | None = None,
    store: SessionStore | None = None,
    adapter: Adapter | None = None,
    timer_poll: float | None = 1.0,
    trace_limit: int = TRACE_LIMIT,
    wrap_http: Callable[[AllowListHttp], HttpClient] | None = None,
) -> web.Application:
    """Build the app; flows are loaded and checked now, so a bad flow fails before binding a port.
    ``wrap_http``: the http actions' client made of the allow-list one (a scenario's mocks)."""
    clock = clock if clock is not None else SystemClock()
    store = store if store is not None else open_store(config.store, now=clock.now)
    adapter = (
        adapter if adapter is not None else build_adapter(config.provider, config.provider_settings, clock)
    )
    check_webhook_auth(config, adapter)
    http = AllowListHttp(
        config.http_allow, clock, timeout=config.http_timeout, max_bytes=config.http_max_bytes
    )
    service = _service(config, clock, store, adapter, http if wrap_http is None else wrap_http(http),
                       timer_poll=timer_poll, trace_limit=trace_limit)
    # Probes, webhooks (they authenticate the platform) and the description are open; every other route
    # wants a token. The dashboard's pages also take its sign-in cookie; its sign-in form and style sheet
    # are open.
    board = dashboard(SERVICE, config.api_tokens)
    open_handlers = {_webhook, _healthz, _readyz, _openapi, *board.open,
                     *([_metrics] if config.metrics_public else [])}
    guarded = _guarded(access_check(config.api_tokens, open_handlers, board.pages))
    # Wall-clock time cannot jump, so only another clock needs holding while a request is handled.
    middlewares = [guarded] if type(clock) is SystemClock else [guarded, _on_clock]
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=middlewares)
    app[SERVICE], app[CONFIG], app[CLOCK], app[HTTP] = service, config, clock, http
    app[OPENAPI] = {}
    app.cleanup_ctx.extend([collector_tuning, _lifecycle])
    base = config.webhook_path
    app.router.add_post(f"{base}/{adapter.name}", _webhook)
    app.router.add_post(f"{base}/{adapter.name}/{{kind}}", _webhook)  # e.g. Infobip's receive + event URLs
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/openapi.json", _openapi)
    api.add_routes(app, SERVICE)
    board.install(app)
    control.add_routes(app, SERVICE)  # the write API: outbound calls, events into sessions, ends
    reload.add_routes(app, SERVICE, CONFIG)  # new flow versions without a restart
    return app


def _service(
    config: ServiceConfig, clock: Clock, store: SessionStore, adapter: Adapter, http: HttpClient, *,
    timer_poll: float | None, trace_limit: int,
) -> Service:
    loaded = start_flows(config)
    metrics = Metrics()
    metrics.insecure_webhooks.set(0 if adapter.webhook_auth_enabled else 1)
    return Service(
        flows=loaded.flows,
        router=loaded.router,
        store=store,
        adapter=adapter,
        clock=clock,
        metrics=metrics,
        timer_poll=timer_poll,
        trace_limit=trace_limit,
        http=http,
        quiet_after=config.reconcile_after,
        replay_ttl=config.replay_ttl,
        limits=IntakeLimits(max_depth=config.max_depth, max_events=config.max_events),
        pacing=paces(config.pacing),
        recorder=recorder(config, clock, loaded.flows) if config.record is not None else None,
        versions=loaded.versions,
        platform=platform(config.provider),
    )


def check_webhook_auth(config: ServiceConfig, adapter: Adapter) -> None:
    """Refuse to serve webhooks anyone could forge, unless the config says ``insecure_webhooks``; and a
    replay memory shorter than the timestamp window would let a replay through once it is forgotten."""
    if not adapter.webhook_auth_enabled and not config.insecure_webhooks:
        help_text = WEBHOOK_AUTH_HELP.get(adapter.name, f"configure {adapter.name}'s webhook authentication")
        raise ConfigError(
            f"{adapter.name} webhooks are not authenticated, so anyone who can reach the webhook route "
            f"could drive calls.\nTo fix it, {help_text}.\nFor a test set-up only, "
            "`insecure_webhooks: true` in the config serves them unauthenticated."
        )
    window = adapter.replay_window
    if window is not None and config.replay_ttl < 2 * window:
        raise ConfigError(
            f"replay_ttl ({config.replay_ttl:g} s) must be at least twice the {adapter.name} webhook "
            f"timestamp window ({window:g} s), or a replay inside the window could be forgotten"
        )


# The collector's youngest generation, sized for a server. At Python's default (700 allocations more than
# deallocations) the objects of the requests in flight (coroutines, futures, buffers) start a collection
# every few requests, and one in a hundred is a full one, which rescans all that is kept in memory (the
# sessions): measured, a third of the CPU of a webhook that sends one command. Cyclic garbage waits longer.
GC_YOUNG_THRESHOLD = 10_000


async def collector_tuning(_: web.Application) -> AsyncIterator[None]:
    """Raise the collector's youngest threshold to ``GC_YOUNG_THRESHOLD`` while the app runs (never lower
    it, nor turn automatic collection back on where it is off); the previous thresholds come back after."""
    before = gc.get_threshold()
    if 0 < before[0] < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    service = app[SERVICE]
    await service.adapter.start()
    if not service.adapter.webhook_auth_enabled:
        log.warning(
            "INSECURE: webhook authentication is off (insecure_webhooks: true): every request to the "
            "webhook route is accepted, and anyone who can reach it can drive calls. To fix it, %s.",
            WEBHOOK_AUTH_HELP.get(service.adapter.name, "Configure the provider's webhook authentication"),
        )
    if not app[CONFIG].api_tokens:
        log.warning("no api_tokens configured: the read API, the dashboard%s answer 403",
                    "" if app[CONFIG].metrics_public else " and /metrics")
    if not await service.store.ping():
        log.warning("session store is not reachable yet; /readyz says so until it is")
    else:  # else the first session of each version stores it (``Catalog.publish``)
        await service.catalog.publish()
    loop = asyncio.get_running_loop()
    timers = loop.create_task(service.timers.run())
    recovery = loop.create_task(service.reconciler.recover())  # webhooks lost while the engine was down
    log.info("flowengine serving %s with flows %s", service.adapter.name, ", ".join(service.flows))
    yield
    for task in (recovery, timers):
        task.cancel()
    await asyncio.gather(recovery, timers, return_exceptions=True)
    await service.close()
    await service.adapter.close()
    await app[HTTP].close()
    await service.store.close()


def _guarded(refusal: Callable[[web.Request], web.StreamResponse | None]) -> Middleware:
    """Every route's one middleware (each layer of them costs every request a call through aiohttp):
    the token guard (``access.access_check``), inside the fault translation: 503 when the store fails,
    500 for a fault of the engine's own, each logged once with its cause (the webhook route answers its
    own, with the platform's refusal metrics)."""

    @web.middleware
    async def guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            refused = refusal(request)
            if refused is not None:
                return refused
            return await handler(request)
        except web.HTTPException:
            raise
        except StoreError as exc:
            log.error("store failed while answering %s %s: %s", request.method, request.rel_url.raw_path,
                      exc)
            return web.json_response({"error": "session store unavailable", "status": 503}, status=503)
        except Exception as exc:  # a bug: the traceback is what finds it
            log.error("%s %s failed on a fault of the engine's: %r", request.method,
                      request.rel_url.raw_path, exc, exc_info=exc)
            return web.json_response({"error": "internal error", "status": 500}, status=500)

    return guarded


@web.middleware
async def _on_clock(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Virtual time must not jump while a webhook is being handled.
    with request.app[CLOCK].busy():
        return await handler(request)


async def _webhook(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    started = time.perf_counter()  # what event_seconds.time() does, without its context manager
    try:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _refuse(service, 413, "webhook body too large", request)
        except ConnectionError as exc:  # the client left, or was cut for sending too slowly (counted there)
            log.debug("webhook body not received: %s (from %s)", exc, request.remote)
            service.metrics.count("webhooks", service.adapter.name, "abandoned")
            return web.Response(status=400)  # nobody is left to read it
        hook = WebhookRequest(request.method, request.path, dict(request.headers), body, dict(request.query))
        return await _handle(service, hook, request)
    finally:
        service.metrics.observe("webhook_seconds", max(time.perf_counter() - started, 0))


async def _handle(service: Service, hook: WebhookRequest, request: web.Request) -> web.Response:
    """4xx for what the sender got wrong, 503 when the store fails (the platform retries: nothing is
    lost), 500 only for a fault of the engine's own; each logged once, with its cause."""
    try:
        reply = await service.handle_webhook(hook)
    except WebhookError as exc:  # WebhookAuthError included: 401
        return _refuse(service, exc.status, str(exc), request)
    except SessionNotFound as exc:
        return _refuse(service, 404, str(exc), request)
    except StoreError as exc:
        log.error("store failed while handling a webhook: %s", exc)
        return _refuse(service, 503, "session store unavailable", request)
    except Exception as exc:  # a bug: the traceback is what finds it
        log.error("webhook failed on a fault of the engine's: %r", exc, exc_info=exc)
        return _refuse(service, 500, "internal error", request)
    return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)


def _refuse(service: Service, status: int, message: str, request: web.Request) -> web.Response:
    message = one_line(message)  # it may quote the sender's own text
    log.warning(
        "webhook refused: %d %s (%s %s from %s)",
        status,
        message,
        request.method,
        request.rel_url.raw_path,  # as sent, still %-encoded: a decoded path could hold a line break
        request.remote,
    )
    # 4xx: the sender's fault, refused; 5xx: ours (or the store's), failed, and the platform retries.
    outcome = f"{'failed' if status >= 500 else 'refused'}_{status}"
    service.metrics.count("webhooks", service.adapter.name, outcome)
    return web.json_response({"error": message, "status": status}, status=status)


def one_line(text: str, limit: int = 300) -> str:
    """``text`` as one printable line of at most ``limit`` characters (escapes for the rest)."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    checks: dict[str, Any] = {"store": await service.store.ping(), "flows": sorted(service.flows)}
    ready = bool(checks["store"])
    return web.json_response(
        {"status": "ready" if ready else "not ready", **checks}, status=200 if ready else 503
    )


async def _metrics(request: web.Request) -> web.Response:
    body, content_type = await request.app[SERVICE].scrape()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _openapi(request: web.Request) -> web.Response:
    return web.Response(body=description(request.app), content_type="application/json")


def description(app: web.Application) -> bytes:
    """The app's OpenAPI description; made again only when a reload changed which flows start outbound."""
    service, config = app[SERVICE], app[CONFIG]
    outbound = tuple(sorted(name for name, flow in service.flows.items() if flow.outbound is not None))
    cache = app[OPENAPI]
    document = cache.get(outbound)
    if document is None:
        document = openapi_json(
            None, providers=(service.adapter.name,), webhook_path=config.webhook_path,
            metrics_public=config.metrics_public, outbound_flows=list(outbound),
        ).encode()
        cache.clear()
        cache[outbound] = document
    return document
