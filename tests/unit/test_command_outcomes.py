"""What an operator's ``flowengine_commands_total{provider, action, outcome}`` and
``flowengine_command_seconds`` say: one sample per attempt at a command through the provider (or the
http port), by how it ended (ok, already, unknown, retried, failed, unsupported), driven through the real
engine and executor with the service's observer and read back from the registry."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest

from flowengine.errors import ProviderError
from flowengine.flow.build import build_flow
from flowengine.flow.model import Flow
from flowengine.runtime.executor import Executor, RetryPolicy
from flowengine.runtime.ports import ALREADY, UNKNOWN, ActionResult, HttpAnswer, HttpRequest, ProviderCommand
from flowengine.server.metrics import Metrics
from flowengine.server.observer import ServiceObserver
from flowengine.testing import Driver, RecordingProvider, event

CALLER = "caller-1"


def entered(entry: list[dict[str, Any]]) -> Flow:
    """A flow whose first state runs ``entry`` on the call's arrival."""
    return build_flow({"flow": "t", "version": 1, "initial": "start",
                       "states": {"start": {"entry": entry}, "end": {"type": "final"}}})


class Answering(RecordingProvider):
    """A RecordingProvider whose listed actions answer with the platform's data (``ALREADY``, ...)."""

    def __init__(self, answers: Mapping[str, Mapping[str, Any]], **options: Any) -> None:
        super().__init__(**options)
        self.answers = answers

    async def execute(self, command: ProviderCommand) -> ActionResult:
        if command.action in self.answers:
            self.calls.append((command.action, dict(command.args)))
            return ActionResult(data=self.answers[command.action])
        return await super().execute(command)


class Failing:
    """An HttpClient whose every request fails for good, as a refused one does."""

    async def request(self, request: HttpRequest) -> HttpAnswer:
        raise ProviderError("refused", status=400)


async def counted(entry: list[dict[str, Any]], provider: RecordingProvider | None = None,
                  **options: Any) -> tuple[Counter[tuple[str, ...]], Counter[tuple[str, ...]], float]:
    """Run ``entry`` for a received call: commands_total by (provider, action, outcome), the latency
    histogram's count by (provider, action), and its sum."""
    metrics = Metrics()
    driver = Driver(entered(entry), provider=provider, **options)
    built = driver.executor  # the service hands its observer to the executor it builds
    driver.executor = Executor(driver.engine, retry=built.retry, http=built.http,
                               observer=ServiceObserver(metrics))
    await driver.send(event("call.received", call_id=CALLER))
    commands: Counter[tuple[str, ...]] = Counter()
    timed: Counter[tuple[str, ...]] = Counter()
    total = 0.0
    for family in metrics.registry.collect():
        for sample in family.samples:
            labels = tuple(sample.labels.values())
            if sample.name == "flowengine_commands_total" and sample.value:
                commands[labels] += int(sample.value)
            elif sample.name == "flowengine_command_seconds_count" and sample.value:
                timed[labels] += int(sample.value)
            elif sample.name == "flowengine_command_seconds_sum":
                total += sample.value
    return commands, timed, total


async def test_each_attempt_is_counted_by_how_it_ended_and_timed() -> None:
    provider = RecordingProvider()
    provider.fail("say", times=2, retryable=True)
    provider.fail("play", times=None, retryable=True)
    commands, timed, total = await counted([
        {"answer": {"call": "caller"}},
        {"say": {"call": "caller", "text": "hi", "on_error": "continue"}},
        {"play": {"call": "caller", "url": "http://x/a.wav", "on_error": "continue"}},
    ], provider, retry=RetryPolicy(attempts=3))
    assert commands == {
        ("recording", "answer", "ok"): 1,
        ("recording", "say", "retried"): 2, ("recording", "say", "ok"): 1,
        ("recording", "play", "retried"): 2, ("recording", "play", "failed"): 1,
    }
    assert timed == {("recording", "answer"): 1, ("recording", "say"): 3, ("recording", "play"): 3}
    assert 0.0 <= total < 1.0  # the sends' own time (real time, the backoff on the manual clock is not in it)


async def test_a_failure_for_good_is_one_failed_attempt() -> None:
    provider = RecordingProvider()
    provider.fail("answer")
    commands, _, _ = await counted([{"answer": {"call": "caller"}}], provider,
                                   retry=RetryPolicy(attempts=5))
    assert commands == {("recording", "answer", "failed"): 1, ("recording", "hangup", "ok"): 1}


async def test_what_the_platform_settled_is_counted_as_it_settled() -> None:
    provider = Answering({"answer": ALREADY, "say": UNKNOWN, "play": {"already": False, "outcome": "sent"}})
    commands, _, _ = await counted([
        {"answer": {"call": "caller"}},
        {"say": {"call": "caller", "text": "hi"}},
        {"play": {"call": "caller", "url": "http://x/a.wav"}},
    ], provider)
    assert commands == {("recording", "answer", "already"): 1, ("recording", "say", "unknown"): 1,
                        ("recording", "play", "ok"): 1}


async def test_an_action_the_provider_refuses_is_unsupported_and_never_retried() -> None:
    provider = RecordingProvider()
    provider.fail("answer", unsupported=True, times=None)
    commands, timed, _ = await counted([{"answer": {"call": "caller"}}], provider,
                                       retry=RetryPolicy(attempts=5))
    assert provider.actions == ["answer", "hangup"]
    assert commands == {("recording", "answer", "unsupported"): 1, ("recording", "hangup", "ok"): 1}
    assert timed == {("recording", "answer"): 1, ("recording", "hangup"): 1}


async def test_an_action_outside_the_capabilities_is_unsupported_unsent_and_took_no_time() -> None:
    provider = RecordingProvider(capabilities={"hangup"})
    commands, timed, total = await counted([{"answer": {"call": "caller"}}], provider)
    assert provider.actions == ["hangup"]
    assert provider.commands[0].action == "hangup"
    assert commands == {("recording", "answer", "unsupported"): 1, ("recording", "hangup", "ok"): 1}
    assert timed == {("recording", "answer"): 1, ("recording", "hangup"): 1}
    assert total < 0.5


class Answered:
    """An HttpClient whose host answers 200."""

    async def request(self, request: HttpRequest) -> HttpAnswer:
        return HttpAnswer(200, {"ok": True})


async def test_http_requests_are_counted_under_their_own_port() -> None:
    url = "https://api.example.com/x"
    commands, timed, _ = await counted([{"http": {"url": url, "on_error": "continue"}}], http=Failing())
    assert commands == {("http", "http", "failed"): 1}
    assert timed == {("http", "http"): 1}
    commands, _, _ = await counted([{"http": {"url": url}}], http=Answered())
    assert commands == {("http", "http", "ok"): 1}


async def test_each_attempt_is_a_debug_line_of_its_session(caplog: pytest.LogCaptureFixture) -> None:
    provider = RecordingProvider(capabilities={"hangup", "say"})
    provider.fail("say", times=1, retryable=True)
    with caplog.at_level(logging.DEBUG, logger="flowengine.session"):
        await counted([{"say": {"call": "caller", "text": "hi"}}, {"answer": {"call": "caller"}}], provider)
    lines = [(r.getMessage().rsplit(" in ", 1)[0], getattr(r, "action", None))
             for r in caplog.records if r.name == "flowengine.session" and getattr(r, "action", None)]
    assert lines == [("session session-1: recording say: retried", "say"),
                     ("session session-1: recording say: ok", "say"),
                     ("session session-1: recording answer: unsupported", "answer"),
                     ("session session-1: recording hangup: ok", "hangup")]
