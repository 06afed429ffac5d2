"""The ``http`` action's client: requests (a JSON or form body, the flow's headers) to hosts on the
service's ``http_allow`` list, nothing else.

A flow is configuration, not code, so it must not reach arbitrary hosts, nor be turned into a way in
to the network the service runs in (SSRF). Every check fails the action for good (``action.failed``,
nothing retried) before a connection is made:

- the URL must be an absolute http(s) URL that parses unambiguously (no backslash, space or control
  character, no legacy numeric IPv4 form);
- its host and port must match an ``http_allow`` entry (``allow_list``: a bare host means ports 80
  and 443);
- the addresses the host resolves to must be public unless the entry says ``private: true``. The check
  is made by the connector's own resolver (``GuardedResolver``), so the connection goes to the very
  address that was checked: a name whose DNS answer changes between check and use gains nothing;
- redirects are followed (at most ``MAX_REDIRECTS``) only when each hop passes the same checks;
- the answer is read up to ``max_bytes`` and the whole exchange, redirects included, is bounded by
  ``timeout`` seconds.

Messages show URLs through ``redact_url``: query values and credentials never reach the trace, the
store, the API or the log.

Headers: each ``${VAR}`` in a value is filled from the service's environment here, as the request goes
out, and nowhere else (the service's own ``INFOBIP_*``, ``SINCH_*`` and ``FLOWENGINE_*`` variables are
refused); messages name a header, never its value. A redirect to another origin drops the flow's
headers: credentials meant for one host are not handed to the next. An answer that is not 2xx fails the
action with its status.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from flowengine.config import env_names, expand_env
from flowengine.errors import ConfigError, ProviderError
from flowengine.flow.vocabulary import HEADER_NAME_PATTERN, HTTP_PROTECTED_ENV
from flowengine.redaction import redact, redact_url
from flowengine.runtime.clock import Clock
from flowengine.runtime.ports import HttpAnswer, HttpRequest
from flowengine.server.allow_list import AllowEntry, AllowList, address_refused, ip_literal

log = logging.getLogger("flowengine.http")

MAX_TEXT = 2000  # characters of a non-JSON answer kept for the flow
MAX_REDIRECTS = 5
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 1_048_576
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# A backslash, whitespace or a control character: parsers disagree on what such a URL means.
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
# Hosts that look like an IPv4 address written some other way (127.1, 0x7f000001, 2130706433).
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$")
_HEADER_NAME = re.compile(HEADER_NAME_PATTERN)
_UNSAFE_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is fine in a header value; CR, LF are not


class AddressRefused(OSError):
    """A name resolved only to addresses its ``http_allow`` entry does not let the action reach."""


class GuardedResolver(AbstractResolver):
    """Resolves as usual, then keeps only the addresses the host's ``http_allow`` entry allows; the
    connector connects to what this returns, so nothing resolved later can slip in."""

    def __init__(self, allow: AllowList, inner: AbstractResolver | None = None) -> None:
        self._allow = allow
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        entry = self._allow.match(host, port)
        if entry is None:  # checked before the request already: only a bug gets here
            raise AddressRefused(f"{host}:{port} is not on the http_allow list")
        if self._inner is None:
            self._inner = DefaultResolver()
        found = await self._inner.resolve(host, port, family)
        reasons = [address_refused(r["host"], private_ok=entry.private) for r in found]
        usable = [r for r, why in zip(found, reasons, strict=True) if why is None]
        if not usable:
            why = next((w for w in reasons if w), "no address")
            raise AddressRefused(f"{host} resolves to {why}")  # "localhost resolves to 127.0.0.1, a ..."
        return usable

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


class AllowListHttp:
    def __init__(
        self,
        allow: Iterable[str | Mapping[str, Any] | AllowEntry],
        clock: Clock,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        resolver: AbstractResolver | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """``resolver``: where names are looked up (aiohttp's default); its answers are checked.
        ``environ``: where header ``${VAR}``s are read (the process environment)."""
        self.allow = AllowList(allow)  # ConfigError for an entry that does not parse
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.clock = clock
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    def allowed(self, url: str) -> bool:
        """Whether ``url`` passes the checks made before connecting (its addresses are checked later)."""
        try:
            self._checked(url)
        except ProviderError:
            return False
        return True

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.allow, self._resolver))
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                cookie_jar=aiohttp.DummyCookieJar(),  # one session's cookies are no other session's
            )
            # As for the providers' clients: aiohttp would silently send a request again on a dropped
            # keep-alive connection; whether an http action may be repeated is the executor's call.
            self._session._retry_connection = False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, request: HttpRequest) -> HttpAnswer:
        try:
            target = self._checked(request.url)
            headers = request_headers(request.headers, self.environ)
            await self.start()
            limit = self.timeout if request.timeout is None else min(request.timeout, self.timeout)
            with self.clock.busy(waiting=True):
                return await self._bounded(request, target, headers, limit)
        except ProviderError as exc:
            log.warning("%s", exc)
            raise

    async def _bounded(
        self, request: HttpRequest, url: URL, headers: Mapping[str, str], limit: float
    ) -> HttpAnswer:
        shown = redact_url(str(url))
        try:
            async with asyncio.timeout(limit):
                return await self._exchange(request, url, headers)
        except TimeoutError as exc:
            raise ProviderError(
                f"http: {request.method} {shown}: no answer within {limit:g} s", retryable=True,
                outcome_unknown=True,
            ) from exc

    async def _exchange(self, request: HttpRequest, url: URL, headers: Mapping[str, str]) -> HttpAnswer:
        assert self._session is not None
        method, payload = request.method, _payload(request)
        for hop in range(MAX_REDIRECTS + 1):
            try:
                async with self._session.request(
                    method, url, headers=headers, allow_redirects=False, **payload
                ) as response:
                    location = response.headers.get("Location")
                    if response.status not in _REDIRECTS or location is None:
                        return await _answer(method, url, response, self.max_bytes)
            except aiohttp.ClientError as exc:
                if isinstance(exc, TimeoutError):
                    raise  # aiohttp's own deadline: the same answer as ours ("no answer within")
                raise _transport_error(method, url, exc, redirected=hop > 0) from exc
            target = self._checked(_joined(url, location), redirected=True)
            if target.origin() != url.origin():
                headers = {}  # the flow's headers (credentials among them) were meant for the first host
            url = target
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, payload = "GET", {}  # what browsers and aiohttp itself do
        raise ProviderError(f"http: {method} {redact_url(str(url))}: more than {MAX_REDIRECTS} redirects")

    def _checked(self, raw: Any, *, redirected: bool = False) -> URL:
        """The URL to request, if it passes every check made before connecting; else ``ProviderError``
        (final). ``redirected``: it came from a ``Location`` header."""
        text = raw if isinstance(raw, str) else repr(raw)
        what = f'redirect to "{redact_url(text)}"' if redirected else f'"{redact_url(text)}"'
        if not isinstance(raw, str) or _UNSAFE.search(raw):
            raise ProviderError(f"http: {what} is not a well-formed URL")
        try:
            url = URL(raw)
            host, port = url.raw_host, url.port
        except (ValueError, TypeError):
            raise ProviderError(f"http: {what} is not a well-formed URL") from None
        if url.scheme not in ("http", "https") or not host or port is None:
            raise ProviderError(f"http: {what} is not an absolute http or https URL")
        literal = ip_literal(host)
        if literal is None and _NUMERIC_HOST.match(host):
            raise ProviderError(f"http: {what} is not a well-formed URL (write IPv4 addresses as a.b.c.d)")
        entry = self.allow.match(host, port)
        if entry is None:
            if self.allow.hosts_allowed(host):
                raise ProviderError(f"http: {what}: port {port} is not allowed for {host} by http_allow")
            raise ProviderError(f"http: host of {what} is not on the service's http_allow list")
        why = address_refused(literal, private_ok=entry.private) if literal is not None else None
        if why is not None:
            raise ProviderError(f"http: {what} refused: {why}")
        return url


def _joined(base: URL, location: str) -> str:
    try:
        return str(base.join(URL(location)))
    except (ValueError, TypeError):
        return location  # the check that follows refuses it with a clear reason


def _transport_error(method: str, url: URL, exc: aiohttp.ClientError, *, redirected: bool) -> ProviderError:
    shown = ("redirected to " if redirected else "") + redact_url(str(url))
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, AddressRefused):
            return ProviderError(f"http: {method} {shown} refused: {exc.os_error}")
        return ProviderError(f"http: {method} {shown} failed: {_why(exc)}", retryable=True)
    return ProviderError(f"http: {method} {shown} failed: {_why(exc)}", retryable=True, outcome_unknown=True)


def _why(exc: BaseException) -> str:
    return redact(str(exc)) or type(exc).__name__  # aiohttp's messages may quote the URL


def _payload(request: HttpRequest) -> dict[str, Any]:
    """aiohttp's keyword for the body: ``json`` or ``data`` (a form), or none."""
    if request.form is not None:
        return {"data": dict(request.form)}
    return {} if request.json is None else {"json": request.json}


def request_headers(written: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The flow's headers with each ``${VAR}`` replaced from ``environ``; ``ProviderError`` (final) for a
    bad name, a variable not set or one of the service's own, or a value that would split the header.
    Messages name the header and the variable, never a value."""
    headers: dict[str, str] = {}
    for name, value in written.items():
        if not _HEADER_NAME.match(name):
            raise ProviderError(f'http: "{redact(name)}" is not a header name')
        for var in env_names(value):
            if var.startswith(HTTP_PROTECTED_ENV):
                raise ProviderError(
                    f'http: header "{name}" refers to ${{{var}}}: the service\'s own variables '
                    f"({', '.join(p + '*' for p in HTTP_PROTECTED_ENV)}) are never sent"
                )
        try:
            filled = expand_env(value, environ, f'http: the "{name}" header')
        except ConfigError as exc:
            raise ProviderError(str(exc)) from None
        if _UNSAFE_VALUE.search(filled):
            raise ProviderError(f'http: header "{name}" holds a line break or control character')
        headers[name] = filled
    return headers


async def _answer(method: str, url: URL, response: aiohttp.ClientResponse, max_bytes: int) -> HttpAnswer:
    shown = redact_url(str(url))
    if not 200 <= response.status < 300:
        raise ProviderError(
            f"http: {method} {shown} answered {response.status}",
            status=response.status,
            retryable=response.status >= 500 or response.status == 429,
        )
    data = await _read_capped(response, max_bytes, f"http: {method} {shown}")
    headers = {name.lower(): value for name, value in response.headers.items()}
    if not data:
        return HttpAnswer(response.status, None, headers)
    if response.content_type == "application/json" or response.content_type.endswith("+json"):
        try:
            return HttpAnswer(response.status, json.loads(data), headers)
        except (ValueError, RecursionError):  # RecursionError: nested past what the decoder recurses
            raise ProviderError(f"http: {method} {shown} answered JSON that does not parse") from None
    try:
        text = data.decode(response.charset or "utf-8", "replace")
    except LookupError:
        text = data.decode("utf-8", "replace")
    return HttpAnswer(response.status, text[:MAX_TEXT], headers)


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int, what: str) -> bytes:
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise ProviderError(f"{what}: the answer ({declared} bytes) is over the {max_bytes}-byte limit")
    data = bytearray()
    async for chunk in response.content.iter_chunked(65_536):
        data += chunk
        if len(data) > max_bytes:
            raise ProviderError(f"{what}: the answer is over the {max_bytes}-byte limit")
    return bytes(data)
