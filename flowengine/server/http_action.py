"""The ``http`` action's client: JSON to hosts on the service's ``http_allow`` list, nothing else.

A flow is configuration, not code, so it must not reach arbitrary hosts: a host not on the list fails
the action for good (``action.failed``) before any connection is made.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

from flowengine.errors import ProviderError
from flowengine.runtime.clock import Clock

MAX_TEXT = 2000  # characters of a non-JSON answer kept for the flow


class AllowListHttp:
    def __init__(self, allow: tuple[str, ...], clock: Clock, *, timeout: float = 10.0) -> None:
        self.allow = tuple(pattern.lower() for pattern in allow)
        self.clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def allowed(self, url: str) -> bool:
        """``api.example.com`` allows that host; ``*.example.com`` its subdomains; ports are ignored."""
        parsed = URL(url)
        host = (parsed.host or "").lower()
        return parsed.scheme in ("http", "https") and any(fnmatch.fnmatchcase(host, p) for p in self.allow)

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, url: str, body: Mapping[str, Any] | None) -> Any:
        if not self.allowed(url):
            raise ProviderError(f'http: host of "{url}" is not on the service\'s http_allow list')
        await self.start()
        assert self._session is not None
        try:
            with self.clock.busy(waiting=True):
                async with self._session.request(method, url, json=body) as response:
                    return await _answer(method, url, response)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderError(
                f"http: {method} {url} failed: {exc or type(exc).__name__}", retryable=True
            ) from exc


async def _answer(method: str, url: str, response: aiohttp.ClientResponse) -> Any:
    if response.status >= 400:
        raise ProviderError(
            f"http: {method} {url} answered {response.status}",
            status=response.status,
            retryable=response.status >= 500 or response.status == 429,
        )
    if response.content_type == "application/json":
        return await response.json()
    return {"status": response.status, "text": (await response.text())[:MAX_TEXT]}
