"""Sessions started and ended from outside: the events the service feeds the engine for them.

An outbound flow (``start: outbound``) is started by ``START``, which carries the request (``to``, an
optional ``from``, the variables) and makes the engine plan the flow's dial, written ahead and sent
through the executor like any command, under the session's correlation key, so a start interrupted
mid-way is resumed and reconciled, never dialled twice. The session stays ``new`` until the dialled
call is answered or fails (``begins``); that event then enters ``initial`` and is handled there. A dial
the platform refuses outright begins it as ``call.failed`` (reason ``failed``, the refusal in
``event.data``), so a flow handles every way the call can fail in one place.

``END`` ends a session (``DELETE /api/sessions/{id}``): what it still owns is hung up, best effort.
Both names have no dot, so no custom event (``agent.free``) can take them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from flowengine.flow.vocabulary import OUTBOUND_BEGINS
from flowengine.runtime.events import ACTION_FAILED, Event
from flowengine.runtime.program import START_DIAL
from flowengine.runtime.session import Session

START = "start"
END = "end"
# The trace's note on a start that came again (a retried request): nothing is dialled a second time.
REPEATED = "already started: not dialled again"
# Why a refused dial begins the flow: the neutral reason of a call the platform failed.
REFUSED = "failed"


def start_event(
    session_id: str, to: Any, from_: str | None, variables: Mapping[str, Any], request: str
) -> Event:
    """The event that starts an outbound session. Its id is fixed per session, so a repeated start (a
    retried request) is a duplicate; ``request`` is the request's fingerprint, kept as the session's
    origin so a different request reusing its idempotency key is told apart."""
    data = {"to": to, "from": from_, "vars": dict(variables), "request": request}
    return Event(START, data=data, event_id=f"{START}:{session_id}")


def end_event(reason: str) -> Event:
    return Event(END, data={"reason": reason}, event_id=f"{END}:{uuid.uuid4().hex}")


def repeated(session: Session) -> bool:
    """Whether the session's last step was a start that came again and was dropped (see ``REPEATED``)."""
    last = session.trace[-1] if session.trace else None
    return last is not None and last.event == START and last.note in (REPEATED, "duplicate")


def begins(session: Session, event: Event, role: str) -> bool:
    """Whether ``event`` is the answer or the failure of the call the session dialled to start."""
    call_id = event.call_id
    return event.name in OUTBOUND_BEGINS and call_id is not None and call_id == session.calls.get(role)


def refused_dial(event: Event, role: str) -> Event | None:
    """A start dial that failed for good (``action.failed`` of the start's command), as the failure the
    flow begins on; None for any other event."""
    origin = event.data.get("origin")
    if event.name != ACTION_FAILED or not isinstance(origin, str) or not origin.startswith(START_DIAL):
        return None
    data = {key: event.data.get(key) for key in ("action", "kind", "status", "error")}
    return Event("call.failed", call=role, reason=REFUSED, data=data, event_id=event.event_id, at=event.at)
