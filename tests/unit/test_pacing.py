"""The executor paces what creates calls: each dial and conference_dial waits for the pacer after its
write-ahead, the outbox is written again after a wait (the fence), a skipped dial takes no turn, and a
refused turn is an action.failed that leaves the platform untouched."""

from __future__ import annotations

from typing import Any

import pytest

from flowengine.config import parse_config
from flowengine.errors import ConfigError, ProviderError
from flowengine.flow.build import build_flow
from flowengine.flow.model import Flow
from flowengine.runtime.engine import Engine
from flowengine.runtime.executor import Executor
from flowengine.runtime.session import Session
from flowengine.server.pacing import paces
from flowengine.stores.base import Pace
from flowengine.testing import ManualClock, RecordingProvider, event


class Pacer:
    def __init__(self, waits: list[float | None]) -> None:
        self.waits = waits
        self.asked: list[str] = []
        self.clock = ManualClock()

    async def acquire(self, provider: str) -> float:
        self.asked.append(provider)
        wait = self.waits.pop(0)
        if wait is None:
            raise ProviderError("too fast: would wait more than max_wait", status=429)
        await self.clock.sleep(wait)
        return wait


def flow(entry: list[dict[str, Any]]) -> Flow:
    return build_flow({"flow": "t", "version": 1, "initial": "start", "states": {
        "start": {"entry": entry, "on": {"action.failed": "refused"}},
        "refused": {"type": "final"}}})


ENTRY = [
    {"conference_create": {"as": "room"}},
    {"dial": {"to": "111", "as": "a", "if": "false"}},
    {"dial": {"to": "222", "as": "b"}},
    {"say": {"call": "caller", "text": "hi"}},
    {"conference_dial": {"conference": "room", "to": "333", "as": "c"}},
]


async def run(entry: list[dict[str, Any]], pacer: Pacer) -> tuple[Session, RecordingProvider, list[Any]]:
    engine = Engine(flow(entry), pacer.clock)
    executor = Executor(engine, pacer=pacer)
    provider = RecordingProvider()
    saved: list[Any] = []

    async def checkpoint(session: Session) -> None:
        outbox = session.outbox
        saved.append(None if outbox is None else (outbox["next"], outbox["due"]))

    session, plan = engine.handle(engine.new_session("s"), event("call.received", call_id="caller-1"))
    session = await executor.run(session, plan, provider, checkpoint=checkpoint)
    return session, provider, saved


async def test_dials_wait_their_turn_after_the_write_ahead_and_write_again() -> None:
    pacer = Pacer([2.0, 0.0])
    session, provider, saved = await run(ENTRY, pacer)
    assert pacer.asked == [provider.name, provider.name]  # the skipped dial took no turn
    assert provider.actions == ["conference_create", "dial", "say", "conference_dial"]
    commands = list(session.trace[-1].commands)
    assert commands[1] == ("dial", "skipped", "if false: false")
    assert commands[2] == ("dial", "ok", "call-1 (paced: waited 2 s)")
    assert commands[4] == ("conference_dial", "ok", "call-2")  # no wait: nothing said
    # Written ahead before each command; the dial (index 2) once more after its wait, due 10 s on.
    nexts = [entry[0] for entry in saved]
    assert nexts == [0, 1, 2, 2, 3, 4]
    assert saved[3][1] == saved[2][1] + 2.0


async def test_a_wait_under_a_second_is_said_and_fenced_too() -> None:
    pacer = Pacer([0.5])
    session, provider, saved = await run([{"dial": {"to": "222", "as": "b"}}], pacer)
    assert provider.actions == ["dial"]
    assert list(session.trace[-1].commands) == [("dial", "ok", "call-1 (paced: waited 0.5 s)")]
    assert saved[:2] == [(0, saved[0][1]), (0, saved[0][1] + 0.5)]


async def test_a_refused_turn_fails_the_dial_unsent() -> None:
    pacer = Pacer([None])
    session, provider, _ = await run([{"dial": {"to": "222", "as": "b"}}], pacer)
    assert provider.actions == []
    assert session.state == "refused"
    failed = session.trace[-1]
    assert failed.event == "action.failed"
    assert list(session.trace[0].commands) == [("dial", "error", "unavailable: too fast: would wait more "
                                                "than max_wait")]


def test_the_config_names_a_rate_per_provider() -> None:
    config = parse_config({"provider": "infobip", "pacing": {"infobip": {"rate": 4, "burst": 2},
                                                             "sinch": {"rate": 0.5, "max_wait": 5}}})
    assert paces(config.pacing) == {"infobip": Pace(0.25, 2, 20.0), "sinch": Pace(2.0, 1, 5.0)}
    bad_ones = (({"infobip": {"rate": 0}}, "rate"), ({"infobip": {"burst": 2}}, "rate"),
                ({"acme": {"rate": 1}}, "acme"), ({"infobip": {"rate": 1, "max_wait": 60}}, "max_wait"))
    for bad, words in bad_ones:
        with pytest.raises(ConfigError, match=words):
            parse_config({"provider": "infobip", "pacing": bad})
