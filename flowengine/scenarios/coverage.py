"""State and transition coverage: which of a flow's states its scenarios entered and which of its
transitions fired, read from the sessions' traces.

A transition is one entry as written in the file: ``states.menu.on.dtmf.captured[2]`` (the third choice
for that event in ``menu``), ``states.menu.after.20s[0]``, or a flow-level ``on.call.finished[0]``, which
counts once however many states it serves. A trace step names the state, the trigger and the guard
results in the order they were tried; the first transition whose guard held (or that has none) is the
one that fired, as the runtime's machine picks it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowengine.flow.model import Flow, Transition
from flowengine.runtime.program import timer_trigger

ANY_STATE = "(any state)"  # the "state" of flow-level handlers in labels


@dataclass(frozen=True, slots=True)
class TransitionRef:
    where: str  # the list it is written in: states.<state>.on.<event>, states.<state>.after.<key>, on.<event>
    index: int  # its place in that list
    state: str  # the state it leaves (ANY_STATE for flow-level handlers)
    trigger: str  # the event, or "after <key>" for a timer
    transition: Transition

    @property
    def key(self) -> str:
        return f"{self.where}[{self.index}]"

    @property
    def label(self) -> str:
        """``menu: dtmf.captured [when vars.attempts < 3] -> menu (line 46)``"""
        t = self.transition
        guard = f" [when {t.when}]" if t.when else ""
        target = t.target if t.target is not None else "(stays: actions only)"
        line = f" (line {t.pos.line}{f' of {t.pos.file}' if t.pos.file else ''})" if t.pos is not None else ""
        return f"{self.state}: {self.trigger}{guard} -> {target}{line}"


@dataclass
class Coverage:
    """One flow's coverage across the runs given to ``measure``."""

    flow: str
    states: list[str]  # every state, in the file's order
    transitions: list[TransitionRef]  # every transition, in the file's order
    entered: set[str] = field(default_factory=set)
    fired: set[str] = field(default_factory=set)  # TransitionRef keys

    @property
    def states_missed(self) -> list[str]:
        return [s for s in self.states if s not in self.entered]

    @property
    def transitions_missed(self) -> list[TransitionRef]:
        return [t for t in self.transitions if t.key not in self.fired]

    @property
    def state_percent(self) -> float:
        return _percent(len(self.states) - len(self.states_missed), len(self.states))

    @property
    def transition_percent(self) -> float:
        return _percent(len(self.transitions) - len(self.transitions_missed), len(self.transitions))

    def below(self, minimum: float) -> bool:
        """Whether state or transition coverage is under ``minimum`` percent."""
        return min(self.state_percent, self.transition_percent) < minimum

    def to_json(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "states": {
                "covered": len(self.states) - len(self.states_missed),
                "total": len(self.states),
                "percent": round(self.state_percent, 1),
                "missed": self.states_missed,
            },
            "transitions": {
                "covered": len(self.transitions) - len(self.transitions_missed),
                "total": len(self.transitions),
                "percent": round(self.transition_percent, 1),
                "missed": [{"key": t.key, "label": t.label} for t in self.transitions_missed],
            },
        }


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 100.0


def transitions_of(flow: Flow) -> list[TransitionRef]:
    """Every transition written in ``flow``, flow-level handlers first, then state by state."""
    refs = [
        TransitionRef(f"on.{event}", i, ANY_STATE, event, t)
        for event, ts in flow.on.items()
        for i, t in enumerate(ts)
    ]
    for name, state in flow.states.items():
        refs += [
            TransitionRef(f"states.{name}.on.{event}", i, name, event, t)
            for event, ts in state.on.items()
            for i, t in enumerate(ts)
        ]
        refs += [
            TransitionRef(f"states.{name}.after.{timer.key}", i, name, f"after {timer.key}", t)
            for timer in state.after
            for i, t in enumerate(timer.transitions)
        ]
    return refs


def _choices(flow: Flow) -> dict[tuple[str, str], list[TransitionRef]]:
    """(state, trigger as the trace writes it) -> the transitions tried, in order."""
    by_key: dict[str, list[TransitionRef]] = {}
    for ref in transitions_of(flow):
        by_key.setdefault(ref.where, []).append(ref)
    choices: dict[tuple[str, str], list[TransitionRef]] = {}
    for name, state in flow.states.items():
        if state.final:
            continue  # nothing leaves a final state
        for event in flow.handlers(name):
            where = f"states.{name}.on.{event}" if event in state.on else f"on.{event}"
            choices[(name, event)] = by_key[where]
        for timer in state.after:
            choices[(name, timer_trigger(name, timer.key))] = by_key[f"states.{name}.after.{timer.key}"]
    return choices


def _picked(tried: Sequence[TransitionRef], guards: Sequence[Any]) -> TransitionRef | None:
    """The transition the machine took, given the guard results it recorded in order."""
    results = iter(bool(g[1]) for g in guards)
    for ref in tried:
        if ref.transition.when is None or next(results, False):
            return ref
    return None


def fired_in(flow: Flow, session: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(states entered, keys of the transitions fired) by one session, in order, from its trace."""
    choices = _choices(flow)
    entered: list[str] = []
    fired: list[str] = []
    for step in session.get("trace", []):
        target, note = step.get("to"), step.get("note")
        if target in flow.states:
            entered.append(target)
        tried = choices.get((step.get("from"), step.get("event")))
        ref = _picked(tried, step.get("guards") or ()) if tried else None
        # Steps that fired nothing carry a note saying why (unmatched, duplicate, stale timer...);
        # one that fired carries none, or the guard errors met on the way.
        took = target is not None or not note or str(note).startswith("guard error")
        if ref is not None and ref.transition.target == target and took:
            fired.append(ref.key)
    return entered, fired


def measure(flow: Flow, sessions: Iterable[Mapping[str, Any]]) -> Coverage:
    coverage = Coverage(flow.name, list(flow.states), transitions_of(flow))
    for session in sessions:
        entered, fired = fired_in(flow, session)
        coverage.entered.update(entered)
        coverage.fired.update(fired)
    return coverage
