"""Rules from the chosen platform's capability table (``flow/platform.py``): where each action may run,
which parameters the platform takes, which timeouts it cannot hold. They run only when a platform is
given (``validate --provider``, ``serve``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from flowengine.flow.diagnostics import Diagnostic, quote
from flowengine.flow.platform import TIMER, Constraint, Platform, breaks, endpoint_kind, literal
from flowengine.flow.rules.context import Rule, RuleContext
from flowengine.flow.rules.replies import Arrival, Replies
from flowengine.flow.rules.sites import ActionSite
from flowengine.flow.source import Path
from flowengine.flow.vocabulary import START_OUTBOUND

SHOWN = 3  # arrivals named in one message; more are counted


def _who(platform: Platform) -> str:
    return f"provider {quote(platform.name)}"


def _text(row: Constraint) -> str:
    return row.text.replace("`", '"')


def _params(ctx: RuleContext, site: ActionSite) -> Mapping[str, Any]:
    raw = ctx.raw((*site.path, site.action.name))
    return raw if isinstance(raw, Mapping) else {}


def _written(ctx: RuleContext) -> Iterator[tuple[str, Path, Mapping[str, Any]]]:
    """Every action as written (name, path of its parameters, parameters), an outbound start's dial among
    them: the platform places that call like any ``dial``, so its parameters and timeout are checked alike."""
    for site in ctx.actions:
        yield site.action.name, (*site.path, site.action.name), _params(ctx, site)
    if ctx.flow.outbound is not None:
        path: Path = ("start", START_OUTBOUND)
        raw = ctx.raw(path)
        yield "dial", path, raw if isinstance(raw, Mapping) else {}


def _replies(ctx: RuleContext) -> Replies:
    assert ctx.platform is not None
    return Replies(ctx, ctx.platform)


def _describe(arrival: Arrival, role_mismatch: bool) -> str:
    if arrival.state is None:
        told = f"{quote(arrival.event)}, which starts the session"
    elif arrival.event.startswith(f"{TIMER} "):
        told = f"the {quote(arrival.event.removeprefix(TIMER + ' '))} timer in state {quote(arrival.state)}"
    else:
        told = f"{quote(arrival.event)} in state {quote(arrival.state)}"
    return f"{told} (about call {quote(arrival.role)})" if role_mismatch else told


def _outside(row: Constraint, arrivals: frozenset[Arrival], params: Mapping[str, Any]) -> list[str]:
    """The arrivals under which the action would not be in a reply it may go in, described."""
    role = literal(params.get(row.about))
    found = []
    for arrival in sorted(arrivals, key=lambda a: (a.state or "", a.event, a.reply or "")):
        mismatch = arrival.role is not None and isinstance(role, str) and role != arrival.role
        if arrival.reply not in row.replies or mismatch:
            found.append(_describe(arrival, mismatch))
    return list(dict.fromkeys(found))


def misplaced_actions(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[provider-place] an action the platform takes only in some callback's reply runs only there."""
    platform = ctx.platform
    if platform is None or not platform.has_places or not ctx.graph_known:
        return
    replies = ctx.shared(_replies)
    for site in ctx.actions:
        params = _params(ctx, site)
        for row in platform.rows(site.action.name, "place"):
            outside = _outside(row, replies.of(site), params) if row.applies(params) else []
            if not outside:
                continue
            named = outside[:SHOWN] + ([f"{len(outside) - SHOWN} more"] if len(outside) > SHOWN else [])
            where = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
            yield ctx.at_key(
                (*site.path, site.action.name),
                f"{_who(platform)} runs {quote(site.action.name)} {_text(row)}, but here it can run on "
                f"{where}, which {'brings' if len(outside) == 1 else 'bring'} no such reply", row.rule,
            )


def _lists(ctx: RuleContext) -> dict[tuple[Any, ...], list[ActionSite]]:
    """Action sites grouped by the list they are written in, in order."""
    lists: dict[tuple[Any, ...], list[ActionSite]] = {}
    for site in ctx.actions:
        lists.setdefault(site.path[:-1], []).append(site)
    return lists


def closed_replies(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[provider-place] a reply carries one action: nothing that needs the reply follows it on that call."""
    platform = ctx.platform
    if platform is None or not any(c.kind == "closed" for c in platform.constraints) or not ctx.graph_known:
        return
    replies = ctx.shared(_replies)
    for sites in _lists(ctx).values():
        closed: dict[str, str] = {}  # call role -> the action that closed the reply about it
        for site in sites:
            params = _params(ctx, site)
            for row in platform.rows(site.action.name, "place"):
                role = literal(params.get(row.about))
                if (row.applies(params) and isinstance(role, str) and role in closed
                        and not _outside(row, replies.of(site), params)):
                    yield ctx.at_key(
                        (*site.path, site.action.name),
                        f"{_who(platform)} cannot run {quote(site.action.name)} here: a reply carries one "
                        f"action, and {quote(closed[role])} before it is the one of the reply about call "
                        f"{quote(role)}", "provider-place",
                    )
            about = platform.closes.get(site.action.name)
            role = literal(params.get(about)) if about is not None else None
            if isinstance(role, str) and site.action.condition is None:
                closed.setdefault(role, site.action.name)


def _shown(row: Constraint, value: Any) -> str:
    if row.kinds:
        return f"a {endpoint_kind(value)} endpoint"
    if isinstance(value, bool):
        return "true" if value else "false"
    return quote(value)


def untaken_params(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[provider-param] the platform takes the parameter, and the literal value given."""
    platform = ctx.platform
    if platform is None:
        return
    for action, path, params in _written(ctx):
        for row in platform.rows(action, "param"):
            if row.param is None or not row.applies(params) or not breaks(row, params):
                continue
            yield ctx.at_value(
                (*path, row.param),
                f"{_who(platform)} cannot run {quote(action)} with {quote(row.param)} "
                f"{_shown(row, params[row.param])}: {_text(row)}", row.rule,
            )


def capped_timeouts(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[provider-timeout] (warning) a timeout longer than the platform holds is cut short."""
    platform = ctx.platform
    if platform is None:
        return
    for action, path, params in _written(ctx):
        for row in platform.rows(action, "timeout"):
            if row.reported and row.param is not None and breaks(row, params):
                yield ctx.at_value((*path, row.param),
                                   f"{_who(platform)} {_text(row)}", row.rule, "warning")


RULES: tuple[Rule, ...] = (misplaced_actions, closed_replies, untaken_params, capped_timeouts)
