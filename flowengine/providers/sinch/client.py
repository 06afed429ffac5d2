"""The Sinch REST client: the shared ``JsonClient`` (pooled session, retries through the Clock, errors
made ours) with Sinch's request signing (or Basic) and its error body ``{status, errorCode, message,
reference}``.

Each attempt is signed afresh: the signature covers ``x-timestamp``, taken from the clock, and the exact
body bytes, content type and path that are sent. Only method, path, status and latency are logged.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp

from flowengine.providers.base import JSON
from flowengine.providers.http import JsonClient
from flowengine.providers.sinch import signing
from flowengine.providers.sinch.config import SinchSettings
from flowengine.providers.wire import Request
from flowengine.runtime.clock import Clock, SystemClock

log = logging.getLogger("flowengine.providers.sinch")
# What the official SDKs send and sign; signed byte for byte, so it is one constant.
CONTENT_TYPE = "application/json; charset=UTF-8"


def platform_message(payload: Any) -> tuple[str | None, str | None]:
    """(message, errorCode) from Sinch's error body."""
    if not isinstance(payload, dict) or not ("message" in payload or "errorCode" in payload):
        return None, None
    code = payload.get("errorCode")
    message = str(payload.get("message") or f"Sinch error {code}")
    return message, None if code is None else str(code)


def timestamp(epoch: float) -> str:
    """``x-timestamp``: ISO 8601 in UTC, as the official SDKs send it."""
    return datetime.fromtimestamp(epoch, UTC).isoformat()


class SinchClient:
    """Sends ``Request``s to the Calling API. Pass ``session`` to use your own pooled session (it is then
    yours to close); otherwise ``start()`` opens one and ``close()`` closes it."""

    def __init__(
        self,
        settings: SinchSettings,
        *,
        clock: Clock | None = None,
        session: aiohttp.ClientSession | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._settings = settings
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._http = JsonClient(
            platform="Sinch", base_url=settings.base_url, retry=settings.retry, authorize=self._authorize,
            read_error=platform_message, log=log, clock=self._clock, session=session,
            total_timeout=settings.request_deadline, connect_timeout=settings.connect_timeout,
            budget=settings.command_budget, jitter=jitter,
        )

    def __repr__(self) -> str:
        return f"SinchClient(base_url={self._settings.base_url!r})"

    def _authorize(self, method: str, path: str, body: bytes) -> Mapping[str, str]:
        settings = self._settings
        if settings.request_auth == "basic":
            basic = signing.basic_header(settings.application_key, settings.application_secret)
            return {"Authorization": basic, "Content-Type": CONTENT_TYPE}
        return signing.signed_headers(
            settings.application_key, settings.application_secret, method=method, path=path.split("?")[0],
            body=body, content_type=CONTENT_TYPE, timestamp=timestamp(self._clock.now()),
        )

    async def start(self) -> None:
        await self._http.start()

    async def close(self) -> None:
        await self._http.close()

    async def send(self, request: Request, *, resend_unknown: bool = True) -> JSON:
        """The JSON answer of a 2xx (``{}`` when empty); raises ``ProviderError`` otherwise. Without
        ``resend_unknown`` a request whose outcome is unknown is not sent again (see ``JsonClient``)."""
        http = self._http
        return await http.send(request.method, request.path, request.body, resend_unknown=resend_unknown)
