"""What a step did, in the few words metrics and logs use (the ``Observer`` port's vocabulary), and the
scope every log line written while a session's step runs is about.

A step that fired nothing says why in its trace note; ``step_outcome`` reads that note back into one of
``EVENT_OUTCOMES``, so the engine keeps writing notes for people and nobody parses free text elsewhere.

``SCOPE`` (a context variable) holds the session, flow, state, event and call of the step under way: the
dispatcher sets it while it holds a session, the executor keeps its state current, and a log formatter
may add it to every line (``flowengine.logformat``). Reading it costs nothing unless a line is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from flowengine.flow.vocabulary import ALWAYS
from flowengine.runtime.outbound import REPEATED
from flowengine.runtime.session import Session, Step

# Notes of steps that fired nothing (the engine writes them).
DUPLICATE = "duplicate"
STALE = "stale timer"
UNMATCHED = "unmatched"
NOT_OUTBOUND = "not an outbound flow"
RING_ECHO = "echo of a ring-timeout hang-up"
RING_LATE = "ring timeout: the call had answered or ended"
NOT_BEGUN = ": not handled"  # the end of the note on an event before an outbound call began

HANDLED, LATE = "handled", "late"
# handled: the engine acted on it (a transition, a start, an end); unmatched: no transition takes it here;
# duplicate: the session had taken it already; late: its session (or its call) had ended; stale: a timer
# its state had cancelled. The service adds replayed (a webhook event already handled) and orphan (no
# session owns it).
EVENT_OUTCOMES = (HANDLED, UNMATCHED, DUPLICATE, LATE, "stale")
_BY_NOTE = {
    DUPLICATE: DUPLICATE, REPEATED: DUPLICATE, RING_ECHO: DUPLICATE, STALE: "stale", UNMATCHED: UNMATCHED,
    NOT_OUTBOUND: UNMATCHED, RING_LATE: LATE, "session ended": LATE, "session failed": LATE,
}
# One attempt at a command through a port: ok, already (its intent held already), unknown (it may or may
# not have been done and is not sent again), retried (failed, tried again), failed, unsupported.
COMMAND_OUTCOMES = ("ok", "already", "unknown", "retried", "failed", "unsupported")


def late_note(status: str) -> str:
    """The note on an event that reached a finished session."""
    return f"session {status}"


def step_outcome(step: Step) -> str:
    """What the step did with its event: one of ``EVENT_OUTCOMES``."""
    note = step.note
    if step.target is not None or note is None:
        return HANDLED
    found = _BY_NOTE.get(note)
    if found is not None:
        return found
    if note.startswith(UNMATCHED) or note.endswith(NOT_BEGUN):
        return UNMATCHED
    return HANDLED  # an internal transition's guard errors, an end's reason, a start's dial


def is_event(step: Step) -> bool:
    """Whether the step took an event (an ``always`` step is the engine's own settling)."""
    return step.event != ALWAYS


def new_steps(before: Session, after: Session) -> Sequence[Step]:
    """The steps ``after`` has that ``before`` had not (the trace is bounded: found by identity from the
    end, since a step object is shared between a session and its copies)."""
    trace = after.trace
    if not before.trace:
        return trace
    last = before.trace[-1]
    for index in range(len(trace) - 1, -1, -1):
        if trace[index] is last:
            return trace[index + 1:]
    return trace  # more new steps than the trace keeps


@dataclass(slots=True)
class Scope:
    """What the log lines of a step under way are about."""

    session: str
    flow: str | None = None
    state: str | None = None
    event: str | None = None
    call: str | None = None


SCOPE: ContextVar[Scope | None] = ContextVar("flowengine_log_scope", default=None)
