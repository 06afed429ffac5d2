"""What every provider's REST client shares: one pooled aiohttp session, retries with backoff through the
``Clock``, and platform error bodies made into ``ProviderError``.

Every failure says which of three kinds it is (see ``ProviderError``): refused (4xx: final); nothing sent
or nothing done (connection refused, connect timeout, 429: always safe to send again); outcome unknown
(the deadline passed while waiting for the answer, the connection dropped after sending, 5xx: the
platform may have carried the request out). ``send`` retries the safe kind always and the unknown kind
only when the caller says the request is idempotent (``resend_unknown``); otherwise it raises at once so
the caller can ask the platform what happened (the command table's reconcile). Backoff honours
``Retry-After`` seconds and waits through the ``Clock`` so virtual time skips it; the HTTP exchange itself
runs inside ``clock.busy()`` so virtual time stands still while it is in flight.

Time is bounded: one request waits at most ``deadline`` seconds for its answer, and one ``send`` spends at
most ``budget`` seconds: a retry is made only if the time spent so far, its backoff and one more full
deadline fit in the budget. Failures that answer at once (a 500, a 429) thus leave room for more tries
than slow ones do, while the worst case stays within the budget. Only method, path, status and latency
are logged: never headers, bodies or credentials.

A provider plugs in how it authenticates (``Authorize``: headers for one request, which may depend on the
exact body bytes, as Sinch's signatures do) and how its error bodies read (``ErrorText``); its retry
settings are any ``retry.Backoff``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from yarl import URL

from flowengine.errors import ProviderError
from flowengine.plainjson import load_json
from flowengine.providers.base import JSON
from flowengine.providers.retry import Backoff, backoff_delay
from flowengine.runtime.clock import Clock, SystemClock

# (method, path, body bytes) -> headers for that one request (authorization, content type, ...).
Authorize = Callable[[str, str, bytes], Mapping[str, str]]
# A decoded JSON error body -> (message, code); (None, None) when it is not the platform's error shape.
ErrorText = Callable[[Any], tuple[str | None, str | None]]


# Failures before a byte of the request can have reached the platform: sending again cannot double it.
_NOTHING_SENT: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError,
)


# ``json.dumps(body, separators=(",", ":"))`` without making an encoder per request.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def retryable(status: int) -> bool:
    return status == 429 or status >= 500


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header; None for HTTP dates or garbage (backoff applies)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def error_from_response(
    status: int, body: bytes, *, platform: str, read: ErrorText, retry_after: float | None = None
) -> ProviderError:
    """The platform's own error text when the body has it, else ``<platform> answered HTTP <status>``.
    A 429 did nothing (the platform refused to take it); any 5xx may have been carried out."""
    text = body.decode("utf-8", "replace")
    try:
        message, code = read(json.loads(text))
    except ValueError:
        message, code = None, None
    if message is None:
        snippet = text.strip()[:200]
        message = f"{platform} answered HTTP {status}" + (f": {snippet}" if snippet else "")
    return ProviderError(
        message, retryable=retryable(status), status=status, code=code, outcome_unknown=status >= 500,
        retry_after=retry_after,
    )


def parse_success(body: bytes, platform: str) -> JSON:
    """A 2xx body: ``{}`` when empty, a list wrapped as ``{"items": [...]}``."""
    if not body.strip():
        return {}
    try:
        payload = load_json(body)
    except ValueError as exc:
        raise ProviderError(f"{platform} answered with a body that is not JSON") from exc
    return payload if isinstance(payload, dict) else {"items": payload}


class JsonClient:
    """JSON requests to one platform. Pass ``session`` to use your own pooled session (it is then yours
    to close); otherwise ``start()`` opens one and ``close()`` closes it (``send`` opens it if needed)."""

    def __init__(
        self,
        *,
        platform: str,
        base_url: str,
        retry: Backoff,
        authorize: Authorize,
        read_error: ErrorText,
        log: logging.Logger,
        clock: Clock | None = None,
        session: aiohttp.ClientSession | None = None,
        total_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        budget: float | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.platform = platform
        self.base_url = base_url.rstrip("/")
        self._retry = retry
        self._authorize = authorize
        self._read_error = read_error
        self._log = log
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._session = session
        self._owns_session = session is None
        self._jitter = jitter
        # ``total_timeout`` is the deadline of one request: past it the answer is not awaited any longer.
        self.deadline = total_timeout
        self.budget = budget if budget is not None else retry.attempts * total_timeout + retry.max_retry_after
        self._timeout = aiohttp.ClientTimeout(total=total_timeout, sock_connect=min(connect_timeout,
                                                                                     total_timeout))

    def __repr__(self) -> str:
        return f"JsonClient(platform={self.platform!r}, base_url={self.base_url!r})"

    async def start(self) -> None:
        if self._session is None or (self._owns_session and self._session.closed):
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            # aiohttp silently sends a GET, PUT or DELETE again when a reused connection drops: for us
            # a PUT (Infobip's conference join) is not idempotent, and only the command table may
            # decide to send again. It has no public switch for this; a session passed in should have
            # it off too.
            self._session._retry_connection = False
            self._owns_session = True

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, method: str, path: str, body: JSON | None = None, *,
                   resend_unknown: bool = True) -> JSON:
        """The JSON answer of a 2xx (``{}`` when empty); raises ``ProviderError`` otherwise. ``path``
        must already be percent-encoded: it is sent (and signed) exactly as given. With
        ``resend_unknown`` False an outcome-unknown failure is raised at once, never sent again."""
        data = b"" if body is None else _COMPACT.encode(body).encode()
        policy = self._retry
        started = self._clock.now()
        for attempt in range(policy.attempts):
            outcome = await self._attempt(method, path, data)
            if not isinstance(outcome, ProviderError):
                return outcome
            again = outcome.safe_to_resend or (outcome.retryable and resend_unknown)
            if not again or attempt + 1 >= policy.attempts:
                raise outcome
            delay = backoff_delay(policy, attempt, outcome.retry_after, self._jitter())
            # Worst case of going on: the time spent so far, this wait, and the next try up to its deadline.
            if self._clock.now() - started + delay + self.deadline > self.budget:
                raise outcome
            await self._clock.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    async def _attempt(self, method: str, path: str, data: bytes) -> JSON | ProviderError:
        if self._session is None:
            await self.start()
        assert self._session is not None
        headers = dict(self._authorize(method, path, data))  # per attempt: signatures carry a timestamp
        url = URL(self.base_url + path, encoded=True)  # as signed: no re-quoting
        started = time.perf_counter()
        with self._clock.busy():
            try:
                async with self._session.request(
                    method, url, data=data or None, headers=headers, timeout=self._timeout
                ) as response:
                    status = response.status
                    answer = await response.read()
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                return self._transport_error(method, path, exc)
        elapsed_ms = (time.perf_counter() - started) * 1000
        # A request that succeeded is logged at debug: at info, a line per command was ~6 % of a whole
        # call's CPU (issue 15); the commands metric counts them. Any other answer stays at info.
        ok = 200 <= status < 300
        self._log.log(logging.DEBUG if ok else logging.INFO, "%s %s %s -> %d in %.1f ms",
                      self.platform.lower(), method, path, status, elapsed_ms)
        if ok:
            return parse_success(answer, self.platform)
        return error_from_response(status, answer, platform=self.platform, read=self._read_error,
                                   retry_after=retry_after)

    def _transport_error(self, method: str, path: str, exc: BaseException) -> ProviderError:
        nothing_sent = isinstance(exc, _NOTHING_SENT)
        self._log.warning("%s %s %s failed%s: %s", self.platform.lower(), method, path,
                          "" if nothing_sent else " (outcome unknown)", type(exc).__name__)
        if isinstance(exc, TimeoutError) and not nothing_sent:
            reason = f"no answer within the {self.deadline:g} s deadline"
        else:
            reason = str(exc) or type(exc).__name__
        return ProviderError(f"{self.platform} unreachable: {reason}", retryable=True,
                             outcome_unknown=not nothing_sent)
