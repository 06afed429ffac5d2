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


Node = tuple[str, str | int]  # ("state", name): what enters it; ("site", id): what its action runs under


class Replies:
    """Every action site's arrivals, on ``platform`` (computed once per flow, by a worklist: a node is
    worked out again only when something it reads from has grown)."""

    def __init__(self, ctx: RuleContext, platform: Platform) -> None:
        self._ctx, self._platform = ctx, platform
        self._sites = ctx.actions
        self._leads = {id(site): active_after(ctx, site) for site in self._sites}
        self._soon: dict[tuple[str, str], list[ActionSite]] = {}  # (action, state) -> sites arriving there
        for site in self._sites:
            for state in self._always_closure(self._leads[id(site)]):
                self._soon.setdefault((site.action.name, state), []).append(site)
        self._enter: dict[str, frozenset[Arrival]] = {name: frozenset() for name in ctx.flow.states}
        self._of: dict[int, frozenset[Arrival]] = {id(site): frozenset() for site in self._sites}
        self._enabled: dict[EventSource, frozenset[str]] = {}
        self._incoming: dict[str, list[tuple[str, TransitionSite]]] = {name: [] for name in ctx.flow.states}
        for state, edges in ctx.edges.items():
            for edge in edges:
                if edge.transition.target in self._incoming:
                    self._incoming[str(edge.transition.target)].append((state, edge))
        self._settle()

    def of(self, site: ActionSite) -> frozenset[Arrival]:
        return self._of[id(site)]

    # -- the fixpoint ----------------------------------------------------------------------------------
    def _settle(self) -> None:
        """Where each ``after`` source can arrive depends on where its actions ran (a menu counts only
        in a reply): settle the rest with that fixed, then look again; it only grows, so it ends."""
        dependents = self._dependents()
        for _ in range(MAX_ROUNDS):
            enabled = {s: self._reach(s) for s in self._platform.sources if s.after}
            if enabled == self._enabled:
                return
            self._enabled = enabled
            self._work(dependents)
        raise AssertionError("the reply analysis did not settle")  # it grows within finite sets

    def _work(self, dependents: dict[Node, set[Node]]) -> None:
        todo: list[Node] = [("state", name) for name in self._ctx.flow.states]
        todo += [("site", id(site)) for site in self._sites]
        sites = {id(site): site for site in self._sites}
        queued = set(todo)
        while todo:
            node = todo.pop()
            queued.discard(node)
            _, key = node
            if isinstance(key, str):
                value = frozenset(self._entering(key))
                changed, self._enter[key] = value != self._enter[key], value
            else:
                value = frozenset(self._running(sites[key]))
                changed, self._of[key] = value != self._of[key], value
            if changed:
                for dependent in dependents.get(node, ()):
                    if dependent not in queued:
                        queued.add(dependent)
                        todo.append(dependent)

    def _dependents(self) -> dict[Node, set[Node]]:
        """Node -> the nodes that read it."""
        found: dict[Node, set[Node]] = {}

        def reads(node: Node, *sources: Node) -> None:
            for source in sources:
                found.setdefault(source, set()).add(node)

        for target, incoming in self._incoming.items():
            for state, edge in incoming:
                reads(("state", target), *self._reads(state, edge))
        for site in self._sites:
            if site.phase == "entry" and site.state is not None:
                reads(("site", id(site)), ("state", site.state))
            for state, edge in self._handled(site):
                reads(("site", id(site)), *self._reads(state, edge))
        return found

    def _reads(self, state: str, edge: TransitionSite) -> list[Node]:
        """The nodes ``arrive(state, edge)`` reads."""
        if edge.timer:
            return []
        if edge.event == ALWAYS:
            return [("state", state)]
        return [("site", id(site)) for source in self._platform.sources_of(edge.event)
                if source.inherit is not None for site in self._soon.get((source.inherit, state), ())]

    def _entering(self, state: str) -> set[Arrival]:
        found: set[Arrival] = set()
        if state == self._ctx.flow.initial:
            first = self._platform.first
            found.add(Arrival(first.reply, first.event, None, first.role))
        for source, edge in self._incoming[state]:
            found |= self.arrive(source, edge)
        return found

    def _handled(self, site: ActionSite) -> list[tuple[str, TransitionSite]]:
        """The (state, transition) handlings an exit or transition action runs in."""
        if site.phase == "exit" and site.state is not None:
            return [(site.state, e) for e in self._ctx.edges[site.state] if e.transition.target is not None]
        if site.via is None:
            return []
        if site.via.state is not None:
            return [(site.via.state, site.via)]
        return [(name, site.via) for name, edges in self._ctx.edges.items() if site.via in edges]  # flow's

    def _running(self, site: ActionSite) -> set[Arrival]:
        if site.phase == "entry" and site.state is not None:
            return set(self._enter[site.state])
        return set().union(*(self.arrive(state, edge) for state, edge in self._handled(site)))

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
            if source.inherit is not None:  # at once, in the reply the action ran in
                for site in self._soon.get((source.inherit, state), ()):
                    found.update(Arrival(a.reply, source.event, state) for a in self._of[id(site)])
            elif not source.after or state in self._enabled.get(source, ()):
                found.add(Arrival(source.reply, source.event, state, source.role))
        return found

    def _reach(self, source: EventSource) -> frozenset[str]:
        """The states an ``after`` source can arrive in: on from where one of its actions ran (``in_reply``:
        ran within a reply)."""
        starts: set[str] = set()
        for action in source.after:
            for site in self._ctx.actions:
                if site.action.name == action and (
                        not source.in_reply or any(a.reply is not None for a in self._of[id(site)])):
                    starts |= self._leads[id(site)]
        return frozenset(self._ctx.reachable_from(starts))

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
