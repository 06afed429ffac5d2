"""``ScaledClock``: wall-clock time running ``speed`` times faster, for a standalone simulator
(``flowengine simulator --speed N``) so real-process tests of minute-long calls take seconds.

It lives with the simulator, not in ``flowengine.runtime``: production code runs on the wall clock and
never knows time is scaled. Only what waits through this clock is scaled: the simulated parties, say
and play durations, ringing, the webhooks' delay, redelivery backoff. The app's own answers (and the
webhook ``timeout``, which bounds them) stay in real time.
"""

from __future__ import annotations

import asyncio
import time

from flowengine.runtime.clock import SystemClock


class ScaledClock(SystemClock):
    """Starts at the real time and runs ``speed`` times faster: ``sleep(60)`` takes 60/speed real
    seconds and ``now()`` has moved 60 seconds when it returns, so the timestamps a simulator reports
    agree with the waits it played out."""

    def __init__(self, speed: float, *, start: float | None = None) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        super().__init__()
        self.speed = speed
        self._start = time.time() if start is None else start
        # Measured on the monotonic clock asyncio's timers use, so wake-ups and ``now()`` agree.
        self._origin = time.monotonic()

    def now(self) -> float:
        return self._start + (time.monotonic() - self._origin) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)
