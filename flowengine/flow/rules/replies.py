"""Which callback each action can run in, on a platform that takes some commands only in a reply.

Sinch takes ``answer``, ``conference_join`` and a bridging ``dial`` only in the SVAML reply to a callback
(ICE, ACE, PIE) about that call. Whether an action is in such a reply depends on what the session is
handling when it runs: the event of its transition, or, for a state's entry actions, the event that led
into the state, per path. ``Replies`` computes, for every action site, every ``Arrival`` it can run
under: the event, the state it was handled in, and the reply its callback takes (None: none).

Events come from the platform's ``EventSource`` table. Some come only after an action ran (an ACE after
a dial); some follow at once from an action, within the same callback, and so carry the reply that action
ran in (Sinch's ``call.answered`` after ``answer`` is handled before the ICE is answered): those make the
analysis a fixpoint, over finite sets, so it ends. A timer brings no reply; ``always`` keeps the one that
led into its state. An event no source names brings none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flowengine.flow.platform import TIMER, EventSource, Platform
from flowengine.flow.rules.actions import active_after
from flowengine.flow.rules.context import RuleContext
from flowengine.flow.rules.sites import ActionSite, TransitionSite
from flowengine.flow.vocabulary import ALWAYS

MAX_ROUNDS = 1_000  # far more than any flow needs to settle; a bound, not a tuning knob


@dataclass(frozen=True, slots=True)
class Arrival:
    """What the session can be handling when an action runs."""

    reply: str | None  # the reply its callback takes (None: no reply)
    event: str  # the event, or "after <duration>" for a timer
    state: str | None  # where it was handled (None: it started the session)
    role: str | None = None  # the call the callback is about, when always the same


class Replies:
    """Every action site's arrivals, on ``platform`` (computed once per flow)."""

    def __init__(self, ctx: RuleContext, platform: Platform) -> None:
        self._ctx, self._platform = ctx, platform
        self._sites = ctx.actions
        leads = {id(site): active_after(ctx, site) for site in self._sites}
        self._after = {key: frozenset(ctx.reachable_from(states)) for key, states in leads.items()}
        self._soon = {key: self._always_closure(states) for key, states in leads.items()}
        self._enter: dict[str, set[Arrival]] = {name: set() for name in ctx.flow.states}
        self._of: dict[int, frozenset[Arrival]] = {id(site): frozenset() for site in self._sites}
        self._settle()

    def of(self, site: ActionSite) -> frozenset[Arrival]:
        return self._of[id(site)]

    # -- the fixpoint ----------------------------------------------------------------------------------
    def _settle(self) -> None:
        first = self._platform.first
        for _ in range(MAX_ROUNDS):
            before = (sum(len(a) for a in self._enter.values()), sum(len(a) for a in self._of.values()))
            self._enter[self._ctx.flow.initial].add(Arrival(first.reply, first.event, None, first.role))
            for state, edges in self._ctx.edges.items():
                for edge in edges:
                    target = edge.transition.target
                    if target is not None and target in self._enter:
                        self._enter[target] |= self.arrive(state, edge)
            for site in self._sites:
                self._of[id(site)] = frozenset(self._running(site))
            after = (sum(len(a) for a in self._enter.values()), sum(len(a) for a in self._of.values()))
            if after == before:
                return
        raise AssertionError("the reply analysis did not settle")  # it grows within finite sets

    def _running(self, site: ActionSite) -> set[Arrival]:
        if site.phase == "entry" and site.state is not None:
            return set(self._enter[site.state])
        if site.phase == "exit" and site.state is not None:
            leaving = [e for e in self._ctx.edges[site.state] if e.transition.target is not None]
            return set().union(*(self.arrive(site.state, e) for e in leaving))
        if site.via is None:
            return set()
        if site.via.state is not None:
            return self.arrive(site.via.state, site.via)
        states = [name for name, edges in self._ctx.edges.items() if site.via in edges]  # a flow-level one
        return set().union(*(self.arrive(name, site.via) for name in states))

    def arrive(self, state: str, edge: TransitionSite) -> set[Arrival]:
        """What handling ``edge`` in ``state`` can bring."""
        if edge.timer:
            return {Arrival(None, f"{TIMER} {edge.event}", state)}
        if edge.event == ALWAYS:
            return set(self._enter[state])
        sources = self._platform.sources_of(edge.event)
        if not sources:
            return {Arrival(None, edge.event, state)}
        found: set[Arrival] = set()
        for source in sources:
            found |= self._from(source, state)
        return found

    def _from(self, source: EventSource, state: str) -> set[Arrival]:
        if source.inherit is not None:
            return {Arrival(a.reply, source.event, state) for site in self._named(source.inherit)
                    if state in self._soon[id(site)] for a in self._of[id(site)]}
        if source.after and not any(state in self._after[id(site)] for site in self._ran(source)):
            return set()
        return {Arrival(source.reply, source.event, state, source.role)}

    def _ran(self, source: EventSource) -> Iterable[ActionSite]:
        """The sites of ``source.after`` actions (``in_reply``: only those that can run in a reply)."""
        for site in self._named(*source.after):
            if not source.in_reply or any(a.reply is not None for a in self._of[id(site)]):
                yield site

    def _named(self, *actions: str) -> list[ActionSite]:
        return [site for site in self._sites if site.action.name in actions]

    def _always_closure(self, states: Iterable[str]) -> frozenset[str]:
        """``states`` and those their eventless transitions lead to (handled within the same callback)."""
        found = {s for s in states if s in self._ctx.edges}
        todo = list(found)
        while todo:
            for edge in self._ctx.edges[todo.pop()]:
                target = edge.transition.target
                if edge.event == ALWAYS and target in self._ctx.edges and target not in found:
                    assert target is not None
                    found.add(target)
                    todo.append(target)
        return frozenset(found)
