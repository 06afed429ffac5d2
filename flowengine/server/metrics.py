"""Prometheus metrics, one registry per app so several apps (tests, simulate) never collide.

Counters count what this instance did (Prometheus sums instances); the two gauges of what is live
(``sessions_live``, ``timers_pending``) are read from the store at scrape time (``census``), so they are
the same on every instance sharing the store and right after a restart. Labelled children are looked up
once per label set (``Metrics.child``): ``labels()`` costs a lock and a dict lookup on every call.

``count`` adds to a plain dict, which goes into the counters whenever the registry is read (a scrape,
``get_sample_value``): a counter's ``inc`` takes a lock and checks its arguments, and a whole call made
~60 of them. The flush is the registry's first collector, so every read sees every count; a label set's
child is still made at its first count (its ``_created`` time is unchanged). Counting happens on the
event loop's thread only. ``observe`` does the same for the histograms timed on every webhook and command:
a histogram's ``observe`` (a lock per value and per bucket, ~9,600 instructions) was ~1 % of a whole call;
kept here, an observation is a bucket's count and a sum, added to the histogram's own values at the flush.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Metric, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from flowengine.server.sessions import TIMER_KINDS
from flowengine.stores.base import Census

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_COMMAND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_PACING_BUCKETS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self._children: dict[tuple[str, ...], Any] = {}
        self._pending: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        self._observed: dict[tuple[str, ...], _Observed] = {}
        r = self.registry
        r.register(_Flush(self))  # before the counters: collected first
        self.webhooks = Counter(
            "flowengine_webhooks_total",
            "Webhooks received, by outcome: handled, replayed, ignored, refused_<4xx status>, "
            "failed_<5xx status>, abandoned.",
            ["provider", "outcome"], registry=r,
        )
        self.webhook_seconds = Histogram(
            "flowengine_webhook_seconds", "Time from a webhook's arrival to its reply.",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.events = Counter(
            "flowengine_events_total",
            "Events taken by sessions or stopped before, by name and outcome: handled, unmatched, duplicate, "
            "late, stale, replayed, orphan.",
            ["event", "outcome"], registry=r,
        )
        self.transitions = Counter(
            "flowengine_transitions_total", "Steps that entered a state, by flow.", ["flow"], registry=r
        )
        self._sessions(r)
        self._commands(r)
        self._timers(r)
        self._recovery(r)
        self._pacing(r)

    def _sessions(self, r: CollectorRegistry) -> None:
        self.sessions_started = Counter(
            "flowengine_sessions_started_total", "Sessions started, by flow.", ["flow"], registry=r
        )
        self.sessions_ended = Counter(
            "flowengine_sessions_ended_total", "Sessions ended, by flow and final status (ended, failed).",
            ["flow", "status"], registry=r,
        )
        self.sessions_live = Gauge(
            "flowengine_sessions_live", "Live sessions in the store (every instance's), by flow and state.",
            ["flow", "state"], registry=r,
        )

    def _commands(self, r: CollectorRegistry) -> None:
        self.commands = Counter(
            "flowengine_commands_total",
            "Command attempts through a provider (or the http action), by outcome: ok, already, unknown, "
            "retried, failed, unsupported.",
            ["provider", "action", "outcome"], registry=r,
        )
        self.command_seconds = Histogram(
            "flowengine_command_seconds", "Time from sending a command attempt to its outcome.",
            ["provider", "action"], buckets=_COMMAND_BUCKETS, registry=r,
        )

    def _timers(self, r: CollectorRegistry) -> None:
        kinds = "flow (a flow's after), deferred (an event kept for later), resume, reconcile"
        self.timers = Counter(
            "flowengine_timers_fired_total", f"Entries of the store's timer index fired, by kind: {kinds}.",
            ["kind"], registry=r,
        )
        self.timers_pending = Gauge(
            "flowengine_timers_pending", f"Entries of the store's timer index (every instance's), by kind: "
            f"{kinds}.", ["kind"], registry=r,
        )

    def _recovery(self, r: CollectorRegistry) -> None:
        self.orphans = Counter(
            "flowengine_orphans_hung_up_total",
            "Calls and conferences alive on the platform that no live session owned, hung up.",
            ["kind"], registry=r,
        )
        self.reconciled = Counter(
            "flowengine_reconciled_events_total",
            "Events the platform showed that no webhook brought (reconciliation), by event.",
            ["event"], registry=r,
        )
        self.insecure_webhooks = Gauge(
            "flowengine_insecure_webhooks",
            "1 while webhooks are served without authentication (insecure_webhooks: true), else 0.",
            registry=r,
        )

    def _pacing(self, r: CollectorRegistry) -> None:
        """What waits for the provider's pace (``server.pacing``)."""
        self.pacing_queue = Gauge(
            "flowengine_pacing_queue_depth",
            "Commands creating a call that wait for the provider's pace on this instance.",
            ["provider"], registry=r,
        )
        self.pacing_wait = Histogram(
            "flowengine_pacing_wait_seconds",
            "How long each command creating a call waited for the provider's pace.",
            ["provider"], buckets=_PACING_BUCKETS, registry=r,
        )
        self.pacing_refused = Counter(
            "flowengine_pacing_refused_total",
            "Commands creating a call refused because their turn was further off than max_wait.",
            ["provider"], registry=r,
        )

    def child(self, metric: str, *labels: str) -> Any:
        """``metric``'s child for ``labels``, made on first use and kept."""
        key = (metric, *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = getattr(self, metric).labels(*labels)
        return found

    def count(self, metric: str, *labels: str) -> None:
        # Kept by (metric, labels) as they came (no tuple built per count), in a one-item list added to in
        # place (no second hashing of the key to store it back): 50 counts a call, ~25 % cheaper each.
        counted = self._pending.get((metric, labels))
        if counted is None:
            self.child(metric, *labels)  # made at its first count, as ``inc`` would have
            self._pending[(metric, labels)] = [1]
        else:
            counted[0] += 1

    def observe(self, metric: str, value: float, *labels: str) -> None:
        """What ``metric``'s child for ``labels`` (a histogram) ``observe``s, kept until the next flush."""
        key = (metric, *labels)
        observed = self._observed.get(key)
        if observed is None:  # the child made at its first observation, as ``observe`` would have
            histogram = self.child(metric, *labels) if labels else getattr(self, metric)
            observed = self._observed[key] = _Observed(histogram)
        # The first bucket whose bound is at or above the value: the one ``Histogram.observe`` counts it in.
        observed.counts[bisect_left(observed.bounds, value)] += 1
        observed.sum += value

    def flush(self) -> None:
        """Add the counts and observations kept since the last flush to their counters and histograms."""
        pending, self._pending = self._pending, {}
        children = self._children
        for (metric, labels), counted in pending.items():
            children[(metric, *labels)].inc(counted[0])
        observed, self._observed = self._observed, {}
        for kept in observed.values():
            kept.flush()

    def take_census(self, census: Census | None, states: Mapping[str, Iterable[str]]) -> None:
        """Set the live gauges from ``census``: every loaded flow's states (0 where none is live) and
        whatever else the store holds; None (the store did not answer): the gauges are left out."""
        self.sessions_live.clear()
        self.timers_pending.clear()
        if census is None:
            return
        live = {(flow, state): 0 for flow, names in states.items() for state in names}
        live.update(census.live)
        for (flow, state), n in live.items():
            self.sessions_live.labels(flow, state).set(n)
        for kind in {*TIMER_KINDS, *census.timers}:
            self.timers_pending.labels(kind).set(census.timers.get(kind, 0))

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _Observed:
    """A histogram's observations since the last flush: how many fell in each of its buckets, and their sum.
    The flush adds them to the histogram's own values (``prometheus_client``'s ``_sum`` and ``_buckets``,
    what its ``observe`` adds to; ``test_metrics`` checks the exposition against ``observe``'s)."""

    __slots__ = ("bounds", "counts", "histogram", "sum")

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram
        self.bounds: list[float] = list(histogram._upper_bounds)  # the last is +Inf: every value has one
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0

    def flush(self) -> None:
        histogram = self.histogram
        histogram._sum.inc(self.sum)
        for bucket, counted in zip(histogram._buckets, self.counts, strict=True):
            if counted:
                bucket.inc(counted)


class _Flush:
    """A collector with no metrics of its own: reading the registry flushes ``Metrics.count``'s counts."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> list[Metric]:
        self._metrics.flush()
        return []
