"""Compile a Flow once into a ``Program``: one synchronous ``transitions.Machine`` and ready-made commands.

The machine has no models: sessions are driven with ``machine.events[trigger].trigger(session, scratch)``
(about 7 µs a transition, nothing per session). Its callbacks only record into the per-call ``Scratch``:
the guard results, and which ``Route`` fired. The engine turns that into a plan: exit actions of the
source, the transition's actions, entry actions of the target (internal routes: their actions only).

Triggers are the neutral event names, plus ``after:<state>:<key>`` for each ``after`` timer and ``always``
for a state's eventless transitions. A state gets the flow-level ``on`` handlers unless it has its own for
the same event (``Flow.handlers``); a list of guarded transitions is tried in order and the first whose
guard holds wins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from transitions import Machine
from transitions import State as MachineState

from flowengine.errors import ExpressionError
from flowengine.flow.expressions import Compiled, compile_guard
from flowengine.flow.model import Action, Flow, Transition
from flowengine.flow.vocabulary import ALWAYS
from flowengine.runtime.commands import Command
from flowengine.runtime.context import build_context
from flowengine.runtime.events import Event
from flowengine.runtime.session import Session

TIMER_EVENT = "timer"  # a fired timer: Event(TIMER_EVENT, data={"timer": timer id})
# Origin of the engine's own hang-ups (a failed session's clean-up, a ring timeout): sent even where the
# session counts the call as ended, since it is the engine that knows better (a stand-in failure).
CLEANUP = "cleanup."
# Origin of an outbound start's dial (``start: outbound``); ``[from]``: the request gave the caller id.
START_DIAL = "start.dial"


TIMER_PREFIX = "after:"  # of a timer's trigger, and so of its step's event and its id in the timer table


def timer_trigger(state: str, key: str) -> str:
    return f"{TIMER_PREFIX}{state}:{key}"


@dataclass(frozen=True, slots=True)
class Route:
    """One compiled transition out of one state. ``plan`` is everything it leads to, in order."""

    trigger: str
    source: str
    target: str | None
    guard: Compiled | None
    commands: tuple[Command, ...]
    plan: tuple[Command, ...] = ()


@dataclass(frozen=True, slots=True)
class TimerSpec:
    key: str
    delay: float
    trigger: str


@dataclass(slots=True)
class Scratch:
    """What one trigger call records: guard results (in order), which route fired, guard errors."""

    session: Session
    event: Event
    guards: list[tuple[str, bool]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fired: Route | None = None
    _context: dict[str, Any] | None = None

    def check(self, guard: Compiled) -> bool:
        if self._context is None:
            self._context = build_context(self.session, self.event)
        try:
            result = bool(guard.render(self._context))
        except ExpressionError as exc:  # a broken guard is false, and says why in the trace
            result = False
            self.errors.append(str(exc))
        self.guards.append((str(guard.source), result))
        return result


def _checker(guard: Compiled) -> Callable[[Any], bool]:
    def check(event_data: Any) -> bool:
        scratch: Scratch = event_data.args[0]
        return scratch.check(guard)

    return check


def _recorder(route: Route) -> Callable[[Any], None]:
    def record(event_data: Any) -> None:
        scratch: Scratch = event_data.args[0]
        scratch.fired = route

    return record


class Program:
    """A compiled flow: the machine, each state's entry/exit commands, timers and valid triggers."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.final = frozenset(name for name, state in flow.states.items() if state.final)
        self.by_origin: dict[str, Command] = {}  # every command of the flow, by where it is written
        self.entry = {n: self._commands(s.entry, f"states.{n}.entry") for n, s in flow.states.items()}
        self.exit = {n: self._commands(s.exit, f"states.{n}.exit") for n, s in flow.states.items()}
        self.timers = {
            n: tuple(TimerSpec(t.key, t.delay, timer_trigger(n, t.key)) for t in s.after)
            for n, s in flow.states.items()
        }
        self.triggers: dict[str, frozenset[str]] = {}
        # States with ``always`` transitions: a plan that enters one (or runs an internal transition in
        # it) ends with ``settle_command``, so they are tried once its actions have run.
        self.settles = frozenset(n for n, s in flow.states.items() if s.always and not s.final)
        self._cleanup: dict[tuple[str, str, bool], Command] = {}
        self._markers: dict[int, Command] = {}
        self._shared: dict[int, tuple[Compiled | None, tuple[Command, ...]]] = {}
        # An outbound flow's start: its dial with the flow's caller id, and with the request's.
        self.start = self._start_dials(flow)
        self.machine = Machine(
            model=[], states=[MachineState(n, final=s.final) for n, s in flow.states.items()],
            initial=flow.initial, auto_transitions=False, send_event=True, name=flow.name,
        )
        for name in flow.states:
            self.triggers[name] = frozenset(self._add_routes(name))

    def fire(self, session: Session, trigger: str, scratch: Scratch) -> Route | None:
        """Run ``trigger`` on ``session`` (its ``state`` changes if a route fires); the route or None."""
        if trigger in self.triggers.get(session.state, ()):
            self.machine.events[trigger].trigger(session, scratch)
        return scratch.fired

    def cleanup_command(self, action: str, role: str, *, best_effort: bool = False) -> Command:
        """``hangup``/``conference_hangup`` of one role, for ending a failed session (cached per role);
        ``best_effort``: its failure is recorded and the next command still runs (``on_error: continue``)."""
        key = (action, role, best_effort)
        command = self._cleanup.get(key)
        if command is None:
            param = "call" if action == "hangup" else "conference"
            command = self._cleanup[key] = Command.build(
                action, {param: role}, f"{CLEANUP}{role}", on_error="continue" if best_effort else "fail"
            )
        return command

    def start_dial(self, request_from: bool) -> Command:
        """An outbound start's dial: to the request's ``to``, from the request's caller id if it gave
        one (``request_from``), else the flow's."""
        if self.start is None:
            raise ValueError(f"flow {self.flow.name!r} starts on inbound calls: it dials nothing to start")
        return self.start[1] if request_from else self.start[0]

    def settle_command(self, step: int) -> Command:
        """The marker that ends a plan leading into (or staying in) a state with ``always`` transitions:
        the executor asks the engine to try them there (``Engine.settle``). ``step`` counts the eventless
        transitions already taken in a row; being a command, it is written ahead with the plan, so a
        resumed plan still settles."""
        command = self._markers.get(step)
        if command is None:
            command = self._markers[step] = Command.build(ALWAYS, {"step": step}, ALWAYS)
        return command

    # -- compiling ---------------------------------------------------------------------------------------
    def _start_dials(self, flow: Flow) -> tuple[Command, Command] | None:
        if flow.outbound is None:
            return None
        params = {**flow.outbound.dial.params, "to": "{{ event.data.to }}"}
        declared = Command.build("dial", params, START_DIAL)
        given = Command.build("dial", {**params, "from": "{{ event.data['from'] }}"}, f"{START_DIAL}[from]")
        self.by_origin.update({declared.origin: declared, given.origin: given})
        return declared, given

    def _add_routes(self, state: str) -> list[str]:
        if state in self.final:
            return []  # entering a final state ends the session: nothing leaves it
        triggers: list[str] = []
        own = self.flow.states[state].on
        for event, transitions in self.flow.handlers(state).items():
            where = f"states.{state}.on.{event}" if event in own else f"on.{event}"
            self._add(event, state, transitions, where)
            triggers.append(event)
        for timer in self.flow.states[state].after:
            trigger = timer_trigger(state, timer.key)
            self._add(trigger, state, timer.transitions, f"states.{state}.after.{timer.key}")
            triggers.append(trigger)
        if self.flow.states[state].always:
            self._add(ALWAYS, state, self.flow.states[state].always, f"states.{state}.always")
            triggers.append(ALWAYS)
        return triggers

    def _add(self, trigger: str, state: str, transitions: Sequence[Transition], where: str) -> None:
        for index, transition in enumerate(transitions):
            guard, commands = self._compile_transition(transition, f"{where}[{index}].actions")
            if transition.target is not None:
                plan = self.exit[state] + commands + self.entry[transition.target]
            else:
                plan = commands
            route = Route(trigger, state, transition.target, guard, commands, plan)
            self.machine.add_transition(
                trigger, source=state, dest=transition.target,
                conditions=[_checker(guard)] if guard is not None else None, before=[_recorder(route)],
            )

    def _compile_transition(
        self, transition: Transition, origin: str
    ) -> tuple[Compiled | None, tuple[Command, ...]]:
        # Flow-level handlers appear in every state: compile their guard and commands once.
        cached = self._shared.get(id(transition))
        if cached is None:
            guard = compile_guard(transition.when) if transition.when else None
            cached = self._shared[id(transition)] = (guard, self._commands(transition.actions, origin))
        return cached

    def _commands(self, actions: Sequence[Action], origin: str) -> tuple[Command, ...]:
        built = tuple(
            Command.build(a.name, a.params, f"{origin}[{i}]", condition=a.condition, on_error=a.on_error)
            for i, a in enumerate(actions)
        )
        self.by_origin.update((command.origin, command) for command in built)
        return built

