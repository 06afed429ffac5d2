"""``Metrics.observe``: histogram observations kept as bucket counts and a sum until the registry is read,
then added to the histograms. What a scrape shows must be what ``Histogram.observe`` would have shown."""

from __future__ import annotations

from prometheus_client import generate_latest

from flowengine.server.metrics import _COMMAND_BUCKETS, _LATENCY_BUCKETS, Metrics

# On a bound, between bounds, below the first, past the last (+Inf), zero: each bucket rule at its edge.
VALUES = [0.0, 0.0005, 0.00051, 0.001, 0.003, 0.025, 0.0251, 2.5, 2.6, 10.0, 11.0, 1e9, *_COMMAND_BUCKETS]


def _lines(metrics: Metrics, name: str) -> list[str]:
    text = generate_latest(metrics.registry).decode()
    return [line for line in text.splitlines() if line.startswith(name) and "_created" not in line]


def test_kept_observations_expose_as_histogram_observe_would() -> None:
    kept, direct = Metrics(), Metrics()
    for n, value in enumerate(VALUES):
        kept.observe("webhook_seconds", value)
        direct.webhook_seconds.observe(value)
        action = ("say", "hangup")[n % 2]
        kept.observe("command_seconds", value, "infobip", action)
        direct.command_seconds.labels("infobip", action).observe(value)
    for name in ("flowengine_webhook_seconds", "flowengine_command_seconds"):
        assert _lines(kept, name) == _lines(direct, name)
    assert len(_lines(kept, "flowengine_webhook_seconds_bucket")) == len(_LATENCY_BUCKETS) + 1


def test_every_read_sees_every_observation_and_each_is_added_once() -> None:
    metrics = Metrics()
    metrics.observe("command_seconds", 0.002, "infobip", "say")
    read = metrics.registry.get_sample_value
    labels = {"provider": "infobip", "action": "say"}
    assert read("flowengine_command_seconds_count", labels) == 1
    assert read("flowengine_command_seconds_count", labels) == 1  # flushed once, not again
    metrics.observe("command_seconds", 0.5, "infobip", "say")
    assert read("flowengine_command_seconds_count", labels) == 2
    assert read("flowengine_command_seconds_sum", labels) == 0.502
    assert read("flowengine_command_seconds_bucket", {**labels, "le": "0.0025"}) == 1
    assert read("flowengine_command_seconds_bucket", {**labels, "le": "0.5"}) == 2
