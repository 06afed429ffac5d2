"""The write API: start an outbound call (``POST /api/calls``), deliver a custom event to a session
(``POST /api/sessions/{id}/events``), end a session (``DELETE /api/sessions/{id}``). Bearer token like the
read API (``access``), described in ``openapi``.

Bodies are JSON objects of at most ``MAX_BODY`` bytes, read strictly (no NaN, a bounded depth). Whatever
is wrong with a request is answered 4xx with the reason and logged in one line; a store that fails
answers 503; nothing here answers 500 for a bad request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from aiohttp import web

from flowengine.errors import RequestError, StoreError
from flowengine.providers.intake import finite_float, not_a_number
from flowengine.runtime.session import Session
from flowengine.server.outbound import parse_call, start_outbound
from flowengine.server.steering import deliver_event, end_session, parse_event

if TYPE_CHECKING:
    from flowengine.server.service import Service

log = logging.getLogger("flowengine.server")
MAX_BODY = 65_536  # bytes of a write request's body
MAX_DEPTH = 32  # nesting of its JSON
REPLAYED_HEADER = "Idempotent-Replayed"

Handler = Callable[[web.Request], Awaitable[web.Response]]


def add_routes(app: web.Application, key: web.AppKey[Service]) -> None:
    async def start_call(request: web.Request) -> web.Response:
        service = request.app[key]
        started = await start_outbound(service, parse_call(await read_json(request), service.flows))
        session = started.session
        url = f"/api/sessions/{session.id}"
        body = {**_summary(session), "url": url, "replayed": started.replayed}
        headers = {"Location": url, **({REPLAYED_HEADER: "true"} if started.replayed else {})}
        return web.json_response(body, status=201, headers=headers)

    async def send_event(request: web.Request) -> web.Response:
        wanted = parse_event(await read_json(request))
        delivered = await deliver_event(request.app[key], request.match_info["id"], wanted)
        return web.json_response({**_summary(delivered.session), "event": wanted.name,
                                  "outcome": delivered.outcome})

    async def end(request: web.Request) -> web.Response:
        ended = await end_session(request.app[key], request.match_info["id"])
        body = {**_summary(ended.session), "hung_up": ended.hung_up, "failed": ended.failed}
        return web.json_response(body)

    app.router.add_post("/api/calls", _answering(start_call))
    app.router.add_post("/api/sessions/{id}/events", _answering(send_event))
    app.router.add_delete("/api/sessions/{id}", _answering(end))


async def read_json(request: web.Request) -> Any:
    """The request's body as JSON: 413 over ``MAX_BODY``, 400 if it is not JSON (or nests too deep)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise RequestError(f"the body is over {MAX_BODY} bytes", 413)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise RequestError(f"the body is over {MAX_BODY} bytes", 413) from None
    if len(body) > MAX_BODY:
        raise RequestError(f"the body is over {MAX_BODY} bytes", 413)
    try:
        # Numbers out of range (1e999) are refused like NaN: stored sessions hold finite numbers only.
        doc = json.loads(body, parse_constant=not_a_number, parse_float=finite_float)
    except (ValueError, RecursionError) as exc:
        raise RequestError(f"the body is not JSON: {str(exc)[:120]}") from None
    if _depth(doc) > MAX_DEPTH:
        raise RequestError(f"the body nests deeper than {MAX_DEPTH} levels")
    return doc


def _answering(handler: Handler) -> Handler:
    """Refusals as JSON errors with one log line: a bad request (4xx, the reason), the store down (503)."""

    @wraps(handler)
    async def answering(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except RequestError as exc:
            log.warning("api refused: %d %s (%s %s from %s)", exc.status, exc, request.method, request.path,
                        request.remote)
            return web.json_response({"error": str(exc), "status": exc.status}, status=exc.status)
        except StoreError as exc:
            log.error("store failed while answering %s %s: %s", request.method, request.path, exc)
            return web.json_response({"error": "session store unavailable", "status": 503}, status=503)

    return answering


def _summary(session: Session) -> dict[str, Any]:
    return {"id": session.id, "flow": session.flow, "state": session.state, "status": session.status}


def _depth(value: Any, level: int = 1) -> int:
    """How deep ``value`` nests (stops counting past ``MAX_DEPTH``)."""
    if level > MAX_DEPTH or not isinstance(value, dict | list):
        return level
    items = value.values() if isinstance(value, dict) else value
    return max((_depth(item, level + 1) for item in items), default=level)
