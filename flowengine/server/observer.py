"""The service's ``Observer``: what the runtime decided and sent, as metrics and log lines.

One info line per step that entered a state (``session s-... flow f: state a -> b on event e``), one
debug line per event a session did not act on and per command attempt; nothing per ignored event at
info. The lines carry the step's fields (``extra``), which the JSON log format writes out
(``flowengine.logformat``). Counting is done with children looked up once (``Metrics.child``).
"""

from __future__ import annotations

import logging

from flowengine.runtime.observing import HANDLED, is_event, new_steps, step_outcome
from flowengine.runtime.program import TIMER_EVENT, TIMER_PREFIX
from flowengine.runtime.session import Session, Step
from flowengine.server.metrics import Metrics

log = logging.getLogger("flowengine.session")
FINISHED = ("ended", "failed")


class ServiceObserver:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def stepped(self, before: Session, after: Session) -> None:
        metrics = self.metrics
        flow = after.flow
        if before.status == "new" and before.seq == 0 and after.seq > 0:  # its first event taken
            metrics.count("sessions_started", flow)
        previous = None
        for step in new_steps(before, after):
            outcome = self._step(after, step)
            if is_event(step) and not _offered_again(previous, step):
                metrics.count("events", TIMER_EVENT if step.event.startswith(TIMER_PREFIX) else step.event,
                              outcome)
            previous = step
        if after.status in FINISHED and before.status not in FINISHED:
            metrics.count("sessions_ended", flow, after.status)
            log.info("session %s flow %s: %s in state %s", after.id, flow, after.status, after.state,
                     extra={"session": after.id, "flow": flow, "state": after.state})

    def _step(self, session: Session, step: Step) -> str:
        """Count and log one step; what it did with its event (``step_outcome``)."""
        outcome = step_outcome(step)
        if step.target is not None:
            self.metrics.count("transitions", session.flow)
        if step.target is not None:
            log.info("session %s flow %s: state %s -> %s on event %s", session.id, session.flow,
                     step.source or "(start)", step.target, step.event,
                     extra=_fields(session, step, step.target))
        elif outcome != HANDLED and log.isEnabledFor(logging.DEBUG):
            log.debug("session %s flow %s: event %s in state %s not acted on (%s)", session.id, session.flow,
                      step.event, step.source, step.note, extra=_fields(session, step, step.source))
        return outcome

    def commanded(self, session: Session, provider: str, action: str, outcome: str, seconds: float) -> None:
        metrics = self.metrics
        metrics.count("commands", provider, action, outcome)
        metrics.observe("command_seconds", seconds, provider, action)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("session %s: %s %s: %s in %.3f s", session.id, provider, action, outcome, seconds,
                      extra={"session": session.id, "flow": session.flow, "action": action})


def _offered_again(previous: Step | None, step: Step) -> bool:
    """Whether ``step`` is its event offered to ``initial`` right after that event began the session (an
    outbound call's answer: one event, two steps), so it is not counted a second time."""
    return (previous is not None and previous.source is None and previous.target is not None
            and previous.event == step.event)


def _fields(session: Session, step: Step, state: str | None) -> dict[str, str | None]:
    return {"session": session.id, "flow": session.flow, "state": state, "event": step.event}
