"""Reconciliation: what the platform says of a session's calls and conferences, against what the session
believes, as the neutral events the session missed.

A webhook lost while the engine was down (or never redelivered) leaves a session believing a call is
still up, still ringing, or a conference still open. The service asks the platform (the adapters'
``observe``) and feeds what this module derives through the session like any other event. Only what the
platform can show is recovered: a call's end or answer, a conference's end. A lost ``say.finished`` cannot
be, and the flow's own ``after`` timers remain the safety net there.

Synthesised events carry ``data["reconciled"] = True`` and ids derived from what was observed, so asking
twice gives the same events and the session's duplicate memory drops the second copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flowengine.runtime.binding import is_standin
from flowengine.runtime.events import Event
from flowengine.runtime.session import DIALING, ENDED, RINGING, Session


@dataclass(frozen=True, slots=True)
class CallSeen:
    """One call as the platform shows it. ``up`` and ``ended`` are exclusive; neither means it is still
    being set up (ringing). ``reason`` is a neutral reason (``flow.vocabulary.REASONS``) once ended."""

    up: bool = False
    ended: bool = False
    reason: str | None = None
    answered: bool = False  # ended, but answered first (a call log says so)
    rooms: frozenset[str] = frozenset()  # ended: the conferences it had been in (a call log says so)


@dataclass(frozen=True, slots=True)
class ConferenceSeen:
    """One conference as the platform shows it: over, or the calls in it now."""

    ended: bool = False
    members: frozenset[str] = frozenset()


GONE_CALL = CallSeen(ended=True)  # the platform no longer knows the call: it ended, no reason given
GONE_CONFERENCE = ConferenceSeen(ended=True)


@dataclass(frozen=True, slots=True)
class Observation:
    """What the platform answered for the ids asked about; an id missing here could not be asked (the
    platform failed to answer) and is left as the session believes."""

    calls: Mapping[str, CallSeen]
    conferences: Mapping[str, ConferenceSeen]


def _worth_asking(call_id: str, state: str) -> bool:
    # a call not over, by a platform id: a stand-in is not one, the platform cannot be asked about it
    return state != ENDED and not is_standin(call_id)


def to_observe(session: Session) -> tuple[list[str], list[str]]:
    """The call and conference ids worth asking about: those the session believes are not over."""
    calls = [cid for cid, state in session.call_states.items() if _worth_asking(cid, state)]
    return calls, [cid for cid, state in session.conference_states.items() if state != ENDED]


def anything_to_observe(session: Session) -> bool:
    """Whether ``to_observe`` would name any id, without listing them (asked on every save of a live
    session: loops that stop at the first, where generators cost several times as much to set up)."""
    for call_id, state in session.call_states.items():
        if _worth_asking(call_id, state):
            return True
    return any(state != ENDED for state in session.conference_states.values())


def missed_events(session: Session, seen: Observation) -> list[Event]:
    """The events that bring ``session`` to what the platform shows, answers before ends."""
    answered: list[Event] = []
    ended: list[Event] = []
    for call_id, state in session.call_states.items():
        found = seen.calls.get(call_id)
        if found is None or state == ENDED:
            continue
        if found.ended:
            ended.extend(_ended(session, call_id, state, found))
        elif found.up and state in (RINGING, DIALING):
            answered.append(_event("call.answered", call_id, "answered"))
            if state == DIALING:  # dialled into a room: it joined it as it answered
                answered.extend(_joined(session, call_id, seen))
    for conference_id, conf_state in session.conference_states.items():
        found_conf = seen.conferences.get(conference_id)
        if found_conf is not None and found_conf.ended and conf_state != ENDED:
            ended.append(Event(
                "conference.finished", conference_id=conference_id,
                data={"reconciled": True}, event_id=f"reconciled:{conference_id}:finished",
            ))
    return answered + ended


def _joined(session: Session, call_id: str, seen: Observation) -> list[Event]:
    return [
        _joined_room(call_id, conference_id) for conference_id in session.conferences.values()
        if (found := seen.conferences.get(conference_id)) is not None and call_id in found.members
    ]


def _joined_room(call_id: str, conference_id: str) -> Event:
    return Event(
        "participant.joined", call_id=call_id, conference_id=conference_id, data={"reconciled": True},
        event_id=f"reconciled:{call_id}:joined:{conference_id}",
    )


def _ended(session: Session, call_id: str, state: str, found: CallSeen) -> list[Event]:
    if state != DIALING:  # up, or an inbound caller who gave up while it rang
        return [_event("call.finished", call_id, found.reason or "hangup")]
    if found.answered:  # it came up, joined where it was dialled to, and has ended since
        joined = [_joined_room(call_id, room) for room in session.conferences.values() if room in found.rooms]
        return [
            _event("call.answered", call_id, "answered"), *joined,
            _event("call.finished", call_id, found.reason or "hangup"),
        ]
    reason = found.reason or "failed"
    # A dialled party that never came up: flows wait for either event (the platforms differ), the other
    # one finds no transition.
    # The session does not record which conference a dialled call was for: its first one (flows that
    # dial into a conference have one room in practice).
    room = next(iter(session.conferences.values()), None)
    return [
        _event("participant.join_failed", call_id, reason, room),
        _event("call.failed", call_id, reason),
    ]


def _event(name: str, call_id: str, reason: str, conference_id: str | None = None) -> Event:
    return Event(
        name, call_id=call_id, conference_id=conference_id, reason=reason,
        data={"reconciled": True}, event_id=f"reconciled:{call_id}:{name}",
    )
