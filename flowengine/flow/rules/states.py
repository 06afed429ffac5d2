"""Rules about the state graph: targets, reachability, dead ends, final states, timeouts."""

from __future__ import annotations

from collections.abc import Iterator

from flowengine.flow.diagnostics import Diagnostic, alternatives, quote
from flowengine.flow.rules.context import Rule, RuleContext
from flowengine.flow.rules.sites import TransitionSite
from flowengine.flow.source import Path


def _target_path(site: TransitionSite, ctx: RuleContext) -> Path:
    return site.path if isinstance(ctx.raw(site.path), str) else (*site.path, "target")


def undefined_targets(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[target] every transition target names a state."""
    states = ctx.flow.states
    for site in ctx.transitions:
        target = site.transition.target
        if target is not None and target not in states:
            yield ctx.at_value(
                _target_path(site, ctx),
                f"undefined state {quote(target)}{alternatives(target, states)}",
                "target",
            )


def undefined_initial(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[target] ``initial`` names a state."""
    initial = ctx.flow.initial
    if initial not in ctx.flow.states:
        yield ctx.at_value(
            ("initial",),
            f'"initial" names undefined state {quote(initial)}{alternatives(initial, ctx.flow.states)}',
            "target",
        )


def final_with_transitions(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[final] a final state ends the session, so events and timers there would never be handled."""
    for name, state in ctx.flow.states.items():
        if not state.final:
            continue
        for key in ("on", "after", "always"):
            if ctx.raw(("states", name, key)) is not None:
                yield ctx.at_key(
                    ("states", name, key),
                    f"final state {quote(name)} cannot have {quote(key)}: "
                    "the session ends when it is entered",
                    "final",
                )


def unreachable_states(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[unreachable] every state can be reached from ``initial``."""
    if not ctx.graph_known:
        return
    for name in ctx.flow.states:
        if name not in ctx.reachable:
            yield ctx.at_key(
                ("states", name),
                f"state {quote(name)} is unreachable: no transition from the "
                f"initial state {quote(ctx.flow.initial)} leads to it",
                "unreachable",
            )


def _is_dead_end(ctx: RuleContext, name: str) -> bool:
    return not ctx.flow.states[name].final and not (ctx.successors(name) - {name})


def dead_ends(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[dead-end] a non-final state must have a transition to another state."""
    if not ctx.graph_known:
        return
    for name in ctx.flow.states:
        if _is_dead_end(ctx, name):
            yield ctx.at_key(
                ("states", name),
                f"state {quote(name)} has no way out: it is not final and no "
                'event or timer leads to another state; add one, or "type: final"',
                "dead-end",
            )


def no_final(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[no-final] a session must be able to end."""
    finals = [name for name, state in ctx.flow.states.items() if state.final]
    if not finals:
        yield ctx.at_key(
            ("states",),
            'the flow has no final state: mark the state that ends the session with "type: final"',
            "no-final",
        )
    elif ctx.graph_known and not ctx.reachable.intersection(finals):
        yield ctx.at_value(
            ("initial",),
            f"no final state can be reached from the initial state {quote(ctx.flow.initial)}",
            "no-final",
        )


def _passes_through(name: str, ctx: RuleContext) -> bool:
    """An ``always`` branch without ``when`` is always taken: the state never waits."""
    return any(t.when is None for t in ctx.flow.states[name].always)


def missing_timeouts(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[no-timeout] a state that waits for events should give up after a while (warning)."""
    for name, state in ctx.flow.states.items():
        if state.final or state.after or _passes_through(name, ctx):
            continue
        if ctx.graph_known and _is_dead_end(ctx, name):
            continue
        yield ctx.at_key(
            ("states", name),
            f'state {quote(name)} waits for events but has no "after" timer: a '
            "lost event would leave the session stuck",
            "no-timeout",
            "warning",
        )


RULES: tuple[Rule, ...] = (
    undefined_targets,
    undefined_initial,
    final_with_transitions,
    unreachable_states,
    dead_ends,
    no_final,
    missing_timeouts,
)
