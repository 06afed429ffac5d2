"""Virtual time: it jumps to the next deadline only when no tracked work is in flight."""

from __future__ import annotations

import asyncio

from flowengine.runtime.clock import VIRTUAL_EPOCH, VirtualClock


async def test_a_minute_of_waiting_passes_at_once_when_idle() -> None:
    clock = VirtualClock()
    clock.start()
    try:
        await asyncio.wait_for(clock.sleep(60), timeout=2)
        assert clock.now() == VIRTUAL_EPOCH + 60
    finally:
        await clock.stop()


async def test_time_stands_still_while_work_is_in_flight() -> None:
    clock = VirtualClock()
    clock.start()
    release = asyncio.Event()
    seen: list[float] = []

    async def request() -> None:
        with clock.busy():  # an HTTP exchange under way
            await release.wait()
            seen.append(clock.now())

    async def sleeper() -> None:
        await clock.sleep(5)
        seen.append(clock.now())

    try:
        work = clock.spawn(request())
        waiting = clock.spawn(sleeper())
        await asyncio.sleep(0.05)  # real time passes; virtual time must not
        assert clock.now() == VIRTUAL_EPOCH and not seen
        release.set()
        await asyncio.wait_for(asyncio.gather(work, waiting), timeout=2)
        assert seen == [VIRTUAL_EPOCH, VIRTUAL_EPOCH + 5]
    finally:
        await clock.stop()


async def test_work_that_backs_off_on_the_clock_does_not_stop_time() -> None:
    # A webhook handler holds the clock busy and its HTTP client waits before retrying: that wait is on
    # the clock, so it must end (it once deadlocked: busy kept time still, and time was awaited).
    clock = VirtualClock()
    clock.start()

    async def handler() -> float:
        with clock.busy(), clock.busy():
            await clock.sleep(0.25)
            return clock.now()

    try:
        assert await asyncio.wait_for(handler(), timeout=2) == VIRTUAL_EPOCH + 0.25
        assert clock.idle
    finally:
        await clock.stop()


async def test_manual_clock_moves_only_when_told() -> None:
    clock = VirtualClock(auto_advance=False)
    woke = asyncio.ensure_future(clock.sleep(10))
    await asyncio.sleep(0.01)
    assert not woke.done()
    clock.advance(9.5)
    await asyncio.sleep(0)
    assert not woke.done()
    clock.advance(0.5)
    await asyncio.wait_for(woke, timeout=1)
    assert clock.now() == VIRTUAL_EPOCH + 10


async def test_a_task_waiting_aside_for_a_lock_lets_the_sleeping_holder_wake() -> None:
    """A webhook handler (busy) waits for a session lock whose holder backs off on the clock: without
    ``aside`` the handler's hold would stop time and neither could ever go on."""
    clock = VirtualClock()
    clock.start()
    lock = asyncio.Lock()
    order: list[str] = []

    async def holder() -> None:
        async with lock:
            with clock.busy():
                await clock.sleep(5)  # a retry's backoff while holding the session
                order.append(f"holder done at {clock.now() - VIRTUAL_EPOCH:g}")

    async def waiter() -> None:
        with clock.busy():
            with clock.aside():
                await lock.acquire()
            order.append(f"waiter in at {clock.now() - VIRTUAL_EPOCH:g}")
            lock.release()

    try:
        first = asyncio.ensure_future(holder())
        await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.gather(first, waiter()), timeout=2)
    finally:
        await clock.stop()
    assert order == ["holder done at 5", "waiter in at 5"]


async def test_waiting_aside_still_keeps_time_while_the_holder_works() -> None:
    clock = VirtualClock()
    clock.start()
    lock = asyncio.Lock()
    release = asyncio.Event()
    timer_fired: list[float] = []

    async def timer() -> None:
        await clock.sleep(10)
        timer_fired.append(clock.now())

    async def holder() -> None:
        async with lock:
            with clock.busy():  # real work in flight (an HTTP exchange), not a sleep
                await release.wait()

    async def waiter() -> None:
        with clock.busy(), clock.aside():
            await lock.acquire()
        lock.release()

    try:
        tasks = [asyncio.ensure_future(c) for c in (timer(), holder(), waiter())]
        await asyncio.sleep(0.05)  # long enough for an idle clock to have jumped
        assert timer_fired == []  # the holder works and the waiter waits on it: time stands still
        release.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=2)
    finally:
        await clock.stop()
    assert timer_fired == [VIRTUAL_EPOCH + 10]
