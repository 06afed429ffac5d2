"""Reconciliation: the platform's view of a session's calls and conferences becomes the events it missed."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowengine.flow.loader import load_flow_or_raise
from flowengine.flow.model import Flow
from flowengine.runtime.binding import standin_id
from flowengine.runtime.reconcile import (
    GONE_CALL,
    CallSeen,
    ConferenceSeen,
    Observation,
    missed_events,
    to_observe,
)
from flowengine.runtime.session import Session
from flowengine.testing import drive, event

FLOW_FILE = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow_or_raise(FLOW_FILE)


def dialing(flow: Flow) -> Session:
    """The seed flow with the callee being dialled into the room."""
    return Session("s", flow.name, 1, "dialing", calls={"caller": "c1", "callee": "c2"},
                   conferences={"room": "r1"}, call_states={"c1": "up", "c2": "dialing"},
                   conference_states={"r1": "active"}, status="active")


def names(events: list) -> list[tuple[str, str | None, str | None]]:  # type: ignore[type-arg]
    return [(e.name, e.call_id, e.reason) for e in events]


def test_only_what_is_believed_live_is_asked_about(flow: Flow) -> None:
    session = dialing(flow)
    session.call_states["c3"] = "ended"
    assert to_observe(session) == (["c1", "c2"], ["r1"])


def test_a_stand_in_id_is_never_asked_about(flow: Flow) -> None:
    # A callout bound before the platform named it (its answer was lost): the platform has no such id,
    # and would answer that it does not know it, which must not read as "the callee's call ended".
    session = dialing(flow)
    standin = standin_id("s:5:1")
    session.calls["callee"] = standin
    session.call_states[standin] = session.call_states.pop("c2")
    assert to_observe(session) == (["c1"], ["r1"])


def test_nothing_missed_gives_nothing(flow: Flow) -> None:
    seen = Observation({"c1": CallSeen(up=True), "c2": CallSeen()}, {"r1": ConferenceSeen()})
    assert missed_events(dialing(flow), seen) == []


def test_a_lost_hangup_and_a_lost_answer(flow: Flow) -> None:
    seen = Observation({"c1": CallSeen(ended=True, reason="hangup"), "c2": CallSeen(up=True)}, {})
    assert names(missed_events(dialing(flow), seen)) == [
        ("call.answered", "c2", "answered"),  # answers first: a flow sees the order the platform had
        ("call.finished", "c1", "hangup"),
    ]


def test_a_dialled_party_that_never_came_up_fails_both_ways(flow: Flow) -> None:
    seen = Observation({"c2": CallSeen(ended=True, reason="no_answer")}, {})
    events = missed_events(dialing(flow), seen)
    assert names(events) == [
        ("participant.join_failed", "c2", "no_answer"), ("call.failed", "c2", "no_answer"),
    ]
    assert events[0].conference_id == "r1"
    assert all(e.data == {"reconciled": True} for e in events)


def test_a_gone_call_and_an_ended_conference(flow: Flow) -> None:
    seen = Observation({"c1": GONE_CALL}, {"r1": ConferenceSeen(ended=True)})
    assert [(e.name, e.call_id or e.conference_id) for e in missed_events(dialing(flow), seen)] == [
        ("call.finished", "c1"), ("conference.finished", "r1"),
    ]


def test_asking_twice_gives_duplicates_the_session_drops(flow: Flow) -> None:
    seen = Observation({"c2": CallSeen(ended=True, reason="busy")}, {})
    first, again = missed_events(dialing(flow), seen), missed_events(dialing(flow), seen)
    assert [e.dedupe_key() for e in first] == [e.dedupe_key() for e in again]


async def test_the_seed_flow_recovers_from_a_lost_no_answer(flow: Flow) -> None:
    """Driven through the engine: the synthesised failure takes the flow down its own path."""
    driver = await drive(flow, [
        event("call.received", call_id="c1"), event("call.answered", call_id="c1"),
        event("participant.joined", call_id="c1", conference_id="conf-1"),
        event("say.finished", call_id="c1"),
    ])
    assert driver.session.state == "dialing"
    seen = Observation({driver.session.calls["callee"]: CallSeen(ended=True, reason="no_answer")}, {})
    for missed in missed_events(driver.session, seen):
        await driver.send(missed)
    assert driver.session.state == "callee_unavailable"
    assert driver.provider.actions[-2:] == ["resume", "say"]  # the flow tells the caller, as it would


def test_a_dialled_party_that_answered_joined_the_room_the_platform_shows_it_in(flow: Flow) -> None:
    seen = Observation({"c2": CallSeen(up=True)}, {"r1": ConferenceSeen(members=frozenset({"c1", "c2"}))})
    events = missed_events(dialing(flow), seen)
    assert [(e.name, e.call_id, e.conference_id) for e in events] == [
        ("call.answered", "c2", None), ("participant.joined", "c2", "r1"),
    ]


def test_an_answered_call_the_room_does_not_hold_has_not_joined(flow: Flow) -> None:
    seen = Observation({"c2": CallSeen(up=True)}, {"r1": ConferenceSeen(members=frozenset({"c1"}))})
    assert names(missed_events(dialing(flow), seen)) == [("call.answered", "c2", "answered")]


def test_a_dialled_party_that_answered_and_hung_up_meanwhile_went_the_whole_way(flow: Flow) -> None:
    """The call log says it was answered, in the room, then ended: the flow sees it all, in order."""
    log = CallSeen(ended=True, reason="hangup", answered=True, rooms=frozenset({"r1"}))
    seen = Observation({"c2": log}, {})
    assert [(e.name, e.call_id, e.conference_id) for e in missed_events(dialing(flow), seen)] == [
        ("call.answered", "c2", None), ("participant.joined", "c2", "r1"), ("call.finished", "c2", None),
    ]


def every_kind(flow: Flow) -> list:  # type: ignore[type-arg]
    """One of each event reconciliation makes, from one session and one observation."""
    session = dialing(flow)
    session.calls["other"] = "c3"
    session.call_states["c3"] = "dialing"
    seen = Observation(
        {"c1": GONE_CALL, "c2": CallSeen(up=True),
         "c3": CallSeen(ended=True, answered=True, rooms=frozenset({"r1"}))},
        {"r1": ConferenceSeen(ended=True, members=frozenset({"c2"}))},
    )
    return missed_events(session, seen)


def test_what_the_flow_sees_of_each_reconciled_event(flow: Flow) -> None:
    """event.name, call_id, conference_id, reason and data are what guards and templates read."""
    assert [(e.name, e.call_id, e.conference_id, e.reason, dict(e.data)) for e in every_kind(flow)] == [
        ("call.answered", "c2", None, "answered", {"reconciled": True}),
        ("participant.joined", "c2", "r1", None, {"reconciled": True}),
        ("call.finished", "c1", None, "hangup", {"reconciled": True}),  # gone: no reason given
        ("call.answered", "c3", None, "answered", {"reconciled": True}),
        ("participant.joined", "c3", "r1", None, {"reconciled": True}),
        ("call.finished", "c3", None, "hangup", {"reconciled": True}),
        ("conference.finished", None, "r1", None, {"reconciled": True}),
    ]


def test_a_gone_dialled_party_failed(flow: Flow) -> None:
    events = missed_events(dialing(flow), Observation({"c2": GONE_CALL}, {}))
    assert [(e.name, e.reason) for e in events] == [
        ("participant.join_failed", "failed"), ("call.failed", "failed"),
    ]


def test_each_reconciled_event_has_its_own_stable_id(flow: Flow) -> None:
    first, again = every_kind(flow), every_kind(flow)
    ids = [e.event_id for e in first]
    assert all(isinstance(i, str) and i.startswith("reconciled:") for i in ids)
    assert len(set(ids)) == len(ids)  # no two are taken for duplicates of each other
    assert ids == [e.event_id for e in again]


def test_a_gone_plain_dial_fails_with_no_room(flow: Flow) -> None:
    session = dialing(flow)
    session.conferences.clear()
    session.conference_states.clear()
    events = missed_events(session, Observation({"c2": GONE_CALL}, {}))
    assert [(e.name, e.conference_id) for e in events] == [
        ("participant.join_failed", None), ("call.failed", None),
    ]
