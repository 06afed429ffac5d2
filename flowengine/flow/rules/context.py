"""What every semantic rule receives: the flow, its document and positions, and shared analyses."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from flowengine.flow.diagnostics import Diagnostic, Severity
from flowengine.flow.model import Flow, Pos
from flowengine.flow.platform import Platform
from flowengine.flow.rules.sites import (
    ActionSite,
    Template,
    TransitionSite,
    action_sites,
    lookup,
    templates,
    transition_sites,
)
from flowengine.flow.source import Path, SourceMap
from flowengine.flow.vocabulary import ALWAYS

T = TypeVar("T")


@dataclass
class RuleContext:
    flow: Flow
    doc: Mapping[str, Any]
    source_map: SourceMap
    capabilities: frozenset[str] | None = None
    provider: str | None = None
    platform: Platform | None = None  # the chosen provider's capability table: where actions may run, ...
    _shared: dict[Callable[..., Any], Any] = field(default_factory=dict, repr=False)

    def shared(self, analysis: Callable[[RuleContext], T]) -> T:
        """``analysis(self)``, computed once per flow however many rules ask for it."""
        if analysis not in self._shared:
            self._shared[analysis] = analysis(self)
        result: T = self._shared[analysis]
        return result

    @cached_property
    def transitions(self) -> list[TransitionSite]:
        return transition_sites(self.flow, self.doc)

    @cached_property
    def actions(self) -> list[ActionSite]:
        return action_sites(self.flow, self.doc, self.transitions)

    @cached_property
    def templates(self) -> list[Template]:
        return list(templates(self.actions, self.transitions, self.doc))

    @cached_property
    def edges(self) -> dict[str, list[TransitionSite]]:
        """State -> the transitions that can leave it: its own handlers and timers, plus the flow-level
        handlers it does not override. Final states have none (the session has ended)."""
        own: dict[str | None, list[TransitionSite]] = {}
        for site in self.transitions:
            own.setdefault(site.state, []).append(site)
        edges: dict[str, list[TransitionSite]] = {}
        for name, state in self.flow.states.items():
            if state.final:
                edges[name] = []
                continue
            inherited = [s for s in own.get(None, []) if s.event not in state.on]
            edges[name] = [*own.get(name, []), *inherited]
        return edges

    @cached_property
    def handled(self) -> dict[str, set[str]]:
        """State -> the events it has a handler for (its own or flow-level)."""
        return {name: {s.event for s in sites if not s.timer and s.event != ALWAYS}
                for name, sites in self.edges.items()}

    def successors(self, state: str) -> set[str]:
        return self._successors.get(state, set())

    @cached_property
    def _successors(self) -> dict[str, set[str]]:
        states = self.flow.states
        found: dict[str, set[str]] = {}
        for name, sites in self.edges.items():
            targets = (site.transition.target for site in sites)
            found[name] = {t for t in targets if t is not None and t in states}
        return found

    def reachable_from(self, starts: Iterable[str]) -> set[str]:
        seen = {s for s in starts if s in self.flow.states}
        todo = list(seen)
        while todo:
            for nxt in self.successors(todo.pop()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    @cached_property
    def graph_known(self) -> bool:
        """Every target and ``initial`` name a state. When not, the ``target`` rule says so, and rules
        that follow the graph stay quiet rather than add follow-on noise (unreachable, dead-end, ...)."""
        states = self.flow.states
        return self.flow.initial in states and all(
            s.transition.target is None or s.transition.target in states for s in self.transitions
        )

    @cached_property
    def reachable(self) -> set[str]:
        return self.reachable_from([self.flow.initial])

    def raw(self, path: Path) -> Any:
        """The value as written in the document (``set`` parameters are not normalised here)."""
        return lookup(self.doc, path)

    def at(self, pos: Pos, message: str, rule: str, severity: Severity = "error") -> Diagnostic:
        return Diagnostic(pos.file or self.source_map.path, pos.line, pos.col, severity, message, rule)

    def at_key(self, path: Path, message: str, rule: str, severity: Severity = "error") -> Diagnostic:
        return self.at(self.source_map.key_pos(path), message, rule, severity)

    def at_value(self, path: Path, message: str, rule: str, severity: Severity = "error") -> Diagnostic:
        return self.at(self.source_map.value_pos(path), message, rule, severity)


Rule = Callable[[RuleContext], Iterable[Diagnostic]]
