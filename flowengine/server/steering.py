"""Sessions driven from outside: a custom event delivered to a session (a CRM saying an agent is free),
and a session ended, its calls and conferences hung up.

An event must be one the session's flow declares (``events``) and the session must be running (begun:
an outbound session whose call is still being dialled has not). Its step is taken like a webhook's,
under the session's lock; the flow handles it like any event. A request may name its event with an
``id``: a retry with the same id is then recognised, store-wide like a webhook's redelivery, and not
acted on twice.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowengine.errors import RequestError
from flowengine.flow.diagnostics import alternatives, quote
from flowengine.runtime.events import Event
from flowengine.runtime.outbound import END, end_event
from flowengine.runtime.session import Session, Step
from flowengine.server.api import unknown_fields

if TYPE_CHECKING:
    from flowengine.server.service import Service

MAX_ID = 255
FIELDS = ("name", "data", "id")
# The shape of a custom event's name (``vocabulary.CUSTOM_EVENT_PATTERN`` also keeps it out of the neutral
# events' namespaces): which names a session takes is what its flow declares.
NAME_PATTERN = r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+$"
_NAME = re.compile(NAME_PATTERN)
ENDED_BY_API = "ended through the API"


@dataclass(frozen=True, slots=True)
class EventRequest:
    name: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Delivered:
    session: Session
    outcome: str  # handled | ignored (nothing in the current state handles it) | duplicate


def parse_event(doc: Any) -> EventRequest:
    """``doc`` (a request's JSON body) as an ``EventRequest``; ``RequestError`` (400) saying what is wrong."""
    if not isinstance(doc, dict):
        raise RequestError("the body must be a JSON object: {name, data?, id?}")
    found = unknown_fields(doc, FIELDS)
    name, data, given_id = doc.get("name"), doc.get("data", {}), doc.get("id")
    if not isinstance(name, str) or not _NAME.match(name):
        found.append("name is required: a custom event the session's flow declares, such as agent.free")
    if not isinstance(data, dict):
        found.append("data must be an object")
    if given_id is not None and not (isinstance(given_id, str) and 0 < len(given_id) <= MAX_ID):
        found.append(f"id must be a string of 1 to {MAX_ID} characters")
    if found:
        raise RequestError("; ".join(found))
    return EventRequest(str(name), dict(data), given_id)


async def deliver_event(service: Service, session_id: str, request: EventRequest) -> Delivered:
    """Hand ``request`` to the session as an event its flow handles like any other."""
    session = await service.sessions.load(session_id)
    if session is None:
        raise RequestError(f"no session {quote(session_id)}", 404)
    declared = (await service.flow_of(session)).events  # as the version the session runs declares them
    if request.name not in declared:
        raise RequestError(f"flow {quote(session.flow)} declares no event {quote(request.name)}"
                           f"{alternatives(request.name, declared)}")
    if session.status != "active":
        raise RequestError(_not_running(session), 409)
    mark = f"api-event:{session_id}:{request.id}" if request.id is not None else None
    if mark is not None and await service.store.claimed(mark):
        return Delivered(session, "duplicate")
    event_id = f"api:{request.id}" if request.id is not None else f"api:{uuid.uuid4().hex}"
    event = Event(request.name, data=request.data, event_id=event_id, at=service.clock.now())
    session = await service.drive(session_id, event, mark=mark)  # from its save on, a retry is a replay
    return Delivered(session, _outcome(session, request.name))


@dataclass(frozen=True, slots=True)
class Ended:
    session: Session
    hung_up: list[str]  # roles of the calls and conferences hung up
    failed: list[str]  # "role: error" for each that could not be (the trace has it too)


async def end_session(service: Service, session_id: str) -> Ended:
    """End the session, hanging up every call and conference it still owns; a session already over is
    left as it is."""
    found = await service.sessions.load(session_id)
    if found is None:
        raise RequestError(f"no session {quote(session_id)}", 404)
    if found.status in ("ended", "failed"):
        return Ended(found, [], [])
    session = await service.drive(session_id, end_event(ENDED_BY_API))
    step = _last(session, END)
    roles = [*found.live_calls(), *found.live_conferences()]  # in the order the end's plan hangs them up
    records = step.commands if step is not None else ()
    done = [role for role, (_, status, _) in zip(roles, records, strict=False) if status == "ok"]
    failed = [f"{role}: {detail}" for role, (_, status, detail) in zip(roles, records, strict=False)
              if status != "ok"]
    return Ended(session, done, failed)


def _not_running(session: Session) -> str:
    if session.status == "new":
        return (f"session {quote(session.id)} has not begun (its call is still being dialled): it cannot "
                "take events yet")
    return f"session {quote(session.id)} has {session.status}: it cannot take events"


def _last(session: Session, event: str) -> Step | None:
    return next((step for step in reversed(session.trace) if step.event == event), None)


def _outcome(session: Session, name: str) -> str:
    step = _last(session, name)
    if step is not None and step.note == "duplicate":
        return "duplicate"
    if step is None or (step.target is None and not step.commands):
        return "ignored"
    return "handled"
