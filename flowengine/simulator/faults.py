"""Injected platform trouble, as a platform under load or a network in between shows it. Every draw comes
from one seeded generator, so a run replays exactly; ``PUT /_simulator/faults`` sets them.

Before the request is carried out (the platform did nothing):
  ``throttle_rate``: 429 with ``Retry-After: retry_after`` seconds;
  ``error_rate``: ``error_status`` (500 or 503) with the platform's error body.
After it was carried out (the platform did it, the client cannot tell):
  ``lost_rate``: the answer is lost: the connection is dropped (``lost_as: "drop"``) or a 500 comes back
  (``lost_as: 500``) instead of the real answer;
  ``slow_rate``: the answer comes ``slow_seconds`` late (real seconds: a client's deadline is real time).
``latency`` delays every answer. ``match`` (a regular expression searched in ``"METHOD /path"``) limits
the faults to some requests, and ``times`` to the first so many faults injected (None: no limit).

The platform's own rate limit on creating calls (not random, and not limited by ``match``/``times``):
``create_rate`` calls a second at most (0: no limit), ``create_burst`` at once after a quiet spell; a
creation past it is answered 429 with ``Retry-After``, like ``throttle``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from flowengine.stores.base import Pace, next_slot

Before = Literal["throttle", "error"]
After = Literal["lost", "slow"]
_KEYS = ("latency", "error_rate", "error_status", "throttle_rate", "retry_after", "lost_rate", "lost_as",
         "slow_rate", "slow_seconds", "match", "times", "seed", "create_rate", "create_burst")


@dataclass
class Faults:
    latency: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    throttle_rate: float = 0.0
    retry_after: float = 1.0
    lost_rate: float = 0.0
    lost_as: str | int = "drop"
    slow_rate: float = 0.0
    slow_seconds: float = 0.0
    match: str | None = None
    times: int | None = None
    seed: int = 0
    create_rate: float = 0.0
    create_burst: int = 1
    injected: int = field(default=0, compare=False)  # faults injected so far
    _created: float | None = field(default=None, init=False, repr=False, compare=False)  # its bucket
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rates = ("error_rate", "throttle_rate", "lost_rate", "slow_rate")
        bad = [name for name in rates if not 0 <= getattr(self, name) <= 1]
        bad += [name for name in ("latency", "retry_after", "slow_seconds") if getattr(self, name) < 0]
        if bad:
            raise ValueError(f"faults: {', '.join(bad)}: rates are between 0 and 1, seconds not negative")
        if self.error_status not in (500, 503) or self.lost_as not in ("drop", 500):
            raise ValueError('faults: error_status 500 or 503, lost_as "drop" or 500')
        if self.times is not None and self.times < 0:
            raise ValueError("faults: times >= 0")
        if self.create_rate < 0 or self.create_burst < 1:
            raise ValueError("faults: create_rate >= 0 (0: no limit), create_burst >= 1")
        try:
            self._pattern = re.compile(self.match) if self.match else None
        except re.error as exc:
            raise ValueError(f"faults: match is not a regular expression: {exc}") from None
        self._rng = random.Random(self.seed)

    def _applies(self, method: str, path: str) -> bool:
        if self.times is not None and self.injected >= self.times:
            return False
        return self._pattern is None or self._pattern.search(f"{method} {path}") is not None

    def _draw(self, rate: float) -> bool:
        if rate > 0 and self._rng.random() < rate:
            self.injected += 1
            return True
        return False

    def before(self, method: str, path: str) -> Before | None:
        """A fault that stops the request before the platform acts on it."""
        if not self._applies(method, path):
            return None
        if self._draw(self.error_rate):  # first: the draws of older seeds stay as they were
            return "error"
        return "throttle" if self._draw(self.throttle_rate) else None

    def over_create_rate(self, now: float) -> bool:
        """A call creation at ``now``: whether it is past the platform's rate (counted only if not)."""
        if self.create_rate <= 0:
            return False
        pace = Pace(1 / self.create_rate, self.create_burst, 0.0)
        wait, self._created = next_slot(self._created, pace, now)
        return wait is None

    def after(self, method: str, path: str) -> After | None:
        """A fault that hides the answer of a request the platform carried out."""
        if not self._applies(method, path):
            return None
        if self._draw(self.lost_rate):
            return "lost"
        return "slow" if self._draw(self.slow_rate) else None

    def should_fail(self) -> bool:
        """The older single question: does this request fail before it is carried out?"""
        return self._draw(self.error_rate)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faults:
        if not isinstance(data, Mapping) or set(data) - set(_KEYS):
            raise ValueError(f"faults: expected a mapping with keys from {sorted(_KEYS)}")
        try:
            return cls(**dict(data))
        except TypeError as exc:
            raise ValueError(f"faults: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        shown = {key: getattr(self, key) for key in _KEYS if key != "seed"}
        return {**shown, "injected": self.injected}
