"""The engine: ``handle(session, event) -> (session', plan)``. Pure: it decides, the executor acts.

``handle`` never mutates the session it is given; it returns a copy (containers copied, values shared,
which is cheap and safe because values are never changed in place). It fills the event's role names,
drops duplicates, starts a new session on its first event, fires the matching transition on the flow's
compiled machine and keeps the timer table: a state's ``after`` timers are armed on entry and cancelled
on exit. An ``action.failed`` the flow does not handle ends the session as failed, with a plan that hangs
up whatever it still owns.

Eventless transitions (``always``): a plan that enters a state with them, or runs an internal transition
in one, ends with the program's settle marker; once the executor has run the plan's actions (so their
``set`` shows), it calls ``settle``, which tries the state's ``always`` list with the event that led
there. A taken one is a step like any (its plan may end with a marker again); more than ``ALWAYS_LIMIT``
in a row end the session as failed.
"""

from __future__ import annotations

from flowengine.flow.model import Flow
from flowengine.flow.vocabulary import ALWAYS, ALWAYS_LIMIT, CALLER_ROLE
from flowengine.runtime.binding import PLACED_BY, adopt, standin_id
from flowengine.runtime.clock import Clock, SystemClock
from flowengine.runtime.commands import Command, Plan
from flowengine.runtime.events import ACTION_FAILED, Event
from flowengine.runtime.observing import (
    DUPLICATE,
    NOT_BEGUN,
    NOT_OUTBOUND,
    RING_ECHO,
    RING_LATE,
    STALE,
    UNMATCHED,
    late_note,
)
from flowengine.runtime.outbound import END, REPEATED, START, begins, refused_dial
from flowengine.runtime.program import TIMER_EVENT, Program, Scratch, timer_trigger
from flowengine.runtime.session import DIALING, ENDED, RINGING, TRACE_LIMIT, UP, Session, Step

# ``event.data`` flag: an adapter's stand-in for a ring timeout its platform does not enforce (Sinch
# callouts), due at the dial's ``timeout``. The engine hangs the dialled call up, then lets the flow see
# the failure; the platform's own report of that hang-up (its echo) is dropped.
RING_TIMEOUT = "ring_timeout"
_FAILURES = frozenset({"call.failed", "participant.join_failed", "call.finished"})
CALL_RECEIVED = "call.received"
# Events that prove a call is alive now (a late say.finished or a media event about a call that has just
# been hung up proves nothing).
ALIVE = frozenset({"call.answered", "participant.joined"})
FAILED_STATE = "failed"  # where an unhandled action.failed leaves a session (not a flow state)


class Engine:
    """One compiled flow. Build it once per flow and share it between all its sessions."""

    def __init__(
        self, flow: Flow, clock: Clock | None = None, *, trace_limit: int = TRACE_LIMIT,
        version: str | None = None,
    ) -> None:
        self.flow = flow
        self.version = version  # the flow's content hash, which each new session keeps (``flow/version.py``)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.program = Program(flow)
        self.trace_limit = trace_limit  # steps kept per session (scenario runs keep them all)

    def new_session(self, session_id: str) -> Session:
        """A session not yet started: its first event enters the initial state."""
        now = self.clock.now()
        return Session(
            session_id,
            self.flow.name,
            self.flow.version,
            self.flow.initial,
            dict(self.flow.vars),
            created=now,
            updated=now,
            flow_hash=self.version,
        )

    def handle(self, session: Session, event: Event) -> tuple[Session, Plan]:
        """Decide what ``event`` does to ``session``: the new session (a copy) and the plan to run."""
        s = session.copy()
        now = s.updated = self.clock.now()
        key = event.dedupe_key()
        if key in s.seen:
            s.record(Step(now, event.name, s.state, None, note=DUPLICATE), self.trace_limit)
            return s, Plan(event=event)
        if event.name == START and (s.status != "new" or s.seq > 0 or self.flow.outbound is None):
            # However long ago its key left the short memory: a session is started (dialled) once.
            note = REPEATED if self.flow.outbound else NOT_OUTBOUND
            s.record(Step(now, event.name, s.state, None, note=note), self.trace_limit)
            return s, Plan(event=event)
        s.remember(key)
        s.seq += 1
        if event.name == END:
            return self._end(s, event, now)
        if s.status == "new":
            return self._start(s, event, now) if self.flow.outbound is None else self._outbound(s, event, now)
        if s.status == "active" and PLACED_BY in event.data:
            let_go = self._adopt(s, event, now)
            if let_go is not None:
                return let_go
        if event.name in _FAILURES and (event.data.get(RING_TIMEOUT) or _rang_out(s, event.call_id)):
            return self._ring_timeout(s, self._resolve(s, event), now)
        return self._handle(s, self._resolve(s, event), now)

    def settle(self, session: Session, event: Event | None, step: int) -> tuple[Session, Plan]:
        """Try the current state's ``always`` transitions (``step`` taken in a row so far): the session (a
        copy) and the plan of the one taken, or an empty plan if none holds."""
        s = session.copy()
        if s.status != "active" or s.state not in self.program.settles:
            return s, Plan(event=event)
        now = s.updated = self.clock.now()
        source = s.state
        if step >= ALWAYS_LIMIT:
            reason = (f"{step} eventless (always) transitions in a row, the last into {source!r}: a loop "
                      "no guard ends; stopped")
            return self._abort(s, reason, Event(ALWAYS), now)
        scratch = Scratch(s, event if event is not None else Event(ALWAYS))
        route = self.program.fire(s, ALWAYS, scratch)
        note = "; ".join(f"guard error: {e}" for e in scratch.errors) or None
        if route is None:
            if note is not None:  # nothing held because a guard broke: say so; a plain "no" is not news
                s.record(Step(now, ALWAYS, source, None, tuple(scratch.guards), note=note), self.trace_limit)
            return s, Plan(event=event)
        s.seq += 1  # a step of its own: its commands' correlation keys must differ from the last plan's
        s.record(Step(now, ALWAYS, source, route.target, tuple(scratch.guards), note=note), self.trace_limit)
        if route.target is not None:
            _cancel_timers(s, source)
            self._enter(s, route.target, now)
        return s, self._settling(s, Plan(route.plan, event), step + 1)

    def abort(self, session: Session, reason: str, event: Event | None = None) -> tuple[Session, Plan]:
        """End ``session`` as failed; the plan hangs up every call and conference it still owns."""
        s = session.copy()
        s.updated = self.clock.now()
        return self._abort(s, reason, event, s.updated)

    def due_timers(self, session: Session, now: float) -> list[Event]:
        """Timer events due by ``now``, earliest first, to feed back through ``handle``."""
        due = sorted((entry[2], tid) for tid, entry in session.timers.items() if entry[2] <= now)
        return [timer_event(tid, at) for at, tid in due]

    @staticmethod
    def next_wakeup(session: Session) -> float | None:
        """When the earliest armed timer is due (epoch seconds), for the service to schedule."""
        return min((entry[2] for entry in session.timers.values()), default=None)

    # -- steps -----------------------------------------------------------------------------------------
    def _start(self, s: Session, event: Event, now: float) -> tuple[Session, Plan]:
        if event.name == CALL_RECEIVED and event.call_id and CALLER_ROLE not in s.calls:
            s.calls[CALLER_ROLE] = event.call_id
            s.call_states[event.call_id] = RINGING
        event = self._resolve(s, event)
        s.status = "active"
        s.state = initial = self.flow.initial
        s.record(Step(now, event.name, None, initial), self.trace_limit)
        plan = Plan(self.program.entry[initial], event)
        self._enter(s, initial, now)
        if event.name == CALL_RECEIVED:
            return s, self._settling(s, plan, 0)
        # Any other first event starts the session and is then handled in the initial state.
        s, more = self._handle(s, event, now)
        return s, self._settling(s, Plan([*plan, *more], event), 0)

    def _outbound(self, s: Session, event: Event, now: float) -> tuple[Session, Plan]:
        """An outbound session not yet begun: ``START`` plans its dial; the dialled call's answer or
        failure (a refused dial too) begins it; anything else before then is recorded and dropped."""
        assert self.flow.outbound is not None
        role = self.flow.outbound.role
        if event.name == START:
            s.vars.update(event.data.get("vars") or {})
            s.origin = {"start": "outbound", "request": event.data.get("request")}
            s.record(Step(now, START, None, None, note=f"dialling the {role!r} call"), self.trace_limit)
            return s, Plan([self.program.start_dial(bool(event.data.get("from")))], event)
        if PLACED_BY in event.data:  # a call bound under a stand-in id is named by its first webhook
            adopt(s, event)
        failed = refused_dial(event, role)
        if failed is None and not begins(s, event, role):
            note = f"before the {role!r} call was answered or failed{NOT_BEGUN}"
            s.record(Step(now, event.name, None, None, note=note), self.trace_limit)
            return s, Plan(event=event)
        event = failed or self._resolve(s, event)
        if not (event.data.get(RING_TIMEOUT) and s.call_states.get(event.call_id or "") == DIALING):
            return self._start(s, event, now)
        s.remember(f"{RING_TIMEOUT}:{event.call_id}")  # the platform's report of the hang-up is an echo
        s, plan = self._start(s, event, now)
        return s, Plan([self.program.cleanup_command("hangup", role), *plan], event)

    def _end(self, s: Session, event: Event, now: float) -> tuple[Session, Plan]:
        """End the session from outside (the API): every call and conference it still owns is hung up,
        each failure recorded without stopping the rest; its state stays where it was ended."""
        if s.status in ("ended", "failed"):
            s.record(Step(now, END, s.state, None, note=late_note(s.status)), self.trace_limit)
            return s, Plan(event=event)
        commands = [self.program.cleanup_command("hangup", r, best_effort=True) for r in s.live_calls()]
        commands += [self.program.cleanup_command("conference_hangup", r, best_effort=True)
                     for r in s.live_conferences()]
        reason = str(event.data.get("reason") or "ended")
        s.record(Step(now, END, s.state, None, note=reason), self.trace_limit)
        s.status = "ended"
        s.timers.clear()
        return s, Plan(commands, event)

    def _handle(self, s: Session, event: Event, now: float) -> tuple[Session, Plan]:
        if s.status != "active":
            s.record(Step(now, event.name, s.state, None, note=late_note(s.status)), self.trace_limit)
            return s, Plan(event=event)
        _track_calls(s, event)
        trigger = event.name
        if trigger == TIMER_EVENT:
            fired = _take_timer(s, event)
            if fired is None:
                s.record(Step(now, trigger, s.state, None, note=STALE), self.trace_limit)
                return s, Plan(event=event)
            trigger = fired
        source = s.state
        scratch = Scratch(s, event)
        route = self.program.fire(s, trigger, scratch)
        note = "; ".join(f"guard error: {e}" for e in scratch.errors) or None
        if route is None:
            if event.name == ACTION_FAILED:
                return self._abort(s, f"unhandled action.failed: {event.data.get('error')}", event, now)
            s.record(
                Step(now, trigger, source, None, tuple(scratch.guards),
                     note=f"{UNMATCHED}; {note}" if note else UNMATCHED),
                self.trace_limit,
            )
            return s, Plan(event=event)
        s.record(Step(now, trigger, source, route.target, tuple(scratch.guards), note=note), self.trace_limit)
        if route.target is not None:
            _cancel_timers(s, source)
            self._enter(s, route.target, now)
        return s, self._settling(s, Plan(route.plan, event), 0)

    def _settling(self, s: Session, plan: Plan, step: int) -> Plan:
        """``plan``, ending with the settle marker when it leaves the session in a state with ``always``."""
        if s.status != "active" or s.state not in self.program.settles:
            return plan
        if plan and plan[-1].action == ALWAYS:  # already ends with one (a first event's plan)
            return plan
        return Plan([*plan, self.program.settle_command(step)], plan.event)

    def _ring_timeout(self, s: Session, event: Event, now: float) -> tuple[Session, Plan]:
        """A stand-in ring timeout hangs up a call still ringing and is then a failure like any; the
        same timeout's other failure event follows as usual; anything else about that call (it had
        answered or ended by then, or the platform reports the hang-up) is recorded and dropped."""
        flagged = bool(event.data.get(RING_TIMEOUT))
        if flagged and event.call and s.call_states.get(event.call_id or "") == DIALING:
            s.remember(f"{RING_TIMEOUT}:{event.call_id}")
            s, plan = self._handle(s, event, now)
            return s, Plan([self.program.cleanup_command("hangup", event.call), *plan], event)
        if flagged and _rang_out(s, event.call_id):
            return self._handle(s, event, now)
        note = RING_LATE if flagged else RING_ECHO
        s.record(Step(now, event.name, s.state, None, note=note), self.trace_limit)
        return s, Plan(event=event)

    def _adopt(self, s: Session, event: Event, now: float) -> tuple[Session, Plan] | None:
        """A call bound under a stand-in id is named by its first webhook (``binding.adopt``). If the flow
        let it go meanwhile (hung it up, or its ring timeout did) and it shows up alive, it is hung up now;
        otherwise the event goes on as usual (None)."""
        standin = standin_id(str(event.data[PLACED_BY]))
        state = adopt(s, event)
        if state is None or event.call_id is None:
            return None
        if _rang_out(s, standin):  # the platform's report of that hang-up is an echo, as for any id
            s.remember(f"{RING_TIMEOUT}:{event.call_id}")
        role = s.call_role(event.call_id)
        if state != ENDED or event.name not in ALIVE or role is None:
            return None
        s.call_states[event.call_id] = UP
        s.record(Step(now, event.name, s.state, None, note="came up after the flow let it go: hung up"),
                 self.trace_limit)
        return s, Plan([self.program.cleanup_command("hangup", role)], event)

    def _enter(self, s: Session, state: str, now: float) -> None:
        if state in self.program.final:
            s.status = "ended"
            s.timers.clear()
            return
        for spec in self.program.timers[state]:
            s.timers[f"{spec.trigger}#{s.seq}"] = (state, spec.key, now + spec.delay)

    def _abort(self, s: Session, reason: str, event: Event | None, now: float) -> tuple[Session, Plan]:
        commands: list[Command] = [self.program.cleanup_command("hangup", role) for role in s.live_calls()]
        commands += [self.program.cleanup_command("conference_hangup", r) for r in s.live_conferences()]
        s.record(
            Step(now, event.name if event else "abort", s.state, FAILED_STATE, note=reason), self.trace_limit
        )
        s.state, s.status = FAILED_STATE, "failed"
        s.timers.clear()
        return s, Plan(commands, event)

    @staticmethod
    def _resolve(s: Session, event: Event) -> Event:
        """Fill the role names from the ids (an id the session does not own has no role)."""
        call = s.call_role(event.call_id) if event.call_id is not None else event.call
        conference = (
            s.conference_role(event.conference_id) if event.conference_id is not None else event.conference
        )
        if call == event.call and conference == event.conference:
            return event
        # Field by field: dataclasses.replace costs several times more, on every event.
        return Event(
            event.name,
            event.call_id,
            event.conference_id,
            call,
            conference,
            event.reason,
            event.digits,
            event.data,
            event.raw,
            event.event_id,
            event.at,
            event.digest,
        )


def _rang_out(s: Session, call_id: str | None) -> bool:
    """Whether a stand-in ring timeout hung ``call_id`` up (remembered with the session's event keys)."""
    return call_id is not None and f"{RING_TIMEOUT}:{call_id}" in s.seen


def timer_event(timer_id: str, at: float | None = None) -> Event:
    """The event a fired timer becomes; its id makes a second delivery a duplicate."""
    return Event(TIMER_EVENT, data={"timer": timer_id}, event_id=f"timer:{timer_id}", at=at)


def _take_timer(s: Session, event: Event) -> str | None:
    """The trigger of a fired timer, removing it from the table; None if cancelled or stale."""
    entry = s.timers.pop(str(event.data.get("timer")), None)
    if entry is None or entry[0] != s.state:
        return None
    return timer_trigger(entry[0], entry[1])


def _cancel_timers(s: Session, state: str) -> None:
    for tid in [tid for tid, entry in s.timers.items() if entry[0] == state]:
        del s.timers[tid]


def _track_calls(s: Session, event: Event) -> None:
    """Keep the owned calls' and conferences' states, so a failed session hangs up only what is up."""
    name = event.name
    if name == "conference.finished" and event.conference_id in s.conference_states:
        s.conference_states[event.conference_id] = ENDED
    call_id = event.call_id
    current = s.call_states.get(call_id) if call_id is not None else None
    if call_id is None or current is None or current == ENDED:
        return
    if name in ("call.answered", "participant.joined"):
        s.call_states[call_id] = UP
    elif name in ("call.finished", "call.failed"):
        s.call_states[call_id] = ENDED
    elif name == "participant.join_failed" and current == DIALING:
        # A dialled party that fails to join never came up; a call already up stays up.
        s.call_states[call_id] = ENDED
