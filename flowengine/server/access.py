"""Who may read and drive: the API (``/api/...``: the read routes, and the write routes that start calls,
deliver events to sessions and end them), the dashboard (``/``) and ``/metrics`` need a bearer token
from the config's ``api_tokens``; ``/healthz`` and ``/readyz`` (probes) and the webhook routes (they
authenticate the platform themselves) are open, and ``/metrics`` too with ``metrics_public``.

Closed by default: any route the app does not name open needs a token, so a route added later is not
readable by strangers by accident. With no token configured every guarded route answers 403 saying how
to configure one; with tokens, a request without the right one gets 401 and ``WWW-Authenticate:
Bearer``. Tokens are compared in constant time, each of them every time.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

log = logging.getLogger("flowengine.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HOW_TO_CONFIGURE = (
    "no api_tokens configured: add `api_tokens: [\"${FLOWENGINE_API_TOKEN}\"]` to the config (a random "
    "string of 16+ characters in that variable) and send `Authorization: Bearer <token>`"
)


def token_matches(given: str, tokens: Iterable[bytes]) -> bool:
    """Whether ``given`` is one of ``tokens``: every token compared in constant time, none skipped, so the
    time taken says nothing about which one came close."""
    candidate = given.encode("utf-8", "surrogateescape")
    found = False
    for token in tokens:
        found |= hmac.compare_digest(candidate, token)
    return found


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme in any case), else None."""
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def access_guard(tokens: Iterable[str], open_handlers: Collection[Handler]) -> Middleware:
    """The middleware guarding every route but those whose handler is one of ``open_handlers``. It goes
    by the route the request matched, not by its path's text, so no spelling of a path opens another."""
    known = tuple(token.encode() for token in tokens)
    open_ones = frozenset(open_handlers)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.handler in open_ones:
            return await handler(request)
        if not known:
            return _refuse(request, 403, "no api_tokens configured", HOW_TO_CONFIGURE)
        given = bearer(request.headers.get("Authorization"))
        if given is None:
            return _refuse(request, 401, "no bearer token",
                           "a bearer token is required: send Authorization: Bearer <token>")
        if not token_matches(given, known):
            return _refuse(request, 401, "wrong bearer token", "wrong bearer token")
        return await handler(request)

    return guard


def _refuse(request: web.Request, status: int, reason: str, message: str) -> web.Response:
    log.warning("read refused: %d %s (%s %s from %s)", status, reason, request.method, request.path,
                request.remote)
    headers = {"WWW-Authenticate": 'Bearer realm="flowengine"'} if status == 401 else None
    return web.json_response({"error": message, "status": status}, status=status, headers=headers)
