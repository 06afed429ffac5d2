"""What every dashboard page shares: the frame, the headers, and the one way text reaches the page.

Everything shown comes from flows and sessions, and both can hold hostile text (a variable set from a
caller's keys, a platform's error message, a guard with ``<``): it goes through ``shown`` (escaped, phone
numbers masked) or ``link`` (percent-encoded, then escaped). The pages carry no script at all and the
Content-Security-Policy says so, so even a slip in escaping could not run one; styles come from the one
style sheet the service serves.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from html import escape
from importlib.resources import files
from urllib.parse import urlencode

from aiohttp import web

from flowengine.masking import mask_numbers
from flowengine.redaction import redact

STYLESHEET = "/static/dashboard.css"
CSS = files("flowengine.server.dashboard").joinpath("static/dashboard.css").read_bytes()
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def shown(value: object) -> str:
    """``value`` as HTML text: secrets redacted, phone numbers masked, markup escaped (quotes too)."""
    return escape(mask_numbers(redact(str(value))), quote=True)


def link(path: str, query: Mapping[str, object] | None = None) -> str:
    """An ``href`` value: the path as given (ours), the query's values percent-encoded, then escaped."""
    kept = {key: str(value) for key, value in (query or {}).items() if value not in (None, "")}
    return escape(path + (f"?{urlencode(kept)}" if kept else ""), quote=True)


def page(
    title: str, body: str, *, status: int = 200, refresh: int | None = None, signed_in: bool = True
) -> web.Response:
    """A whole page: ``title`` is plain text (escaped here), ``body`` is HTML built with ``shown``."""
    meta = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh else ""
    nav = (
        '<nav><a href="/">Flows</a> <a href="/sessions">Sessions</a> '
        '<a href="/sessions?status=failed">Failed</a>'
        '<form method="post" action="/logout" class="logout"><button type="submit">Sign out</button></form>'
        "</nav>"
        if signed_in else ""
    )
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">{meta}'
        f'<title>{shown(title)} · flowengine</title><link rel="stylesheet" href="{STYLESHEET}">'
        '<link rel="icon" href="data:,"></head>'
        f'<body><header><span class="brand">flowengine</span>{nav}</header>'
        f"<main><h1>{shown(title)}</h1>{body}</main></body></html>"
    )
    return web.Response(text=document, status=status, content_type="text/html", headers=SECURITY_HEADERS)


async def stylesheet(_: web.Request) -> web.Response:
    return web.Response(body=CSS, content_type="text/css",
                        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"})


def utc(epoch: float | None) -> str:
    """``2026-01-01 00:00:05Z`` (empty for no time)."""
    if not epoch:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)) + "Z"


def duration(seconds: float) -> str:
    """``0.35 s``, ``12.4 s``, ``4 min 05 s``, ``2 h 03 min``."""
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def status_badge(status: str) -> str:
    known = status if status in ("active", "ended", "failed", "new") else "other"
    return f'<span class="badge status-{known}">{shown(status)}</span>'
