"""Signing a browser in: a form takes an API token once and answers with the dashboard's cookie
(``access.session_cookie``: it holds no token). The token travels in a POST body, never in a URL.

Cross-site request forgery: the cookie is ``SameSite=Strict``, the pages behind it only read, and the
two forms that change something (sign in, sign out) refuse a POST whose ``Origin`` is another site.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from html import escape
from urllib.parse import urlsplit

from aiohttp import web

from flowengine.server.access import (
    COOKIE,
    COOKIE_TTL,
    HOW_TO_CONFIGURE,
    LOGIN_PATH,
    session_cookie,
    token_matches,
)
from flowengine.server.dashboard.layout import SECURITY_HEADERS, page, shown

log = logging.getLogger("flowengine.server")
MAX_TOKEN = 1024  # characters


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site, else the front page (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    return "/" if parts.scheme or parts.netloc else value


def same_origin(request: web.Request) -> bool:
    """A POST from one of this site's own pages, or from no browser at all (no ``Origin``)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")
    return urlsplit(origin).netloc == request.host


def _over_https(request: web.Request) -> bool:
    """HTTPS here or at the proxy in front (its word is trusted: it can only make the cookie stricter)."""
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


class Login:
    """The three handlers, for the tokens of the config."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = tuple(token.encode("utf-8", "surrogateescape") for token in tokens)

    async def form(self, request: web.Request) -> web.Response:
        return self._form(safe_next(request.query.get("next")))

    async def sign_in(self, request: web.Request) -> web.Response:
        if not same_origin(request):
            return self._refused(request, "a sign-in from another site")
        try:
            form = await request.post()
        except ValueError as exc:  # a body the form reader cannot read (multipart with no boundary, ...)
            log.warning("dashboard sign-in refused: unreadable form (%s; from %s)", exc, request.remote)
            return self._form("/", "The form did not arrive whole: sign in again.", status=400)
        token, back = form.get("token"), safe_next(str(form.get("next") or "/"))
        if not (isinstance(token, str) and 0 < len(token) <= MAX_TOKEN and token_matches(token, self.tokens)):
            log.warning("dashboard sign-in refused: wrong token (from %s)", request.remote)
            return self._form(back, "That is not one of the service's API tokens.", status=401)
        response = web.Response(status=303, headers={"Location": back, **SECURITY_HEADERS})
        response.set_cookie(COOKIE, session_cookie(token, time.time()), max_age=COOKIE_TTL,
                            path="/", httponly=True, samesite="Strict", secure=_over_https(request))
        return response

    async def sign_out(self, request: web.Request) -> web.Response:
        if not same_origin(request):
            return self._refused(request, "a sign-out from another site")
        response = web.Response(status=303, headers={"Location": LOGIN_PATH, **SECURITY_HEADERS})
        response.del_cookie(COOKIE, path="/")
        return response

    def _form(self, back: str, error: str | None = None, status: int = 200) -> web.Response:
        if not self.tokens:
            closed = f'<p class="problem">The dashboard is closed: {escape(HOW_TO_CONFIGURE)}.</p>'
            return page("Sign in", closed, status=403, signed_in=False)
        message = f'<p class="problem">{shown(error)}</p>' if error else ""
        body = (
            f'{message}<form class="login" method="post" action="{LOGIN_PATH}">'
            '<label>API token <input type="password" name="token" autocomplete="current-password" '
            'required autofocus></label>'
            f'<input type="hidden" name="next" value="{escape(back)}">'
            '<button type="submit">Sign in</button></form>'
            "<p>Use one of the <code>api_tokens</code> of the service's config. The browser keeps a cookie "
            f"made from it (not the token) for {COOKIE_TTL // 3600} hours.</p>"
        )
        return page("Sign in", body, status=status, signed_in=False)

    def _refused(self, request: web.Request, what: str) -> web.Response:
        log.warning("dashboard refused %s (Origin %s, from %s)", what, request.headers.get("Origin"),
                    request.remote)
        return page("Refused", f'<p class="problem">Refused: {shown(what)}.</p>', status=403, signed_in=False)
