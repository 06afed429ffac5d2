"""Test helpers shipped with the package: a recording provider, a manual clock, a flow driver, and a
Redis key sweep for tests that run a Redis store under a prefix of their own.

    driver = await drive(flow, [
        Event("call.received", call_id="c-1"),
        Event("call.answered", call_id="c-1"),
        Advance(15),                      # fires the timers due by then
    ])
    assert driver.session.state == "giving_up"
    assert driver.provider.actions == ["answer", "conference_create", "conference_join", "hangup"]
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flowengine.errors import ProviderError, ProviderUnsupported
from flowengine.flow.model import Flow
from flowengine.flow.vocabulary import ACTION_SPECS
from flowengine.runtime.clock import VIRTUAL_EPOCH, VirtualClock
from flowengine.runtime.commands import Plan
from flowengine.runtime.engine import Engine
from flowengine.runtime.events import Event
from flowengine.runtime.executor import Executor, Observe, RetryPolicy
from flowengine.runtime.ports import ActionResult, HttpClient, ProviderCommand
from flowengine.runtime.session import Session

# Every neutral action a provider can be asked for (pure ones are the engine's; http has its own port).
PROVIDER_ACTIONS = frozenset(spec.name for spec in ACTION_SPECS if not spec.pure and spec.name != "http")
# What an action creates, by the prefix of the ids handed out (``call-1``, ``conf-1``).
_CREATES = {"dial": "call", "conference_dial": "call", "conference_create": "conf"}


@dataclass(slots=True)
class _Failure:
    remaining: int | None  # None: for ever
    retryable: bool
    unsupported: bool
    message: str
    outcome_unknown: bool = False
    status: int | None = None


class RecordingProvider:
    """A Provider that records every attempt as ``(action, args)`` and hands out ids ``call-1``,
    ``conf-1``, ... in order. ``fail()`` makes an action fail a number of times, or always. It has no
    platform behind it, so it retries and reconciles nothing: the executor's retry policy applies."""

    def __init__(self, *, name: str = "recording", capabilities: Iterable[str] | None = None,
                 yield_control: bool = False) -> None:
        self.name = name
        self.capabilities = frozenset(capabilities) if capabilities is not None else PROVIDER_ACTIONS
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.commands: list[ProviderCommand] = []
        self.yield_control = yield_control  # await once per command, so concurrent sessions interleave
        self._failures: dict[str, _Failure] = {}
        self._counters = {"call": 0, "conf": 0}

    @property
    def actions(self) -> list[str]:
        return [action for action, _ in self.calls]

    def fail(self, action: str, *, times: int | None = 1, retryable: bool = False, unsupported: bool = False,
             message: str | None = None, outcome_unknown: bool = False, status: int | None = None) -> None:
        """The next ``times`` attempts of ``action`` (every one if None) raise ``ProviderError``
        (``outcome_unknown``: as a platform whose answer was lost would; ``status``: the HTTP status,
        else 503 when ``retryable``, 400 when not)."""
        text = message or f"{action} failed (scripted)"
        self._failures[action] = _Failure(times, retryable, unsupported, text, outcome_unknown, status)

    async def _do(self, action: str, kwargs: dict[str, Any], new: str | None = None,
                  data: dict[str, Any] | None = None) -> ActionResult:
        self.calls.append((action, kwargs))
        if self.yield_control:
            await asyncio.sleep(0)
        self._maybe_fail(action)
        if new is None:
            return ActionResult(data=data or {})
        self._counters[new] += 1
        return ActionResult(id=f"{new}-{self._counters[new]}")

    def _maybe_fail(self, action: str) -> None:
        failure = self._failures.get(action)
        if failure is None or failure.remaining == 0:
            return
        if failure.remaining is not None:
            failure.remaining -= 1
        if failure.unsupported:
            raise ProviderUnsupported(self.name, action)
        status = failure.status or (503 if failure.retryable else 400)
        raise ProviderError(failure.message, retryable=failure.retryable, status=status,
                            outcome_unknown=failure.outcome_unknown)

    # -- the Provider port ----------------------------------------------------------------------------
    async def execute(self, command: ProviderCommand) -> ActionResult:
        """Records ``(action, args)`` (and the whole command in ``commands``); what the action creates
        gets the next id of its kind."""
        self.commands.append(command)
        action = command.action
        if action not in PROVIDER_ACTIONS:
            raise ProviderUnsupported(self.name, action)
        data: dict[str, Any] | None = {"participants": []} if action == "conference_info" else None
        return await self._do(action, dict(command.args), _CREATES.get(action), data)


class ManualClock(VirtualClock):
    """Virtual time that moves only when told: ``advance()``, or (with ``instant_sleep``) a ``sleep`` such as
    a retry backoff, which moves time forward by its length and returns at once. ``slept`` lists them."""

    def __init__(self, start: float = VIRTUAL_EPOCH, *, instant_sleep: bool = True) -> None:
        super().__init__(start, auto_advance=False)
        self.instant_sleep = instant_sleep
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if not self.instant_sleep:
            await super().sleep(seconds)
            return
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


_event_ids = itertools.count(1)


def event(name: str, **fields: Any) -> Event:
    """A neutral event with a fresh ``event_id``, so two alike deliveries in a script are not duplicates."""
    fields.setdefault("event_id", f"evt-{next(_event_ids)}")
    return Event(name, **fields)


@dataclass(frozen=True, slots=True)
class Advance:
    """A script step: move the clock forward, then fire every timer due by then."""

    seconds: float


class Driver:
    """Drives one session of ``flow`` through the engine and executor, as the service would."""

    def __init__(
        self, flow: Flow, *, session_id: str = "session-1", provider: RecordingProvider | None = None,
        clock: ManualClock | None = None, retry: RetryPolicy | None = None, http: HttpClient | None = None,
        observe: Observe | None = None,
    ) -> None:
        self.clock = clock if clock is not None else ManualClock()
        self.provider = provider if provider is not None else RecordingProvider()
        self.engine = Engine(flow, self.clock)
        self.executor = Executor(self.engine, retry=retry, http=http, observe=observe)
        self.session: Session = self.engine.new_session(session_id)
        self.plans: list[Plan] = []

    async def send(self, event: Event) -> Session:
        self.session, plan = self.engine.handle(self.session, event)
        self.plans.append(plan)
        self.session = await self.executor.run(self.session, plan, self.provider)
        return self.session

    async def advance(self, seconds: float) -> Session:
        self.clock.advance(seconds)
        for event in self.engine.due_timers(self.session, self.clock.now()):
            await self.send(event)
        return self.session

    async def play(self, script: Iterable[Event | Advance]) -> Session:
        for item in script:
            if isinstance(item, Advance):
                await self.advance(item.seconds)
            else:
                await self.send(item)
        return self.session


async def drive(flow: Flow, script: Iterable[Event | Advance], **options: Any) -> Driver:
    """Run ``script`` against a new session of ``flow``; the driver holds the session and provider."""
    driver = Driver(flow, **options)
    await driver.play(script)
    return driver


async def wipe_redis(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` in the Redis database at ``url`` (a test's own keys)."""
    from redis.asyncio import Redis  # only tests that use Redis pay for the import

    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
