"""The outbox: a step's plan written ahead of its commands.

Before the executor sends a command that reaches outside the engine (a provider command or an ``http``
request), the session is saved with its new state, the plan and the index of that command
(``Session.outbox``, plain JSON inside the session's own document, so one store write carries both).
Every command before ``next`` is known done — its outcome and bindings are in the same document — and
the command at ``next`` may be in flight. When the plan completes the outbox is cleared by the save that
follows, so a session at rest has none.

Secrets stay out of it: a command whose parameters hold one (an ``http`` URL's ``?token=...``, a
password in a ``log`` line: whatever ``redaction`` masks) is stored redacted and marked ``redacted``;
resuming takes such a command back from the flow by its ``origin``. If the flow no longer has it
(changed since), the command is listed in ``Pending.lost`` and fails instead of going out masked.

A session found with an outbox was interrupted: the engine died, or lost its lock, between writing the
plan and finishing it. Whoever handles the session next (a redelivered webhook, the next event, or the
timer loop once ``due`` passes, on any instance) resumes it at ``next`` before anything else, with
``resumed`` set on that first command so the provider reconciles instead of sending blindly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flowengine.runtime.commands import Command, Plan
from flowengine.runtime.events import Event

OUTBOX_TIMER = "outbox"  # the timer id under which a pending outbox is due for resumption
# Carried out inside the engine: nothing to write ahead (``always``: the engine's own step, see engine.py).
PURE_ACTIONS = frozenset({"set", "log", "always"})
Restore = Callable[[str], "Command | None"]  # origin -> the flow's command written there


@dataclass(frozen=True, slots=True)
class Pending:
    """An interrupted plan: resume ``plan`` at ``next``; ``failures`` is the executor's count of
    ``action.failed`` handled in a row when it was written."""

    plan: Plan
    next: int
    failures: int
    lost: frozenset[int] = frozenset()  # commands whose redacted parameters could not be taken back


def reaches_out(command: Command) -> bool:
    return command.action not in PURE_ACTIONS


def write_ahead(plan: Plan, next_index: int, failures: int, due: float) -> dict[str, Any]:
    """The outbox document for ``plan`` about to send command ``next_index``."""
    return {
        "event": event_to_json(plan.event),
        "commands": [_stored(c) for c in plan],
        "next": next_index,
        "failures": failures,
        "due": due,
    }


def advance(outbox: Mapping[str, Any], next_index: int, due: float) -> dict[str, Any]:
    """The same outbox with command ``next_index`` about to be sent (the plan itself is shared)."""
    return {**outbox, "next": next_index, "due": due}


def pending(outbox: Mapping[str, Any], restore: Restore | None = None) -> Pending:
    """The plan an outbox document holds (its templates compiled again: resumption is rare). A
    redacted command is taken back from the flow: ``restore(origin)`` gives the flow's command."""
    commands: list[Command] = []
    lost: set[int] = set()
    for index, doc in enumerate(outbox["commands"]):
        found = restore(doc["origin"]) if restore is not None and doc.get("redacted") else None
        if found is not None and _stored(found) == doc:
            commands.append(found)
            continue
        if doc.get("redacted"):
            lost.add(index)
        commands.append(Command.build(doc["action"], doc["params"], doc["origin"], condition=doc.get("if"),
                                      on_error=doc.get("on_error", "fail")))
    event = outbox.get("event")
    return Pending(
        Plan(commands, event_from_json(event) if event else None),
        int(outbox["next"]),
        int(outbox["failures"]),
        frozenset(lost),
    )


def _stored(command: Command) -> dict[str, Any]:
    """A command as the outbox keeps it: parameters that hold a secret are kept redacted."""
    params = command.params if command.stored is None else command.stored
    doc: dict[str, Any] = {"action": command.action, "params": dict(params), "origin": command.origin}
    if command.stored is not None:
        doc["redacted"] = True
    if command.condition is not None:
        doc["if"] = command.condition.source
    if command.continues:
        doc["on_error"] = command.on_error
    return doc


def event_to_json(event: Event | None) -> dict[str, Any] | None:
    """What templates can see of the event (``Event.context``) plus what identifies it."""
    if event is None:
        return None
    return {
        "name": event.name, "call_id": event.call_id, "conference_id": event.conference_id,
        "call": event.call, "conference": event.conference, "reason": event.reason,
        "digits": event.digits, "data": dict(event.data), "raw": dict(event.raw),
        "event_id": event.event_id, "at": event.at,
    }


def event_from_json(doc: Mapping[str, Any]) -> Event:
    return Event(
        str(doc["name"]), call_id=doc.get("call_id"), conference_id=doc.get("conference_id"),
        call=doc.get("call"), conference=doc.get("conference"), reason=doc.get("reason"),
        digits=doc.get("digits"), data=dict(doc.get("data") or {}), raw=dict(doc.get("raw") or {}),
        event_id=doc.get("event_id"), at=doc.get("at"),
    )
