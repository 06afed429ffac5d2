"""Durable timers: the store's timer index says what is due; this loop fires it.

It sleeps on the service's clock until the earliest due timer (or until poked because a session armed
a new one), so virtual time jumps straight to it. With several instances sharing a store it also polls,
since another instance may arm a timer this one was not told of; the session lock makes the firing
exclusive and a timer already fired is stale and ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from flowengine.errors import StoreError
from flowengine.runtime.clock import Clock
from flowengine.stores.base import SessionStore

log = logging.getLogger("flowengine.timers")


class TimerLoop:
    def __init__(
        self,
        store: SessionStore,
        fire: Callable[[str], Awaitable[object]],
        clock: Clock,
        *,
        poll: float | None = 1.0,
        fired: Callable[[list[str]], object] | None = None,
    ) -> None:
        self.store = store
        self.fire = fire
        self.clock = clock
        self.poll = poll
        self.fired = fired  # told the timer ids of each session fired (the metrics)
        self._wake = asyncio.Event()

    def poke(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            with self.clock.busy():
                await self._fire_due()
                wait = await self._next_wait()
            # redis-py (8.x) can swallow a cancellation that lands mid-command; without this check the
            # loop would sleep on and the app's shutdown, which awaits this task, would hang for good.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
            await self._sleep(wait)

    async def _fire_due(self) -> None:
        due = await self.store.due_timers(self.clock.now(), limit=500)
        by_session: dict[str, list[str]] = {}
        for timer in due:
            by_session.setdefault(timer.session_id, []).append(timer.timer_id)
        for session_id, timer_ids in by_session.items():
            try:
                await self.fire(session_id)
                if self.fired is not None:
                    self.fired(timer_ids)
            except StoreError as exc:  # a lock still leased by a dead instance, a store blip: next round
                log.warning("timer for session %s waits: %s", session_id, exc)
            except Exception:  # one broken session must not stop every other session's timers
                log.exception("timer for session %s failed", session_id)

    async def _next_wait(self) -> float | None:
        next_due = await self.store.next_due()
        wait = None if next_due is None else max(0.0, next_due - self.clock.now())
        if self.poll is not None:
            wait = self.poll if wait is None else min(wait, self.poll)
        return wait

    async def _sleep(self, wait: float | None) -> None:
        self._wake.clear()
        woken = asyncio.ensure_future(self._wake.wait())
        waiters: set[asyncio.Future[Any]] = {woken}
        if wait is not None:
            waiters.add(asyncio.ensure_future(self.clock.sleep(wait)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
