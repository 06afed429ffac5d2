"""The Infobip REST client: the shared ``JsonClient`` (pooled session, retries through the Clock, errors
made ours) with Infobip's API-key header and its two error body shapes.

Only method, path, status and latency are logged: never headers, bodies or the API key.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from flowengine.providers.base import JSON
from flowengine.providers.http import JsonClient
from flowengine.providers.infobip.config import InfobipSettings
from flowengine.providers.wire import Request
from flowengine.runtime.clock import Clock

log = logging.getLogger("flowengine.providers.infobip")


def _platform_message(payload: Any) -> tuple[str | None, str | None]:
    """(text, code) from Infobip's ``requestError.serviceException`` or the newer ``ApiError`` body."""
    if not isinstance(payload, dict):
        return None, None
    exception = (payload.get("requestError") or {}).get("serviceException")
    if isinstance(exception, dict):
        text = str(exception.get("text") or "") or None
        details = exception.get("validationErrors")
        if isinstance(details, dict) and details:
            listed = "; ".join(
                f"{name}: {', '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
                for name, msgs in details.items()
            )
            text = f"{text} ({listed})" if text else listed
        return text, exception.get("messageId")
    if "description" in payload or "errorCode" in payload:
        text = str(payload.get("description") or payload.get("errorCode"))
        violations = payload.get("violations")
        if isinstance(violations, list) and violations:
            listed = "; ".join(f"{v.get('property')}: {v.get('violation')}" for v in violations
                               if isinstance(v, dict))
            text = f"{text} ({listed})"
        return text, payload.get("errorCode")
    return None, None


class InfobipClient:
    """Sends ``Request``s to the Calls API. Pass ``session`` to use your own pooled session (it is then
    yours to close); otherwise ``start()`` opens one and ``close()`` closes it."""

    def __init__(
        self,
        settings: InfobipSettings,
        *,
        clock: Clock | None = None,
        session: aiohttp.ClientSession | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._settings = settings
        headers = {
            "Authorization": f"App {settings.api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

        def authorize(_method: str, _path: str, _body: bytes) -> Mapping[str, str]:
            return headers

        self._http = JsonClient(
            platform="Infobip", base_url=settings.base_url, retry=settings.retry, authorize=authorize,
            read_error=_platform_message, log=log, clock=clock, session=session,
            total_timeout=settings.request_deadline, connect_timeout=settings.connect_timeout,
            budget=settings.command_budget, jitter=jitter,
        )

    def __repr__(self) -> str:
        return f"InfobipClient(base_url={self._settings.base_url!r})"

    async def start(self) -> None:
        await self._http.start()

    async def close(self) -> None:
        await self._http.close()

    async def send(self, request: Request, *, resend_unknown: bool = True) -> JSON:
        """The JSON answer of a 2xx (``{}`` when empty); raises ``ProviderError`` otherwise. Without
        ``resend_unknown`` a request whose outcome is unknown is not sent again (see ``JsonClient``)."""
        http = self._http
        return await http.send(request.method, request.path, request.body, resend_unknown=resend_unknown)
