"""What guards and templates see: ``vars``, ``session``, ``event`` and each bound role as ``{id, state}``
(a call's ringing | dialing | up | ended, a conference's active | ended). A role not bound yet is not
there at all: ``agent is defined`` tells."""

from __future__ import annotations

from typing import Any

from flowengine.runtime.events import Event
from flowengine.runtime.session import Session


def session_context(session: Session) -> dict[str, Any]:
    return {
        "id": session.id, "flow": session.flow, "version": session.flow_version, "state": session.state,
        "status": session.status, "created": session.created,
    }


def build_context(session: Session, event: Event | None) -> dict[str, Any]:
    """A fresh context; ``vars`` is the session's own dict, so ``set`` shows through to later commands."""
    calls, conferences = session.call_states, session.conference_states
    context: dict[str, Any] = {
        role: {"id": call_id, "state": calls.get(call_id)} for role, call_id in session.calls.items()
    }
    for role, conference_id in session.conferences.items():
        context[role] = {"id": conference_id, "state": conferences.get(conference_id)}
    context["vars"] = session.vars
    context["session"] = session_context(session)
    context["event"] = event.context() if event is not None else {}
    return context
