"""Scripted parties: parsing scenario data, the dial timeline, DTMF collection and speech timing."""

from __future__ import annotations

import asyncio
import re

import pytest

from flowengine.runtime.clock import VirtualClock
from flowengine.simulator.legs import SECONDS_PER_CHAR, DtmfBuffer, speech_seconds, wait_signal
from flowengine.simulator.parties import (
    RING_DELAY,
    SETUP_DELAY,
    DialOutcome,
    DialPlan,
    PartyBook,
    PartyScript,
    parse_duration,
    plan_dial,
)


def test_script_from_yaml_like_mapping() -> None:
    script = PartyScript.from_dict(
        {"answer_after": "1.5s", "hangup_after": 30, "press": [["3s", 1], {"after": "500ms", "digits": "*9"}]}
    )
    assert script == PartyScript(answer_after=1.5, hangup_after=30.0, press=((0.5, "*9"), (3.0, "1")))
    assert PartyScript.from_dict({"answer_after": None}).answer_after is None
    assert PartyScript.from_dict(script.to_dict()) == script


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"answer": 2}, "unknown field(s) answer"),
        ({"answer_after": "soon"}, "answer_after: expected seconds"),
        ({"answer_after": -1}, "must be a finite number of seconds >= 0"),
        ({"busy": "yes"}, "busy must be true or false"),
        ({"busy": True, "reject": True}, "at most one of busy, reject, unreachable"),
        ({"press": "1"}, "press must be a list"),
        ({"press": [[1, "x"]]}, "press digits must be DTMF characters"),
        ({"press": [[1]]}, "press entry must be [seconds, digits]"),
        (["answer_after"], "expected a mapping"),
    ],
)
def test_script_errors_say_what_is_wrong(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        PartyScript.from_dict(data)  # type: ignore[arg-type]


def test_parse_duration_units() -> None:
    assert parse_duration("2m", "x") == 120.0
    assert parse_duration("250ms", "x") == 0.25
    assert parse_duration(3, "x") == 3.0
    with pytest.raises(ValueError, match="x: expected seconds"):
        parse_duration(True, "x")


def test_party_book_matches_numbers_with_or_without_plus() -> None:
    busy = PartyScript(busy=True)
    book = PartyBook.from_dict({"default": {"answer_after": 5}, "+44 7415 784323": {"busy": True}})
    assert book.script_for("447415784323") == busy
    assert book.script_for("+447415784323") == busy
    assert book.script_for("sip:alice@example.com") == PartyScript(answer_after=5.0)
    assert PartyBook().script_for("1") == PartyScript(answer_after=2.0)
    assert book.remove("447415784323") and not book.remove("447415784323")
    with pytest.raises(ValueError, match="party 123: party script: unknown field"):
        PartyBook.from_dict({"123": {"nope": 1}})


@pytest.mark.parametrize(
    ("script", "timeout", "plan"),
    [
        (PartyScript(), 60, DialPlan(RING_DELAY, DialOutcome.ANSWERED, 2.0)),
        (PartyScript(answer_after=0), 60, DialPlan(0.0, DialOutcome.ANSWERED, 0.0)),
        (PartyScript(answer_after=None), 60, DialPlan(RING_DELAY, DialOutcome.NO_ANSWER, 60)),
        (PartyScript(answer_after=45), 30, DialPlan(RING_DELAY, DialOutcome.NO_ANSWER, 30)),
        (PartyScript(busy=True), 60, DialPlan(None, DialOutcome.BUSY, SETUP_DELAY)),
        (PartyScript(unreachable=True), 60, DialPlan(None, DialOutcome.UNREACHABLE, SETUP_DELAY)),
        (PartyScript(reject=True, answer_after=4), 60, DialPlan(RING_DELAY, DialOutcome.REJECTED, 4.0)),
    ],
)
def test_plan_dial(script: PartyScript, timeout: float, plan: DialPlan) -> None:
    assert plan_dial(script, timeout) == plan


def test_speech_duration_ignores_ssml_tags_and_honours_loops_and_rate() -> None:
    assert speech_seconds("hello") == pytest.approx(5 * SECONDS_PER_CHAR)
    assert speech_seconds("<speak>hello</speak>", loops=3) == pytest.approx(15 * SECONDS_PER_CHAR)
    assert speech_seconds("hello", rate=2.0) == pytest.approx(2.5 * SECONDS_PER_CHAR)


async def test_dtmf_collect_with_terminator_timeout_and_type_ahead() -> None:
    clock = VirtualClock()
    clock.start()
    try:
        buffer = DtmfBuffer()
        buffer.press("12#9")  # pressed before anybody listened: kept
        got = await buffer.collect(clock, max_digits=5, timeout=5, terminator="#")
        assert (got.digits, got.timed_out) == ("12", False)
        got = await buffer.collect(clock, max_digits=3, timeout=5)
        assert (got.digits, got.timed_out) == ("9", True)

        async def press_later() -> None:
            await clock.sleep(2)
            buffer.press("4")
            await clock.sleep(1)
            buffer.press("56")

        start = clock.now()
        clock.spawn(press_later())
        got = await buffer.collect(clock, max_digits=3, timeout=10)
        assert (got.digits, got.timed_out, clock.now() - start) == ("456", False, 3.0)
    finally:
        await clock.stop()


async def test_wait_signal_times_out_on_the_clock() -> None:
    clock = VirtualClock()
    clock.start()
    try:
        start = clock.now()
        assert not await wait_signal(clock, asyncio.Event(), 30)
        assert clock.now() - start == 30
    finally:
        await clock.stop()
