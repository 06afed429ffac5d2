"""Rules about what actions lead to: unhandled dial failures, and what the provider can perform."""

from __future__ import annotations

from collections.abc import Iterator

from flowengine.flow.diagnostics import Diagnostic, quote, quoted_list
from flowengine.flow.platform import CANNOT_RULE
from flowengine.flow.rules.context import Rule, RuleContext
from flowengine.flow.rules.sites import ActionSite
from flowengine.flow.vocabulary import ACTIONS, DIAL_ACTIONS, ENGINE_ACTIONS, FAILURE_EVENTS


def active_after(ctx: RuleContext, site: ActionSite) -> set[str]:
    """The states that may be active once the action has run (where its outcome events arrive)."""
    if site.phase == "exit" and site.state is not None:
        return ctx.successors(site.state)
    if site.via is not None and site.via.transition.target is not None:
        return {site.via.transition.target}
    if site.state is None:  # a flow-level internal transition: it may run in any state
        return set(ctx.flow.states)
    return {site.state}


def _leading_to_handler(ctx: RuleContext, event: str) -> set[str]:
    """States from which some path reaches a state that handles ``event`` (a backward search)."""
    before: dict[str, set[str]] = {name: set() for name in ctx.flow.states}
    for name in ctx.flow.states:
        for nxt in ctx.successors(name):
            before[nxt].add(name)
    found = {name for name, events in ctx.handled.items() if event in events}
    todo = list(found)
    while todo:
        for prev in before[todo.pop()] - found:
            found.add(prev)
            todo.append(prev)
    return found


def unhandled_failures(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[unhandled-failure] a dial's failure event is handled where it can arrive (warning)."""
    if not ctx.graph_known:
        return
    handled: dict[str, set[str]] = {}
    for site in ctx.actions:
        if site.action.name not in DIAL_ACTIONS:
            continue
        failures = sorted(FAILURE_EVENTS.intersection(ACTIONS[site.action.name].outcomes))
        for event in failures:
            if event not in handled:
                handled[event] = _leading_to_handler(ctx, event)
        if any(active_after(ctx, site) & handled[event] for event in failures):
            continue
        yield ctx.at_key(
            (*site.path, site.action.name),
            f"{quoted_list(failures)} from action {quote(site.action.name)} is not handled in any "
            "state after it: the session will not notice the call failing",
            "unhandled-failure",
            "warning",
        )


def unsupported_actions(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[provider] the chosen provider can perform every action (engine-only actions always can)."""
    if ctx.capabilities is None:
        return
    who = f"provider {quote(ctx.provider)}" if ctx.provider else "the chosen provider"
    for site in ctx.actions:
        spec = ACTIONS.get(site.action.name)
        if spec is None or spec.name in ENGINE_ACTIONS or spec.name in ctx.capabilities:
            continue
        yield ctx.at_key(
            (*site.path, spec.name), f"{who} cannot perform action {quote(spec.name)}", CANNOT_RULE
        )


RULES: tuple[Rule, ...] = (unhandled_failures, unsupported_actions)
