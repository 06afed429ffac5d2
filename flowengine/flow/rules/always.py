"""The ``always-loop`` rule: a cycle of eventless transitions that nothing on it can stop.

``always`` transitions are taken without waiting for an event, so a cycle of them runs within one step
of the session. It stops only when a guard of its states changes its answer, and between two laps
nothing but the actions on the cycle can change what a guard reads: the event is the same, and no other
event is handled meanwhile. The rule, per cycle (a strongly connected part of the graph of ``always``
edges, an internal ``always`` transition being an edge to its own state):

- what the cycle *writes*: the variables its actions ``set`` or bind with ``as:``, and every role its
  actions name or bind (a hang-up changes ``agent.state``);
- what its guards *read*: ``vars.x`` and the roles, in the ``when`` of every ``always`` branch of its
  states (those leaving the cycle too: one of them may become true);
- reported when no guard reads anything the cycle writes: each lap then decides as the first did, so
  once entered the cycle never ends (the engine would stop it after ``ALWAYS_LIMIT`` steps).

It reports only cycles that certainly spin once entered; one whose writes never change a value (``set:
{x: 1}``) is left to the engine's bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from flowengine.flow.diagnostics import Diagnostic, quoted_list
from flowengine.flow.model import Action
from flowengine.flow.rules.context import Rule, RuleContext
from flowengine.flow.rules.roles import role_kinds, role_params
from flowengine.flow.rules.sites import SAVE, TransitionSite
from flowengine.flow.template_analysis import analyse, guard_source
from flowengine.flow.vocabulary import ACTIONS, ALWAYS, ALWAYS_LIMIT

Name = tuple[str, ...]  # ("vars", "x") for a variable, ("agent",) for a role


def _always_edges(ctx: RuleContext) -> dict[str, list[TransitionSite]]:
    return {name: [s for s in sites if s.event == ALWAYS and s.state == name]
            for name, sites in ctx.edges.items()}


def _reach(edges: dict[str, list[TransitionSite]]) -> dict[str, set[str]]:
    """State -> the states one or more ``always`` edges lead to (itself if it is on a cycle)."""
    step = {name: {s.transition.target or name for s in sites} for name, sites in edges.items()}
    reach: dict[str, set[str]] = {}
    for start in step:
        seen: set[str] = set()
        todo = list(step[start])
        while todo:
            state = todo.pop()
            if state in step and state not in seen:
                seen.add(state)
                todo.extend(step[state])
        reach[start] = seen
    return reach


def _cycles(ctx: RuleContext, edges: dict[str, list[TransitionSite]]) -> list[list[str]]:
    """Each cycle's states, in the flow's order, each cycle once."""
    reach = _reach(edges)
    found: list[list[str]] = []
    placed: set[str] = set()
    for name in ctx.flow.states:
        if name in placed or name not in reach[name]:
            continue
        cycle = [n for n in ctx.flow.states if n == name or (n in reach[name] and name in reach[n])]
        placed.update(cycle)
        found.append(cycle)
    return found


def _writes(actions: Iterable[Action]) -> set[Name]:
    written: set[Name] = set()
    for action in actions:
        if action.name == "set" and isinstance(action.params.get("vars"), dict):
            written.update(("vars", str(key)) for key in action.params["vars"])
        spec = ACTIONS.get(action.name)
        binder = spec.param("as") if spec else None
        if binder is not None and binder.kind == "new_var" and isinstance(action.params.get("as"), str):
            written.add(("vars", action.params["as"]))
        if action.name == "http" and isinstance(action.params.get(SAVE), dict):
            written.update(("vars", str(key)) for key in action.params[SAVE])
        written.update((param.name,) for param in role_params(action))
    return written


def _cycle_writes(ctx: RuleContext, cycle: list[str], edges: dict[str, list[TransitionSite]]) -> set[Name]:
    """What running the cycle's edges may change: each edge's actions, with the exit and entry actions
    of the states it leaves and enters."""
    written: set[Name] = set()
    for name in cycle:
        for site in edges[name]:
            target = site.transition.target
            if target is not None and target not in cycle:
                continue
            actions = list(site.transition.actions)
            if target is not None:
                actions += [*ctx.flow.states[name].exit, *ctx.flow.states[target].entry]
            written |= _writes(actions)
    return written


def _reads(when: str, roles: set[str]) -> set[Name]:
    read: set[Name] = set()
    for ref in analyse(guard_source(when)).references:
        if ref[0] == "vars":
            read.add(ref[:2])
        elif ref[0] in roles:
            read.add(ref[:1])
    return read


def _spins(read: set[Name], written: set[Name]) -> bool:
    """No guard reads what the cycle writes (``vars`` read whole reads every variable)."""
    if ("vars",) in read and any(name[0] == "vars" for name in written):
        return False
    return not read & written


def always_loops(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[always-loop] a cycle of ``always`` transitions whose guards read nothing the cycle changes."""
    if not ctx.graph_known:
        return
    edges = _always_edges(ctx)
    roles = set(ctx.shared(role_kinds))
    for cycle in _cycles(ctx, edges):
        guards = [s.transition.when for name in cycle for s in edges[name] if s.transition.when]
        read = set().union(*(_reads(when, roles) for when in guards)) if guards else set()
        if not _spins(read, _cycle_writes(ctx, cycle, edges)):
            continue
        states = quoted_list(cycle, "and")
        why = ('none of them has a "when"' if not guards else
               'no guard reads what the actions on the loop change (such as a variable they "set")')
        yield ctx.at_key(
            ("states", cycle[0], ALWAYS),
            f'the "always" transitions of {"state" if len(cycle) == 1 else "states"} {states} loop '
            f"without waiting for an event and {why}: once entered the loop never ends (the engine would "
            f"end the session as failed after {ALWAYS_LIMIT} steps)",
            "always-loop",
        )


RULES: tuple[Rule, ...] = (always_loops,)
