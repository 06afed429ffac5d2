"""A ring timeout the platform does not enforce (Sinch callouts): the adapter's stand-in failure events
make the engine hang the dialled call up and the flow move on; the platform's echo is dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowengine.flow.loader import load_flow_or_raise
from flowengine.flow.model import Flow
from flowengine.runtime.binding import PLACED_BY, standin_id
from flowengine.runtime.engine import RING_TIMEOUT
from flowengine.runtime.events import Event
from flowengine.testing import Driver, drive, event

FLOW_FILE = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"
FLAG = {"implicit": True, RING_TIMEOUT: True}


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow_or_raise(FLOW_FILE)


async def dialling(flow: Flow) -> Driver:
    driver = await drive(flow, [
        event("call.received", call_id="c1"), event("call.answered", call_id="c1"),
        event("participant.joined", call_id="c1", conference_id="conf-1"),
        event("say.finished", call_id="c1"),
    ])
    assert driver.session.state == "dialing"
    return driver


def stand_ins(callee: str) -> list:  # type: ignore[type-arg]
    return [
        event("participant.join_failed", call_id=callee, conference_id="conf-1", reason="no_answer",
              data=FLAG),
        event("call.failed", call_id=callee, reason="no_answer", data=FLAG),
    ]


async def test_a_call_still_ringing_is_hung_up_and_the_flow_moves_on(flow: Flow) -> None:
    driver = await dialling(flow)
    callee = driver.session.calls["callee"]
    sent = len(driver.provider.calls)
    for stand_in in stand_ins(callee):
        await driver.send(stand_in)
    assert driver.provider.actions[sent:] == ["hangup", "resume", "say"]  # hung up first, then the apology
    assert driver.provider.calls[sent][1]["call_id"] == callee
    assert driver.session.state == "callee_unavailable"
    assert driver.session.call_states[callee] == "ended"
    # the second stand-in went to the flow as the platform's second event would (no transition here)
    notes = [(s.event, s.note) for s in driver.session.trace[-2:]]
    assert notes == [("participant.join_failed", None), ("call.failed", "unmatched")]


async def test_the_platforms_report_of_that_hang_up_is_dropped(flow: Flow) -> None:
    driver = await dialling(flow)
    callee = driver.session.calls["callee"]
    for stand_in in stand_ins(callee):
        await driver.send(stand_in)
    sent = len(driver.provider.calls)
    echo = event("participant.join_failed", call_id=callee, conference_id="conf-1", reason="cancelled")
    await driver.send(echo)
    await driver.send(event("call.failed", call_id=callee, reason="cancelled"))
    assert driver.provider.actions[sent:] == []
    assert [s.note for s in driver.session.trace[-2:]] == ["echo of a ring-timeout hang-up"] * 2


async def test_a_call_that_answered_in_time_is_left_alone(flow: Flow) -> None:
    driver = await dialling(flow)
    callee = driver.session.calls["callee"]
    await driver.send(event("call.answered", call_id=callee))
    await driver.send(event("participant.joined", call_id=callee, conference_id="conf-1"))
    assert driver.session.state == "connected"
    sent = len(driver.provider.calls)
    for stand_in in stand_ins(callee):
        await driver.send(stand_in)
    assert driver.provider.actions[sent:] == []
    assert driver.session.state == "connected"
    assert [s.note for s in driver.session.trace[-2:]] == ["ring timeout: the call had answered or ended"] * 2


async def test_a_failure_the_platform_reported_first_is_not_repeated(flow: Flow) -> None:
    driver = await dialling(flow)
    callee = driver.session.calls["callee"]
    await driver.send(event("participant.join_failed", call_id=callee, conference_id="conf-1", reason="busy"))
    assert driver.session.state == "callee_unavailable"
    sent = len(driver.provider.calls)
    for stand_in in stand_ins(callee):
        await driver.send(stand_in)
    assert driver.provider.actions[sent:] == []


# -- a callout bound under a stand-in id (its answer was lost; Sinch cannot be asked) --------------------
async def dialling_unnamed(flow: Flow) -> tuple[Driver, str]:
    """Dialling, with the callee bound as the Sinch adapter binds a callout whose answer was lost."""
    driver = await dialling(flow)
    placed, standin = driver.session.calls["callee"], standin_id("s:5:1")
    driver.session.calls["callee"] = standin
    driver.session.call_states[standin] = driver.session.call_states.pop(placed)
    return driver, standin


def named(name: str, **fields: object) -> Event:
    return event(name, call_id="real-1", data={PLACED_BY: "s:5:1"}, **fields)


async def test_the_first_callback_names_a_callout_bound_under_a_stand_in(flow: Flow) -> None:
    driver, standin = await dialling_unnamed(flow)
    sent = len(driver.provider.calls)
    await driver.send(named("call.answered"))
    # a call still being dialled is adopted, not let go: its answer reaches the flow and nothing hangs it up
    assert (driver.session.call_states["real-1"], driver.session.trace[-1].note) == ("up", "unmatched")
    await driver.send(named("participant.joined", conference_id="conf-1"))
    assert driver.session.calls["callee"] == "real-1" and standin not in driver.session.call_states
    assert driver.session.state == "connected"
    assert "hangup" not in driver.provider.actions[sent:]


async def test_a_callout_named_after_its_ring_timeout_hung_it_up_is_hung_up(flow: Flow) -> None:
    driver, standin = await dialling_unnamed(flow)
    for stand_in in stand_ins(standin):
        await driver.send(stand_in)
    assert driver.session.state == "callee_unavailable"
    sent = len(driver.provider.calls)
    await driver.send(named("call.answered"))
    assert driver.provider.calls[sent:] == [("hangup", {"call_id": "real-1", "reason": None})]
    assert driver.session.trace[-1].note == "came up after the flow let it go: hung up"
    await driver.send(named("call.failed", reason="hangup"))  # the platform's report of that hang-up
    assert driver.session.state == "callee_unavailable"
    assert driver.session.trace[-1].note == "echo of a ring-timeout hang-up"  # dropped, as for any id
