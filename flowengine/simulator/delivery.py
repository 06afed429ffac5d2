"""Ordered webhook delivery from a simulator to the application under test.

Events are POSTed one at a time, in the order the platform produced them, each ``delay`` seconds (clock
time) after it happened. The delay matters: the platform answers the API request first and the events
follow, so an app always sees a ``201`` with the new call id before that call's first event. With a
``VirtualClock`` the delay cannot pass while the app is still busy with the response, which keeps
scenarios deterministic.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any, TypedDict

import aiohttp
from yarl import URL

from flowengine.runtime.clock import Clock

log = logging.getLogger(__name__)

# (url path, raw body) -> extra headers (authentication/signatures) for one POST.
HeaderSigner = Callable[[str, bytes], Mapping[str, str]]


class DeliveredEvent(TypedDict):
    """One webhook/callback as delivered: what was sent, and what the app answered."""

    url: str
    body: dict[str, Any]
    status: int | None  # None: the app could not be reached
    reply: Any  # the parsed JSON reply (SVAML for Sinch ICE/ACE/PIE), raw text, or None
    at: float  # clock time of the delivery
    error: str | None


class WebhookSender:
    """Serial, ordered delivery of event bodies to one URL."""

    def __init__(
        self,
        clock: Clock,
        url: str,
        *,
        signer: HeaderSigner | None = None,
        delay: float = 0.05,
        timeout: float = 10.0,
    ) -> None:
        self.clock = clock
        self.url = url
        self.delay = delay
        self.events: list[DeliveredEvent] = []
        self._signer = signer
        self._timeout = timeout
        self._queue: deque[tuple[dict[str, Any], float, asyncio.Future[DeliveredEvent]]] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def send(self, body: dict[str, Any]) -> asyncio.Future[DeliveredEvent]:
        """Queue an event; the future resolves once the app has answered it. Never await it from an API
        handler: the app may be waiting for that handler while it holds an earlier event."""
        future: asyncio.Future[DeliveredEvent] = asyncio.get_running_loop().create_future()
        self._queue.append((body, self.clock.now() + self.delay, future))
        if self._worker is None or self._worker.done():
            self._worker = self.clock.spawn(self._drain())
        return future

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def _drain(self) -> None:
        while self._queue:
            body, due, future = self._queue[0]
            wait = due - self.clock.now()
            if wait > 0:
                await self.clock.sleep(wait)
            if not self._queue or self._queue[0][2] is not future:
                continue  # cleared while we waited
            self._queue.popleft()
            with self.clock.busy(waiting=True):  # waits on the application's reply
                delivered = await self._post(body)
                self.events.append(delivered)
                if not future.done():
                    future.set_result(delivered)
                # Let whoever awaited the reply take its next step before the clock may move on.
                await asyncio.sleep(0)

    async def _post(self, body: dict[str, Any]) -> DeliveredEvent:
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if self._signer is not None:
            headers.update(self._signer(URL(self.url).raw_path, raw))
        at = self.clock.now()
        try:
            session = self._client()
            async with session.post(self.url, data=raw, headers=headers) as response:
                text = await response.text()
                return DeliveredEvent(
                    url=self.url, body=body, status=response.status, reply=_parse(text), at=at, error=None
                )
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("webhook %s unreachable: %s", self.url, exc)
            return DeliveredEvent(url=self.url, body=body, status=None, reply=None, at=at, error=str(exc))

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        return self._session

    def clear(self) -> None:
        """Forget queued and delivered events (simulator reset)."""
        for _, _, future in self._queue:
            future.cancel()
        self._queue.clear()
        self.events.clear()

    async def close(self) -> None:
        self.clear()
        if self._worker is not None:
            self._worker.cancel()
            with suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if self._session is not None:
            await self._session.close()
            self._session = None


def _parse(text: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
