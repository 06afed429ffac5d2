"""Pacing: platforms cap how fast calls may be created, so the commands that create one wait their turn.

Each provider configured under ``pacing:`` gets a token bucket (``stores.base.Pace``) kept in the session
store, so every instance sharing the store shares the rate: a taker reserves the bucket's next slot in
one atomic store step (a Lua script on Redis, an immediate transaction on SQLite) and sleeps until it is
due, on the service's clock. A slot further off than ``max_wait`` is not reserved: the command fails
with status 429 (``action.failed`` in the flow) instead of queueing for ever.

The executor paces ``dial`` and ``conference_dial`` after writing its outbox and writes it again after
waiting (``runtime.executor``), so a paced dial is still sent at most once. Anything else that creates
calls (an outbound start) waits the same way: ``await service.pacer.acquire(provider)``.

What waits is visible: ``flowengine_pacing_queue_depth`` (this instance's takers waiting),
``flowengine_pacing_wait_seconds`` (how long each waited) and ``flowengine_pacing_refused_total`` in the
metrics, and ``GET /api/pacing`` (those, with the store-wide backlog the bucket shows).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowengine.errors import ConfigError, ProviderError
from flowengine.runtime.clock import Clock
from flowengine.server.metrics import Metrics
from flowengine.stores.base import Pace, SessionStore

DEFAULT_MAX_WAIT = 20.0  # seconds; well inside the Redis store's 30-second session lock lease
TOO_MANY = 429


def paces(config: Mapping[str, Mapping[str, Any]]) -> dict[str, Pace]:
    """The config's ``pacing`` (provider -> {rate, burst, max_wait}) as token buckets."""
    found: dict[str, Pace] = {}
    for provider, entry in config.items():
        try:
            rate = float(entry["rate"])
            found[provider] = Pace(1.0 / rate, int(entry.get("burst", 1)),
                                   float(entry.get("max_wait", DEFAULT_MAX_WAIT)))
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise ConfigError(f"pacing.{provider}: a rate > 0, burst >= 1, max_wait >= 0 ({exc})") from None
    return found


@dataclass
class _Tally:
    waiting: int = 0
    paced: int = 0
    waited: float = 0.0  # seconds, in all
    refused: int = 0
    last_wait: float | None = None


class Pacer:
    """Hands out each provider's call-creation slots; providers without a pace go at once."""

    def __init__(
        self, store: SessionStore, clock: Clock, rules: Mapping[str, Pace], metrics: Metrics
    ) -> None:
        self.store = store
        self.clock = clock
        self.rules = dict(rules)
        self.metrics = metrics
        self._tallies = {provider: _Tally() for provider in self.rules}

    async def acquire(self, provider: str) -> float:
        """Wait for ``provider``'s next slot; the seconds waited. ``ProviderError`` (429, final) when the
        slot is further off than the pace's ``max_wait``; ``StoreError`` when the store does not answer."""
        pace = self.rules.get(provider)
        if pace is None:
            return 0.0
        tally = self._tallies[provider]
        depth = self.metrics.pacing_queue.labels(provider)
        tally.waiting += 1
        depth.inc()
        try:
            wait = await self.store.take_slot(provider, pace, self.clock.now())
            if wait is None:
                tally.refused += 1
                self.metrics.pacing_refused.labels(provider).inc()
                raise ProviderError(
                    f"{provider}: calls are created at most {1 / pace.interval:g} a second here, and this "
                    f"one would wait more than max_wait ({pace.max_wait:g} s) for its turn", status=TOO_MANY,
                )
            if wait > 0:
                await self.clock.sleep(wait)
        finally:
            tally.waiting -= 1
            depth.dec()
        tally.paced += 1
        tally.waited += wait
        tally.last_wait = wait
        self.metrics.pacing_wait.labels(provider).observe(wait)
        return wait

    async def view(self) -> dict[str, Any]:
        """What ``GET /api/pacing`` answers: per paced provider, the rule, this instance's takers and the
        store-wide backlog (slots reserved ahead, from the bucket)."""
        now = self.clock.now()
        providers = []
        for provider, pace in self.rules.items():
            horizon = await self.store.slot_horizon(provider)
            # A new taker's slot; the slots reserved before it are one interval apart, up to it.
            ahead = 0.0 if horizon is None else max(0.0, horizon - now - (pace.burst - 1) * pace.interval)
            tally = self._tallies[provider]
            providers.append({
                "provider": provider, "rate": 1 / pace.interval, "burst": pace.burst,
                "max_wait": pace.max_wait, "queue_depth": tally.waiting,
                "queued_store_wide": max(0, math.ceil((ahead - pace.interval) / pace.interval - 1e-9)),
                "next_slot_in": ahead, "paced": tally.paced, "refused": tally.refused,
                "wait_seconds_total": tally.waited, "last_wait": tally.last_wait,
            })
        return {"providers": providers}
