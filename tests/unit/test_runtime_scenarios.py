"""The bundled two-party conference flow, driven through every branch with scripted neutral events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowengine.flow.loader import load_flow_or_raise
from flowengine.flow.model import Flow
from flowengine.runtime.events import Event
from flowengine.runtime.ports import Endpoint, Media
from flowengine.testing import Advance, Driver, drive, event

FLOW_FILE = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"
CALLER, ROOM, CALLEE = "caller-1", "conf-1", "call-1"  # RecordingProvider hands out conf-1, call-1
GREETING = ("Hello, we are trying to connect another caller to this conference. "
            "Please wait and enjoy the sounds of nature.")
SORRY = "Sorry, the other party was not able to join the call. Goodbye."
JOINING = "Another caller is joining the call now."


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow_or_raise(FLOW_FILE)


def say(text: str) -> tuple[str, dict[str, Any]]:
    return ("say", {"call_id": CALLER, "text": text, "language": "en", "voice": None, "loop": 1})


ANSWER = [("answer", {"call_id": CALLER})]
OPEN_ROOM = [
    ("conference_create", {"name": "room-session-1"}),
    ("conference_join", {"conference_id": ROOM, "call_id": CALLER}),
]
GREET = [say(GREETING)]
DIAL = [
    ("hold", {"conference_id": ROOM, "call_id": CALLER, "music": "music1",
              "media": Media(file_id="a8b4cc89-a2d7-4a4c-adaf-c7d921b9f52a"), "loop": 3}),
    ("conference_dial", {"conference_id": ROOM, "to": Endpoint("phone", "447415784323"),
                         "from_": "4592457976", "timeout": 60.0, "machine_detection": False}),
]
UNTIL_DIALING = ANSWER + OPEN_ROOM + GREET + DIAL
STOP_MUSIC = [("resume", {"conference_id": ROOM, "call_id": CALLER})]
HANGUP_ROOM = [("conference_hangup", {"conference_id": ROOM})]


def to_dialing() -> list[Event | Advance]:
    return [
        event("call.received", call_id=CALLER, data={"from": "447000000001", "to": "4592457976"}),
        event("call.answered", call_id=CALLER),
        event("participant.joined", call_id=CALLER, conference_id=ROOM),
        event("say.finished", call_id=CALLER, reason="completed"),
    ]


def states(driver: Driver) -> list[str | None]:
    return [step.target for step in driver.session.trace]


async def test_callee_joins_then_hangs_up(flow: Flow) -> None:
    driver = await drive(flow, [
        *to_dialing(),
        event("participant.joined", call_id=CALLEE, conference_id=ROOM),
        event("call.finished", call_id=CALLEE, reason="hangup"),
    ])
    assert driver.provider.calls == UNTIL_DIALING + STOP_MUSIC + [say(JOINING)] + HANGUP_ROOM
    assert states(driver) == ["answering", "opening_room", "greeting", "dialing", "connected", "closing"]
    assert (driver.session.state, driver.session.status) == ("closing", "ended")
    assert driver.session.calls == {"caller": CALLER, "callee": CALLEE}
    assert driver.session.conferences == {"room": ROOM}
    assert driver.session.timers == {}


async def test_caller_hangs_up_once_connected_closes_the_room(flow: Flow) -> None:
    driver = await drive(flow, [
        *to_dialing(),
        event("participant.joined", call_id=CALLEE, conference_id=ROOM),
        event("call.finished", call_id=CALLER, reason="hangup"),  # connected's own handler wins
    ])
    assert driver.provider.calls[-1:] == HANGUP_ROOM
    assert driver.session.state == "closing"


async def test_callee_never_answers(flow: Flow) -> None:
    driver = await drive(flow, [
        *to_dialing(),
        event("participant.join_failed", call_id=CALLEE, conference_id=ROOM, reason="no_answer"),
        event("say.finished", call_id=CALLER, reason="completed"),
    ])
    assert driver.provider.calls == UNTIL_DIALING + STOP_MUSIC + [say(SORRY)] + HANGUP_ROOM
    assert states(driver)[-2:] == ["callee_unavailable", "closing"]
    assert driver.session.status == "ended"
    assert driver.session.call_states[CALLEE] == "ended"


@pytest.mark.parametrize("failure", [
    Event("participant.join_failed", call_id=CALLEE, conference_id=ROOM, reason="busy"),
    Event("call.failed", call_id=CALLEE, reason="busy"),
])
async def test_callee_busy(flow: Flow, failure: Event) -> None:
    driver = await drive(flow, [*to_dialing(), failure])
    assert driver.provider.calls == UNTIL_DIALING + STOP_MUSIC + [say(SORRY)]
    assert driver.session.state == "callee_unavailable"


async def test_caller_hangs_up_while_waiting_cancels_the_dial(flow: Flow) -> None:
    driver = await drive(flow, [*to_dialing(), event("call.finished", call_id=CALLER, reason="hangup")])
    assert driver.provider.calls == [*UNTIL_DIALING, ("hangup", {"call_id": CALLEE, "reason": None})]
    assert (driver.session.state, driver.session.status) == ("abandoned", "ended")
    step = driver.session.trace[-1]
    assert step.guards == (("event.call == 'caller'", True),)


async def test_callee_hanging_up_while_dialing_takes_the_second_guard(flow: Flow) -> None:
    driver = await drive(flow, [*to_dialing(), event("call.finished", call_id=CALLEE, reason="hangup")])
    assert driver.session.state == "callee_unavailable"
    assert driver.session.trace[-1].guards == (
        ("event.call == 'caller'", False), ("event.call == 'callee'", True))


async def test_caller_hangs_up_during_greeting_flow_level_handler(flow: Flow) -> None:
    driver = await drive(flow, [
        *to_dialing()[:3],
        event("call.finished", call_id=CALLER, reason="hangup"),
        event("say.finished", call_id=CALLER),  # too late: the session has ended
    ])
    assert driver.provider.calls == ANSWER + OPEN_ROOM + GREET
    assert (driver.session.state, driver.session.status) == ("done", "ended")
    assert driver.session.trace[-1].note == "session ended"


async def test_guard_false_leaves_the_state_and_records_it(flow: Flow) -> None:
    driver = await drive(flow, [
        *to_dialing()[:2],
        event("participant.joined", call_id="someone-else", conference_id=ROOM),
    ])
    assert driver.session.state == "opening_room"
    step = driver.session.trace[-1]
    assert (step.event, step.target, step.note) == ("participant.joined", None, "unmatched")
    assert step.guards == (("event.call == 'caller'", False),)


async def test_join_failed_while_opening_gives_up(flow: Flow) -> None:
    driver = await drive(flow, [
        *to_dialing()[:2],
        event("participant.join_failed", call_id=CALLER, conference_id=ROOM, reason="failed"),
    ])
    assert driver.provider.calls == ANSWER + OPEN_ROOM + [("hangup", {"call_id": CALLER, "reason": None})]
    assert driver.session.state == "giving_up"


async def test_answering_times_out_after_ten_seconds(flow: Flow) -> None:
    driver = await drive(flow, [event("call.received", call_id=CALLER), Advance(9.9)])
    assert driver.session.state == "answering"
    await driver.advance(0.1)
    assert driver.provider.calls == [*ANSWER, ("hangup", {"call_id": CALLER, "reason": None})]
    assert (driver.session.state, driver.session.status) == ("giving_up", "ended")
    assert driver.session.trace[-1].event == "after:answering:10s"


async def test_dialing_safety_net_after_75_seconds(flow: Flow) -> None:
    driver = await drive(flow, [*to_dialing(), Advance(74)])
    assert driver.session.state == "dialing"
    await driver.advance(1)
    assert driver.provider.calls == UNTIL_DIALING + STOP_MUSIC + [say(SORRY)]
    assert driver.session.state == "callee_unavailable"
    await driver.advance(20)
    assert driver.provider.calls[-1:] == HANGUP_ROOM
    assert driver.session.state == "closing"


async def test_greeting_falls_through_to_dialing_after_30_seconds(flow: Flow) -> None:
    driver = await drive(flow, [*to_dialing()[:3], Advance(30)])
    assert driver.provider.calls == UNTIL_DIALING
    assert driver.session.state == "dialing"
    # Only dialing's own timer is armed: greeting's was consumed, opening_room's cancelled on exit.
    assert [entry[:2] for entry in driver.session.timers.values()] == [("dialing", "75s")]
