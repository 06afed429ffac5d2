"""Webhook delivery from a simulator to the application under test, as a platform does it.

Each webhook goes out ``delay`` seconds (clock time) after it happened: the platform answers the API
request first and the events follow, so an app always sees a ``201`` with the new call id before that
call's first event. With a ``VirtualClock`` the delay cannot pass while the app is still busy with the
response, which keeps scenarios deterministic.

Webhooks keep their order within a lane (a call, its conference and the calls dialled into it; see
``lanes.py``) and lanes are delivered concurrently, at most ``max_in_flight`` POSTs at a time. A
``DeliveryPolicy`` adds redelivery with backoff and the webhook faults (duplicates, late webhooks that
later ones overtake), all seeded so a run can be repeated.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, TypedDict

import aiohttp
from yarl import URL

from flowengine.runtime.clock import Clock
from flowengine.simulator.lanes import Lane, Lanes

log = logging.getLogger(__name__)

# (url path, raw body) -> extra headers (authentication/signatures) for one POST.
HeaderSigner = Callable[[str, bytes], Mapping[str, str]]
# The lane of webhooks sent without one: a single lane is the whole platform in order.
PLATFORM_LANE = "platform"
REDELIVERY_MODES = ("off", "retry")


class DeliveredEvent(TypedDict):
    """One POST of a webhook/callback: what was sent, and what the app answered."""

    url: str
    body: dict[str, Any]
    status: int | None  # None: the app could not be reached, or did not answer in time
    reply: Any  # the parsed JSON reply (SVAML for Sinch ICE/ACE/PIE), raw text, or None
    at: float  # clock time of the delivery
    error: str | None
    attempt: int  # 1 for the first POST of a webhook, 2.. for its redeliveries


@dataclass(frozen=True)
class DeliveryPolicy:
    """How webhooks reach the app: redelivery, bounds, and injected webhook faults.

    ``redelivery`` "off" posts each webhook once; "retry" posts a webhook that failed (non-2xx answer,
    no answer within ``timeout`` seconds, app unreachable) again, ``attempts`` POSTs in all, waiting
    ``initial_delay * factor**n`` (at most ``max_delay``) clock seconds before redelivery n+1. A
    ``duplicate_rate`` share of webhooks is delivered twice in a row; a ``reorder_rate`` share is held
    back ``reorder_delay`` extra seconds outside its lane, so later webhooks of the lane overtake it.
    ``seed`` fixes which ones."""

    redelivery: str = "off"
    attempts: int = 5
    initial_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0
    timeout: float = 10.0
    max_in_flight: int = 64
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    reorder_delay: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem is not None:
            raise ValueError(f"delivery: {problem}")

    def _problem(self) -> str | None:
        for f in fields(self):
            value = getattr(self, f.name)
            wanted = str if f.type == "str" else int if f.type == "int" else float
            ok = isinstance(value, str) if wanted is str else _number(value, integer=wanted is int)
            if not ok:
                return f"{f.name} must be {_KIND[wanted]}, got {value!r}"
        checks = (
            (self.redelivery in REDELIVERY_MODES, "redelivery must be off or retry"),
            (self.attempts >= 1, "attempts must be at least 1"),
            (min(self.initial_delay, self.max_delay, self.reorder_delay) >= 0, "delays must be >= 0"),
            (self.factor >= 1, "factor must be at least 1"),
            (self.timeout > 0, "timeout must be > 0"),
            (self.max_in_flight >= 1, "max_in_flight must be at least 1"),
            (0 <= self.duplicate_rate <= 1, "duplicate_rate must be between 0 and 1"),
            (0 <= self.reorder_rate <= 1, "reorder_rate must be between 0 and 1"),
        )
        return next((why for ok, why in checks if not ok), None)

    @property
    def tries(self) -> int:
        """POSTs a webhook may get in all."""
        return self.attempts if self.redelivery == "retry" else 1

    def backoff(self, redelivery: int) -> float:
        """Clock seconds before redelivery ``redelivery`` (0-based). Not ``providers.retry.backoff_delay``:
        that one has a fixed factor of 2 and jitter, and a platform's schedule is neither."""
        return min(self.max_delay, self.initial_delay * self.factor**redelivery)

    @classmethod
    def from_dict(cls, data: Any) -> DeliveryPolicy:
        """A policy from JSON-like data; keys left out take their defaults. ValueError says why not."""
        allowed = [f.name for f in fields(cls)]
        if not isinstance(data, Mapping):
            raise ValueError(f"delivery: expected a JSON object with keys from {allowed}")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ValueError(f"delivery: unknown key(s) {unknown}; expected keys from {allowed}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_KIND = {str: "a string", int: "an integer", float: "a number"}


def _number(value: Any, *, integer: bool) -> bool:
    if isinstance(value, bool):  # JSON true is not 1
        return False
    return isinstance(value, int) if integer else isinstance(value, int | float)


@dataclass(eq=False)
class _Webhook:
    seq: int  # platform order
    body: dict[str, Any]
    due: float  # clock time it may go out
    future: asyncio.Future[DeliveredEvent]
    copies: int  # 2 when the duplicate fault hit it
    redeliver: bool  # False for callbacks whose answer cannot wait (Sinch ICE/ACE/PIE)


class WebhookSender:
    """Per-lane ordered, cross-lane concurrent delivery of event bodies to one URL."""

    def __init__(
        self,
        clock: Clock,
        url: str,
        *,
        signer: HeaderSigner | None = None,
        delay: float = 0.05,
        policy: DeliveryPolicy | None = None,
    ) -> None:
        self.clock = clock
        self.url = url
        self.delay = delay
        self.events: list[DeliveredEvent] = []
        self._signer = signer
        self._lanes: Lanes[_Webhook] = Lanes()
        self._late: set[asyncio.Task[None]] = set()
        self._seq = 0
        self._session: aiohttp.ClientSession | None = None
        self.policy = policy or DeliveryPolicy()

    @property
    def policy(self) -> DeliveryPolicy:
        return self._policy

    @policy.setter
    def policy(self, policy: DeliveryPolicy) -> None:
        """Applies to webhooks sent from now on (and to the redeliveries of those in flight)."""
        self._policy = policy
        self._rng = random.Random(policy.seed)
        # Bounds POSTs across all lanes, so a load test cannot open unbounded connections.
        self._slots = asyncio.Semaphore(policy.max_in_flight)

    def send(
        self, body: dict[str, Any], *, lane: str = PLATFORM_LANE, redeliver: bool = True
    ) -> asyncio.Future[DeliveredEvent]:
        """Queue an event in ``lane``; the future resolves with its (last) delivery. Never await it
        from an API handler: the app may be waiting for that handler while it holds an earlier event."""
        future: asyncio.Future[DeliveredEvent] = asyncio.get_running_loop().create_future()
        self._seq += 1
        # Both draws always happen, so which webhooks a seed hits does not depend on the rates.
        duplicate = self._rng.random() < self._policy.duplicate_rate
        late = self._rng.random() < self._policy.reorder_rate
        due = self.clock.now() + self.delay + (self._policy.reorder_delay if late else 0.0)
        webhook = _Webhook(self._seq, body, due, future, 2 if duplicate else 1, redeliver)
        if late:
            # Out of its lane: later webhooks of the lane go by while it waits.
            task = self.clock.spawn(self._deliver_late(webhook))
            self._late.add(task)
            task.add_done_callback(self._late.discard)
            return future
        queue = self._lanes.lane(lane)
        queue.queue.append(webhook)
        queue.drained.clear()
        if queue.worker is None or queue.worker.done():
            queue.worker = self.clock.spawn(self._drain(queue))
        return future

    def link(self, key: str, into: str) -> None:
        """``key``'s lane and ``into``'s become one (a call enrolled in a conference)."""
        self._lanes.merge(key, into, self._seq)

    def lane(self, key: str) -> str:
        """The name of the lane ``key`` (a lane given to ``send``, a call or conference id) is in."""
        return self._lanes.root(key)

    @property
    def pending(self) -> int:
        return sum(len(lane.queue) for lane in self._lanes) + len(self._late)

    async def _drain(self, lane: Lane[_Webhook]) -> None:
        try:
            while lane.queue:
                webhook = lane.queue[0]
                await lane.wait_barriers(webhook.seq)
                await self._until(webhook.due)
                # The head stays queued (and the lane waits) until it is delivered or given up,
                # redeliveries included: that is what keeps the lane's order through failures.
                await self._deliver(webhook)
                lane.queue.popleft()
        finally:
            lane.drained.set()
            self._lanes.retire(lane)

    async def _deliver_late(self, webhook: _Webhook) -> None:
        try:
            await self._until(webhook.due)
            await self._deliver(webhook)
        finally:
            webhook.future.cancel()  # a no-op once delivered; on reset, nobody waits forever

    async def _until(self, due: float) -> None:
        wait = due - self.clock.now()
        if wait > 0:
            await self.clock.sleep(wait)

    async def _deliver(self, webhook: _Webhook) -> None:
        for _ in range(webhook.copies):
            await self._attempts(webhook)

    async def _attempts(self, webhook: _Webhook) -> None:
        """POST until the app takes it or the policy gives up, backing off between tries."""
        tries = self._policy.tries if webhook.redeliver else 1
        for attempt in range(1, tries + 1):
            with self.clock.busy(waiting=True):  # waits on the application's reply
                delivered = await self._post(webhook.body, attempt)
                self.events.append(delivered)
                done = _accepted(delivered) or attempt >= tries
                if done and not webhook.future.done():
                    webhook.future.set_result(delivered)
                # Let whoever awaited the reply take its next step before the clock may move on.
                await asyncio.sleep(0)
            if done:
                return
            await self.clock.sleep(self._policy.backoff(attempt - 1))

    def headers_for(self, raw: bytes) -> dict[str, str]:
        """The headers a webhook with body ``raw`` goes out with: its content type and credentials."""
        headers = {"Content-Type": "application/json"}
        if self._signer is not None:
            headers.update(self._signer(URL(self.url).raw_path, raw))
        return headers

    async def _post(self, body: dict[str, Any], attempt: int) -> DeliveredEvent:
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = self.headers_for(raw)
        timeout = self._policy.timeout
        async with self._slots:
            at = self.clock.now()
            status, reply, error = None, None, None
            try:
                async with self._client().post(
                    self.url, data=raw, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
                ) as response:
                    status, reply = response.status, _parse(await response.text())
            except TimeoutError:
                error = f"no answer within {timeout:g} s"
            except (aiohttp.ClientError, ValueError) as exc:
                error = str(exc) or type(exc).__name__
        if error is not None:
            log.warning("webhook %s unreachable: %s", self.url, error)
        return DeliveredEvent(
            url=self.url, body=body, status=status, reply=reply, at=at, error=error, attempt=attempt
        )

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No connector limit of its own: the policy's semaphore is the bound.
            connector = aiohttp.TCPConnector(limit=0)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def _tasks(self) -> list[asyncio.Task[None]]:
        workers = [lane.worker for lane in self._lanes if lane.worker is not None]
        return [*workers, *self._late]

    def clear(self) -> None:
        """Forget queued and delivered events and lane membership (simulator reset)."""
        for lane in self._lanes:
            for webhook in lane.queue:
                webhook.future.cancel()
        for task in self._tasks():
            task.cancel()
        self._lanes.clear()
        self._late.clear()
        self.events.clear()

    async def close(self) -> None:
        tasks = self._tasks()
        self.clear()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None


def _accepted(delivered: DeliveredEvent) -> bool:
    status = delivered["status"]
    return status is not None and 200 <= status < 300


def _parse(text: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
