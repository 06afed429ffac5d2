"""Call-leg bookkeeping both simulators share: the leg's background work, its DTMF, dialling, the scripted
party's after-answer behaviour, and how long speech and files take.

Everything waits on the ``Clock`` so a ``VirtualClock`` can skip the waiting.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from flowengine.runtime.clock import Clock
from flowengine.simulator.parties import DialOutcome, DialPlan, PartyScript

# Text-to-speech pace: ~0.07 s per character (about 150 words a minute).
SECONDS_PER_CHAR = 0.07
# Audio files have no known length in a simulation; each play of a file lasts this long.
FILE_SECONDS = 5.0

_TAGS = re.compile(r"<[^>]*>")


def speech_seconds(text: str, loops: int = 1, rate: float = 1.0) -> float:
    """How long saying ``text`` takes (SSML tags are not spoken)."""
    spoken = _TAGS.sub("", text)
    return len(spoken) * SECONDS_PER_CHAR * max(1, loops) / (rate if rate > 0 else 1.0)


async def wait_signal(clock: Clock, event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` at most ``timeout`` clock seconds; True if it was set."""
    if event.is_set():
        return True
    if timeout <= 0:
        return False
    waiter = asyncio.ensure_future(event.wait())
    sleeper = asyncio.ensure_future(clock.sleep(timeout))
    try:
        done, _ = await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, sleeper):
            task.cancel()
        await asyncio.gather(waiter, sleeper, return_exceptions=True)
    return waiter in done


@dataclass(frozen=True)
class Collected:
    digits: str
    timed_out: bool


class DtmfBuffer:
    """Digits the remote party has keyed. Digits pressed while nobody collects are kept (type-ahead) so a
    scenario's "presses 1 after 3 s" does not depend on the exact moment the app starts capturing."""

    def __init__(self) -> None:
        self.pending = ""
        self._signal = asyncio.Event()

    def press(self, digits: str) -> None:
        self.pending += digits
        self._signal.set()

    def clear(self) -> None:
        self.pending = ""
        self._signal.clear()

    async def collect(
        self,
        clock: Clock,
        *,
        max_digits: int,
        timeout: float,
        terminator: str | None = None,
        digit_timeout: float | None = None,
    ) -> Collected:
        """Collect up to ``max_digits`` (or up to ``terminator``); ``timeout`` bounds the whole capture,
        ``digit_timeout`` the gap after each digit."""
        digits = ""
        deadline = clock.now() + timeout
        while True:
            while self.pending:
                char, self.pending = self.pending[0], self.pending[1:]
                if terminator and char == terminator:
                    return Collected(digits, False)
                digits += char
                if len(digits) >= max_digits:
                    return Collected(digits, False)
            self._signal.clear()
            wait = deadline - clock.now()
            if digits and digit_timeout is not None:
                wait = min(wait, digit_timeout)
            if not await wait_signal(clock, self._signal, wait):
                return Collected(digits, True)


@dataclass(eq=False, kw_only=True)
class Leg:
    """One call leg: its id, the remote party and its script, its DTMF and its background work."""

    id: str
    remote: str
    script: PartyScript
    dtmf: DtmfBuffer = field(default_factory=DtmfBuffer, repr=False)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set, repr=False)

    @property
    def ended(self) -> bool:
        """Whether the call is over, in the platform's own terms (each platform's call says)."""
        raise NotImplementedError

    def start(self, clock: Clock, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run work that belongs to this leg (cancelled when the leg ends)."""
        task = clock.spawn(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def stop_tasks(self) -> None:
        """Cancel the leg's work, except the task doing the stopping (it finishes on its own)."""
        current = asyncio.current_task()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()


async def run_dial(clock: Clock, plan: DialPlan, on_ringing: Callable[[], None]) -> DialOutcome:
    """Play a dial plan out in time; ``on_ringing`` fires when the far end starts ringing."""
    if plan.ring_at is None:
        await clock.sleep(plan.at)
        return plan.outcome
    await clock.sleep(plan.ring_at)
    on_ringing()
    await clock.sleep(plan.at - plan.ring_at)
    return plan.outcome


def start_party(
    clock: Clock,
    leg: Leg,
    on_hangup: Callable[[], None],
    on_press: Callable[[str], None] | None = None,
) -> None:
    """After answer: the party keys its digits and hangs up as its script says."""
    script = leg.script

    async def hang_up_later(delay: float) -> None:
        await clock.sleep(delay)
        on_hangup()

    async def press_later(delay: float, digits: str) -> None:
        await clock.sleep(delay)
        leg.dtmf.press(digits)
        if on_press is not None:
            on_press(digits)

    if script.hangup_after is not None:
        leg.start(clock, hang_up_later(script.hangup_after))
    for delay, digits in script.press:
        leg.start(clock, press_later(delay, digits))
