"""Who may read and drive: the API (``/api/...``: the read routes, and the write routes that start calls,
deliver events to sessions and end them), the dashboard (``/``) and ``/metrics`` need a bearer token
from the config's ``api_tokens``; ``/healthz`` and ``/readyz`` (probes) and the webhook routes (they
authenticate the platform themselves) are open, and ``/metrics`` too with ``metrics_public``.

Closed by default: any route the app does not name open needs a token, so a route added later is not
readable by strangers by accident. With no token configured every guarded route answers 403 saying how
to configure one; with tokens, a request without the right one gets 401 and ``WWW-Authenticate:
Bearer``. Tokens are compared in constant time, each of them every time.

Browsers: a link cannot carry an ``Authorization`` header, and a token in a URL ends up in histories,
logs and ``Referer`` headers. So the dashboard's pages (``browser_handlers``, GET only) also take a
cookie, set by its login form once a token was typed in: ``v1.<expiry>.<HMAC-SHA256 of the expiry keyed
by the token>``. It holds no token, is ``HttpOnly`` (no script reads it) and ``SameSite=Strict`` (no
other site's page or form sends it, so no cross-site request forgery), expires after ``COOKIE_TTL``,
works on every instance that has the token and on none once the token is removed from the config. It
opens the pages only: the API and ``/metrics`` still want the bearer token. A browser without a valid
cookie asking for a page is sent to the login form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from urllib.parse import quote

from aiohttp import web

log = logging.getLogger("flowengine.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

COOKIE = "flowengine_dashboard"
COOKIE_TTL = 12 * 3600  # seconds a browser stays signed in
LOGIN_PATH = "/login"
_COOKIE_PURPOSE = b"flowengine dashboard cookie v1:"

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


def session_cookie(token: str, now: float, ttl: float = COOKIE_TTL) -> str:
    """The cookie value proving its holder gave ``token`` (see the module's doc); it never holds it."""
    expires = int(now + ttl)
    return f"v1.{expires}.{_cookie_mac(token.encode('utf-8', 'surrogateescape'), expires)}"


def cookie_valid(value: str | None, tokens: Iterable[bytes], now: float) -> bool:
    """Whether ``value`` is an unexpired cookie made from one of ``tokens`` (each compared in constant
    time, every time)."""
    version, _, rest = (value or "").partition(".")
    expiry, _, mac = rest.partition(".")
    if version != "v1" or not (expiry.isascii() and expiry.isdigit()) or len(expiry) > 12:
        return False
    expires = int(expiry)
    if not now < expires <= now + COOKIE_TTL + 60:  # expired, or from a clock far ahead
        return False
    given = mac.encode("ascii", "replace")
    found = False
    for token in tokens:
        found |= hmac.compare_digest(given, _cookie_mac(token, expires).encode())
    return found


def _cookie_mac(token: bytes, expires: int) -> str:
    digest = hmac.new(token, _COOKIE_PURPOSE + str(expires).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def access_check(
    tokens: Iterable[str], open_handlers: Collection[Handler], browser_handlers: Collection[Handler] = ()
) -> Callable[[web.Request], web.StreamResponse | None]:
    """What guards every route but those whose handler is one of ``open_handlers``: the answer refusing a
    request, or None to let it through. It goes by the route the request matched, not by its path's text,
    so no spelling of a path opens another. ``browser_handlers`` (the dashboard's pages) also take the
    login cookie on GET. (A check rather than a middleware of its own: the app runs it in its one
    middleware, which saves a layer of aiohttp's middleware calls on every request.)"""
    known = tuple(token.encode("utf-8", "surrogateescape") for token in tokens)
    open_ones, pages = frozenset(open_handlers), frozenset(browser_handlers)

    def refusal(request: web.Request) -> web.StreamResponse | None:
        match_info = request.match_info
        if match_info.handler in open_ones or match_info.http_exception is not None:
            return None  # open, or no route here (404/405): nothing to guard
        if match_info.handler in pages and _from_browser(request):
            if cookie_valid(request.cookies.get(COOKIE), known, time.time()):
                return None
            return _to_login(request)
        if not known:
            return _refuse(request, 403, "no api_tokens configured", HOW_TO_CONFIGURE)
        given = bearer(request.headers.get("Authorization"))
        if given is None:
            return _refuse(request, 401, "no bearer token",
                           "a bearer token is required: send Authorization: Bearer <token>")
        if not token_matches(given, known):
            return _refuse(request, 401, "wrong bearer token", "wrong bearer token")
        return None

    return refusal


def _from_browser(request: web.Request) -> bool:
    """A page requested by a browser itself: no bearer token, a safe method, HTML wanted."""
    return (
        "Authorization" not in request.headers
        and request.method in ("GET", "HEAD")
        and "text/html" in request.headers.get("Accept", "")
    )


def _to_login(request: web.Request) -> web.Response:
    """Off to the login form, which brings the browser back here (a path on this site) once signed in."""
    back = quote(request.path_qs, safe="")
    return web.Response(status=303, headers={"Location": f"{LOGIN_PATH}?next={back}",
                                             "Cache-Control": "no-store"})


def _refuse(request: web.Request, status: int, reason: str, message: str) -> web.Response:
    log.warning("read refused: %d %s (%s %s from %s)", status, reason, request.method, request.path,
                request.remote)
    headers = {"WWW-Authenticate": 'Bearer realm="flowengine"'} if status == 401 else None
    return web.json_response({"error": message, "status": status}, status=status, headers=headers)
