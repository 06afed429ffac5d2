"""What may hold when each action runs: a may-analysis over the state graph, shared by the rules about
roles (bound with ``as:``) and variables (set by ``set``, ``as:`` or ``vars``).

Entry, exit and transition actions count in the order they run; flow-level handlers leave every state
that does not override them. Flows are small, so a plain worklist to the fixpoint is fast enough.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flowengine.flow.model import Action
from flowengine.flow.rules.context import RuleContext
from flowengine.flow.rules.sites import ActionSite

# What a list of actions makes hold (the roles it binds, the variables it sets).
Gives = Callable[[tuple[Action, ...]], set[str]]


@dataclass
class Facts:
    """Names that may hold on entering each state (``entered``) and while it is active (``inside``), as
    bit sets over ``bits`` (name -> its bit): a 1,000-state flow binding 100 roles made 100,000-name set
    unions of the worklist a tenth of validating it (issue 15); ints do them in one step."""

    entered: dict[str, int]
    inside: dict[str, int]
    gives: Gives
    bits: dict[str, int] = field(default_factory=dict)

    def mask(self, names: Iterable[str]) -> int:
        """The bit set of ``names`` (a name met for the first time gets the next bit)."""
        found = 0
        for name in names:
            bit = self.bits.get(name)
            if bit is None:
                bit = self.bits[name] = 1 << len(self.bits)
            found |= bit
        return found

    def holds(self, names: int, name: str) -> bool:
        return bool(names & self.bits.get(name, 0))


def may_hold(ctx: RuleContext, gives: Gives, initially: set[str]) -> Facts:
    flow = ctx.flow
    facts = Facts({name: 0 for name in flow.states}, {}, gives)
    entered, inside, memo = facts.entered, facts.inside, dict[int, int]()

    def once(actions: tuple[Action, ...]) -> int:  # states are revisited until the fixpoint
        # keyed by id: these tuples live in the flow as long as the analysis does
        found = memo.get(id(actions))
        if found is None:
            found = memo[id(actions)] = facts.mask(gives(actions))
        return found

    def step(name: str) -> tuple[int, int, list[tuple[str, int]]]:
        """What a state adds while active (entry and internal transitions), on leaving (exit), and each
        transition to another state with what it adds: worked out once, states are revisited."""
        state, edges = flow.states[name], ctx.edges[name]
        here = once(state.entry)
        for edge in edges:
            if edge.transition.target is None:
                here |= once(edge.transition.actions)
        moves = [(edge.transition.target, once(edge.transition.actions)) for edge in edges
                 if edge.transition.target is not None and edge.transition.target in entered]
        return here, once(state.exit), moves

    if flow.initial not in flow.states:
        return facts
    entered[flow.initial] |= facts.mask(initially)
    todo, seen, steps = [flow.initial], set[str](), dict[str, tuple[int, int, list[tuple[str, int]]]]()
    while todo:
        name = todo.pop()
        seen.add(name)
        adds, leaves, moves = steps.get(name) or steps.setdefault(name, step(name))
        here = inside[name] = entered[name] | adds
        leaving = here | leaves
        for target, carried in moves:
            arriving = leaving | carried
            if target not in seen or arriving & ~entered[target]:
                entered[target] |= arriving
                todo.append(target)
    return facts


def before(ctx: RuleContext, facts: Facts, site: ActionSite, state: str) -> int:
    """Names (``facts``' bits) that may hold just before ``site`` runs while in (or leaving) ``state``."""
    index = site.path[-1]
    assert isinstance(index, int)
    st = ctx.flow.states[state]
    if site.phase == "entry":
        return facts.entered[state] | facts.mask(facts.gives(st.entry[:index]))
    if site.phase == "exit":
        return facts.inside.get(state, 0) | facts.mask(facts.gives(st.exit[:index]))
    assert site.via is not None
    earlier = facts.inside.get(state, 0) | facts.mask(facts.gives(site.via.transition.actions[:index]))
    return earlier if site.via.transition.target is None else earlier | facts.mask(facts.gives(st.exit))


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
