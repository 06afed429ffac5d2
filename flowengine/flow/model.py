"""The frozen, typed Flow model: what the loader produces and the runtime compiles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flowengine.flow.vocabulary import CALLER_ROLE


@dataclass(frozen=True, slots=True, order=True)
class Pos:
    """A 1-based line and column in the flow's source; ``file`` names the file when it is not the flow's own
    (a state from an ``include:``d file). Positions compare by line and column only."""

    line: int
    col: int
    file: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Action:
    """One step of an ``entry``/``exit``/transition action list, e.g. ``say: {call: caller, text: hi}``."""

    name: str
    params: Mapping[str, Any]  # as written: strings may hold {{ templates }}
    pos: Pos | None = None
    condition: str | None = None  # ``if``: a bare expression; false skips the action
    on_error: str = "fail"  # ``on_error``: fail (action.failed) | continue (record it and go on)


@dataclass(frozen=True, slots=True)
class Transition:
    """Where an event (or a timer) leads. ``target`` None is an internal transition: actions only."""

    event: str  # a neutral event name, or "after <duration>" for timers
    target: str | None
    when: str | None = None
    actions: tuple[Action, ...] = ()
    pos: Pos | None = None


@dataclass(frozen=True, slots=True)
class Timer:
    """An ``after`` entry: when the state has been active ``delay`` seconds, try ``transitions``."""

    key: str  # as written, e.g. "75s"
    delay: float  # seconds
    transitions: tuple[Transition, ...]
    pos: Pos | None = None


@dataclass(frozen=True, slots=True)
class State:
    name: str
    final: bool = False
    description: str | None = None
    entry: tuple[Action, ...] = ()
    exit: tuple[Action, ...] = ()
    on: Mapping[str, tuple[Transition, ...]] = field(default_factory=dict)
    after: tuple[Timer, ...] = ()
    pos: Pos | None = None
    always: tuple[Transition, ...] = ()  # eventless: tried in order once the state has settled


@dataclass(frozen=True, slots=True)
class Outbound:
    """``start: outbound``: the session is started by dialling (the API), and begins on that call's answer
    or failure. ``dial`` is the action that places it: its ``to`` (and, when the request gives one, its
    ``from``) come from the request, the rest from the flow."""

    role: str  # the dialled call's role
    dial: Action  # ``dial: {to, from, timeout, as: role}`` as the flow declares it (``to`` left out)


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    version: int
    initial: str
    states: Mapping[str, State]
    description: str | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    on: Mapping[str, tuple[Transition, ...]] = field(default_factory=dict)  # flow-level handlers
    source: str = "<flow>"
    outbound: Outbound | None = None  # None: sessions start on an inbound call (``start: inbound``)
    events: tuple[str, ...] = ()  # the custom events the flow declares (``events``)

    @property
    def start_role(self) -> str:
        """The role of the call a session starts with: the inbound ``caller``, or the dialled one."""
        return self.outbound.role if self.outbound is not None else CALLER_ROLE

    def handlers(self, state: str) -> Mapping[str, tuple[Transition, ...]]:
        """Event -> transitions in ``state``: the state's own ``on`` overrides flow-level ``on``."""
        merged = dict(self.on)
        merged.update(self.states[state].on)
        return merged

    def actions(self) -> list[tuple[str, Action]]:
        """Every action in the flow with the state it belongs to (flow-level ones under "")."""
        found: list[tuple[str, Action]] = []
        for transitions in self.on.values():
            found.extend(("", a) for t in transitions for a in t.actions)
        for state in self.states.values():
            found.extend((state.name, a) for a in (*state.entry, *state.exit))
            for transitions in state.on.values():
                found.extend((state.name, a) for t in transitions for a in t.actions)
            for timer in state.after:
                found.extend((state.name, a) for t in timer.transitions for a in t.actions)
            found.extend((state.name, a) for t in state.always for a in t.actions)
        return found
