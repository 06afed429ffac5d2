"""Rules about what actions lead to: unhandled dial failures, and what the provider can perform."""

from __future__ import annotations

from collections.abc import Iterator

from flowengine.flow.diagnostics import Diagnostic, quote, quoted_list
from flowengine.flow.rules.context import Rule, RuleContext
from flowengine.flow.rules.sites import ActionSite
from flowengine.flow.vocabulary import ACTIONS, ENGINE_ACTIONS, FAILURE_EVENTS

DIAL_ACTIONS = ("dial", "conference_dial")


def _active_after(ctx: RuleContext, site: ActionSite) -> set[str]:
    """The states that may be active once the action has run (where its outcome events arrive)."""
    if site.phase == "exit" and site.state is not None:
        return ctx.successors(site.state)
    if site.via is not None and site.via.transition.target is not None:
        return {site.via.transition.target}
    if site.state is None:  # a flow-level internal transition: it may run in any state
        return set(ctx.flow.states)
    return {site.state}


def unhandled_failures(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[unhandled-failure] a dial's failure event is handled where it can arrive (warning)."""
    if not ctx.graph_known:
        return
    for site in ctx.actions:
        if site.action.name not in DIAL_ACTIONS:
            continue
        failures = sorted(FAILURE_EVENTS.intersection(ACTIONS[site.action.name].outcomes))
        later = ctx.reachable_from(_active_after(ctx, site))
        if any(event in ctx.handled[state] for state in later for event in failures):
            continue
        yield ctx.at_key((*site.path, site.action.name),
                         f"{quoted_list(failures)} from action {quote(site.action.name)} is not handled in any "
                         "state after it: the session will not notice the call failing",
                         "unhandled-failure", "warning")


def unsupported_actions(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[provider] the chosen provider can perform every action (engine-only actions always can)."""
    if ctx.capabilities is None:
        return
    who = f"provider {quote(ctx.provider)}" if ctx.provider else "the chosen provider"
    for site in ctx.actions:
        spec = ACTIONS.get(site.action.name)
        if spec is None or spec.name in ENGINE_ACTIONS or spec.name in ctx.capabilities:
            continue
        yield ctx.at_key((*site.path, spec.name), f"{who} cannot perform action {quote(spec.name)}", "provider")


RULES: tuple[Rule, ...] = (unhandled_failures, unsupported_actions)
