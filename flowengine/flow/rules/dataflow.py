"""What may hold when each action runs: a may-analysis over the state graph, shared by the rules about
roles (bound with ``as:``) and variables (set by ``set``, ``as:`` or ``vars``).

Entry, exit and transition actions count in the order they run; flow-level handlers leave every state
that does not override them. Flows are small, so a plain worklist to the fixpoint is fast enough.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flowengine.flow.model import Action
from flowengine.flow.rules.context import RuleContext
from flowengine.flow.rules.sites import ActionSite

# What a list of actions makes hold (the roles it binds, the variables it sets).
Gives = Callable[[tuple[Action, ...]], set[str]]


@dataclass
class Facts:
    """Names that may hold on entering each state (``entered``) and while it is active (``inside``)."""

    entered: dict[str, set[str]]
    inside: dict[str, set[str]]
    gives: Gives


def may_hold(ctx: RuleContext, gives: Gives, initially: set[str]) -> Facts:
    flow = ctx.flow
    entered: dict[str, set[str]] = {name: set() for name in flow.states}
    inside: dict[str, set[str]] = {}
    memo: dict[int, set[str]] = {}

    def once(actions: tuple[Action, ...]) -> set[str]:  # states are revisited until the fixpoint
        # keyed by id: these tuples live in the flow as long as the analysis does
        if id(actions) not in memo:
            memo[id(actions)] = gives(actions)
        return memo[id(actions)]

    facts = Facts(entered, inside, gives)
    if flow.initial not in flow.states:
        return facts
    entered[flow.initial] |= initially
    todo, seen = [flow.initial], set[str]()
    while todo:
        name = todo.pop()
        seen.add(name)
        state = flow.states[name]
        edges = ctx.edges[name]
        here = (
            entered[name]
            | once(state.entry)
            | {r for e in edges if e.transition.target is None for r in once(e.transition.actions)}
        )
        inside[name] = here
        leaving = here | once(state.exit)
        for edge in edges:
            target = edge.transition.target
            if target is None or target not in flow.states:
                continue
            arriving = leaving | once(edge.transition.actions)
            if target not in seen or not arriving <= entered[target]:
                entered[target] |= arriving
                todo.append(target)
    return facts


def before(ctx: RuleContext, facts: Facts, site: ActionSite, state: str) -> set[str]:
    """Names that may hold just before ``site`` runs while in (or leaving) ``state``."""
    index = site.path[-1]
    assert isinstance(index, int)
    st = ctx.flow.states[state]
    if site.phase == "entry":
        return facts.entered[state] | facts.gives(st.entry[:index])
    if site.phase == "exit":
        return facts.inside.get(state, set()) | facts.gives(st.exit[:index])
    assert site.via is not None
    earlier = facts.inside.get(state, set()) | facts.gives(site.via.transition.actions[:index])
    return earlier if site.via.transition.target is None else earlier | facts.gives(st.exit)


def states_running(ctx: RuleContext, site: ActionSite) -> list[str]:
    """The reachable states in which ``site`` can run (every one not overriding a flow-level handler)."""
    if site.state is not None:
        return [site.state] if site.state in ctx.reachable else []
    assert site.via is not None
    event = site.via.event
    return [
        name
        for name in ctx.reachable
        if not ctx.flow.states[name].final and event not in ctx.flow.states[name].on
    ]
