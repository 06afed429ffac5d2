"""Prometheus metrics, one registry per app so several apps (tests, simulate) never collide."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_PACING_BUCKETS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.webhooks = Counter(
            "flowengine_webhooks_total", "Webhooks received, by outcome.", ["provider", "outcome"], registry=r
        )
        self.events = Counter(
            "flowengine_events_total",
            "Neutral events handled, by name and outcome.",
            ["event", "outcome"],
            registry=r,
        )
        self.commands = Counter(
            "flowengine_commands_total",
            "Commands sent to the provider, by outcome.",
            ["action", "outcome"],
            registry=r,
        )
        self.transitions = Counter(
            "flowengine_transitions_total", "State changes, by flow.", ["flow"], registry=r
        )
        self.sessions = Counter(
            "flowengine_sessions_total",
            "Sessions started and ended, by status.",
            ["flow", "status"],
            registry=r,
        )
        self.timers = Counter("flowengine_timers_fired_total", "Timers fired.", registry=r)
        self.orphans = Counter(
            "flowengine_orphans_hung_up_total",
            "Calls and conferences alive on the platform that no live session owned, hung up.",
            ["kind"],
            registry=r,
        )
        self.reconciled = Counter(
            "flowengine_reconciled_events_total",
            "Events the platform showed that no webhook brought (reconciliation), by event.",
            ["event"],
            registry=r,
        )
        self.insecure_webhooks = Gauge(
            "flowengine_insecure_webhooks",
            "1 while webhooks are served without authentication (insecure_webhooks: true), else 0.",
            registry=r,
        )
        self.event_seconds = Histogram(
            "flowengine_event_seconds",
            "Time from a webhook's arrival to its reply.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

        self._pacing(r)

    def _pacing(self, r: CollectorRegistry) -> None:
        """What waits for the provider's pace (``server.pacing``)."""
        self.pacing_queue = Gauge(
            "flowengine_pacing_queue_depth",
            "Commands creating a call that wait for the provider's pace on this instance.",
            ["provider"],
            registry=r,
        )
        self.pacing_wait = Histogram(
            "flowengine_pacing_wait_seconds",
            "How long each command creating a call waited for the provider's pace.",
            ["provider"],
            buckets=_PACING_BUCKETS,
            registry=r,
        )
        self.pacing_refused = Counter(
            "flowengine_pacing_refused_total",
            "Commands creating a call refused because their turn was further off than max_wait.",
            ["provider"],
            registry=r,
        )

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
