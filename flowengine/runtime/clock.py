"""Time as a port, so a 60-second no-answer scenario can run in milliseconds.

Everything that waits (engine timers, the simulators' scripted parties, say/play durations) waits through
a ``Clock``. ``SystemClock`` is wall time. ``VirtualClock`` jumps straight to the next deadline once every
piece of tracked work is idle: HTTP handlers and HTTP clients wrap their work in ``clock.busy()`` and
background work is started with ``clock.spawn()``, so time never moves while a request is in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Coroutine, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

# 2026-01-01T00:00:00Z: virtual timestamps look like real ones.
VIRTUAL_EPOCH = 1_767_225_600.0


class Clock(Protocol):
    """What the engine and the simulators need from time."""

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait this long (virtual or real)."""
        ...

    def busy(self, *, waiting: bool = False) -> AbstractContextManager[None]:
        """Mark work in flight; a virtual clock does not advance while any is. ``waiting`` marks a hold
        that only waits on somebody else (an HTTP client awaiting the reply): such holds stop counting
        while the work they wait on is itself waiting on the clock."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Start background work that counts as busy until it first waits on the clock or ends."""
        ...

    def aside(self) -> AbstractContextManager[None]:
        """The current task waits on another task's work (a session lock it holds): meanwhile its own
        busy holds count as ``waiting`` ones, or a lock holder backing off on a virtual clock would
        wait forever for time that the waiter stops."""
        ...


_NOTHING: AbstractContextManager[None] = contextlib.nullcontext()  # reusable, reentrant


class SystemClock:
    """Wall-clock time; ``busy`` and ``spawn`` only track tasks so they are not garbage-collected."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def busy(self, *, waiting: bool = False) -> AbstractContextManager[None]:
        return _NOTHING  # wall-clock time needs no holding: one shared no-op, not a generator per request

    def aside(self) -> AbstractContextManager[None]:
        return _NOTHING

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


class VirtualClock:
    """Virtual time. With ``auto_advance`` it jumps to the next deadline whenever all work is idle;
    without it, only ``advance()`` moves time (a manual clock for tests)."""

    def __init__(self, start: float = VIRTUAL_EPOCH, *, auto_advance: bool = True, grace: float = 0.003):
        self._now = start
        self._auto = auto_advance
        self._grace = grace
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._busy = 0
        self._held: dict[asyncio.Task[Any] | None, int] = {}  # busy holds per task
        self._waiting = 0  # holds that only wait on somebody else
        self._sleeping_holders = 0  # tasks waiting on the clock while holding busy
        self._activity = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._driver: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    # -- the Clock port -------------------------------------------------------------------------
    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._seq), future))
        # A task waiting on the clock is not working: its own busy holds (a handler that backs off
        # before retrying) must not stop time, or the wait would never end.
        held = self._held.get(asyncio.current_task(), 0)
        self._busy -= held
        self._sleeping_holders += held > 0
        self._poke()
        try:
            await future
        finally:
            self._busy += held
            self._sleeping_holders -= held > 0
            self._poke()

    @contextmanager
    def aside(self) -> Iterator[None]:
        # The task's holds become waiting ones: they stop counting only while some holder sleeps on the
        # clock (the lock holder backing off), and keep time still while the holder is at work.
        held = self._held.get(asyncio.current_task(), 0)
        self._waiting += held
        self._poke()
        try:
            yield
        finally:
            self._waiting -= held
            self._poke()

    @contextmanager
    def busy(self, *, waiting: bool = False) -> Iterator[None]:
        task = asyncio.current_task()
        self._held[task] = self._held.get(task, 0) + 1
        self._busy += 1
        self._waiting += waiting
        self._poke()
        try:
            yield
        finally:
            self._busy -= 1
            self._waiting -= waiting
            remaining = self._held[task] - 1
            if remaining:
                self._held[task] = remaining
            else:
                del self._held[task]
            self._poke()

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        # Counted busy from creation until the task's first step has run: a spawned task that has
        # not started yet must not let time jump over it.
        self._busy += 1
        self._poke()
        started = False

        async def runner() -> T:
            nonlocal started
            started = True
            self._busy -= 1
            self._poke()
            return await coro

        task = asyncio.get_running_loop().create_task(runner())

        def done(t: asyncio.Task[T]) -> None:
            self._tasks.discard(t)
            if not started:  # cancelled before it ran
                self._busy -= 1
                coro.close()
                self._poke()

        self._tasks.add(task)
        task.add_done_callback(done)
        return task

    # -- driving time ---------------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        return self._working() == 0

    def _working(self) -> int:
        """Holds that keep time still: waiting holds do not while a holder sleeps on the clock (the
        chain they wait on is then waiting for time itself)."""
        return self._busy - self._waiting if self._sleeping_holders else self._busy

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleeper due by then."""
        self._advance_to(self._now + seconds)

    def _advance_to(self, when: float) -> None:
        self._now = max(self._now, when)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
        self._activity += 1

    def start(self) -> None:
        """Start auto-advancing (needs a running loop); idempotent."""
        if self._auto and self._driver is None:
            self._wake = asyncio.Event()
            self._driver = asyncio.get_running_loop().create_task(self._drive())

    async def stop(self) -> None:
        if self._driver is not None:
            self._driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._driver
            self._driver = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait (real time) until no tracked work is in flight; for tests and scenario runners."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self._quiet():
                return
        raise TimeoutError("virtual clock: work still in flight")

    async def run_until(self, predicate: Any, *, limit: float = 3600.0, real_timeout: float = 30.0) -> None:
        """Let virtual time run until ``predicate()`` is true or ``limit`` virtual seconds passed."""
        self.start()
        end = self._now + limit
        deadline = time.monotonic() + real_timeout
        while not predicate():
            if self._now >= end:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("virtual clock: scenario did not finish in real time")
            await asyncio.sleep(self._grace)

    def _poke(self) -> None:
        self._activity += 1
        if self._wake is not None:
            self._wake.set()

    async def _quiet(self) -> bool:
        """True when nothing was busy and nothing happened over a short real-time grace period."""
        for _ in range(5):
            await asyncio.sleep(0)
        before = self._activity
        if self._working():
            await asyncio.sleep(self._grace)
            return False
        await asyncio.sleep(self._grace)
        return self._working() == 0 and self._activity == before

    async def _drive(self) -> None:
        assert self._wake is not None
        while True:
            live = [entry for entry in self._sleepers if not entry[2].done()]
            if len(live) != len(self._sleepers):
                self._sleepers = live
                heapq.heapify(self._sleepers)
            if not self._sleepers:
                self._wake.clear()
                await self._wake.wait()
                continue
            if await self._quiet() and self._sleepers:
                self._advance_to(self._sleepers[0][0])
