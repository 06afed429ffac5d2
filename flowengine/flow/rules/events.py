"""Rules about custom events and how a session starts: a custom event a flow handles is declared under
``events``; an outbound flow's initial state handles what it begins on (the dialled call's answer or
failure)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from flowengine.flow.diagnostics import Diagnostic, did_you_mean, quote, quoted_list
from flowengine.flow.rules.context import Rule, RuleContext
from flowengine.flow.vocabulary import CUSTOM_EVENT_PATTERN, EXPRESSION_GLOBALS, START_OUTBOUND

_CUSTOM = re.compile(CUSTOM_EVENT_PATTERN)

# What an outbound flow's initial state should handle: the call answered, and the call not answered.
_BEGINS = ("call.answered", "call.failed")


def undeclared_events(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[event] every custom event handled under ``on`` is declared under ``events``."""
    declared = set(ctx.flow.events)
    for site in ctx.transitions:
        name = site.event
        # Other names are neutral events, or unknown ones the schema check reports.
        if site.timer or name in declared or not _CUSTOM.match(name):
            continue
        base = ("on",) if site.state is None else ("states", site.state, "on")
        hint = did_you_mean(name, declared)
        yield ctx.at_key(
            (*base, name),
            f"custom event {quote(name)} is not declared{hint} (list the custom events the flow handles "
            f"under \"events\": events: [{name}])",
            "event",
        )


def unused_events(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[event] (warning) a declared custom event that no state handles changes nothing when delivered."""
    handled = {site.event for site in ctx.transitions}
    for index, name in enumerate(ctx.flow.events):
        if name not in handled:
            yield ctx.at_value(("events", index), f"custom event {quote(name)} is declared but no state "
                               "handles it: delivered, it would change nothing", "event", "warning")


def outbound_start(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[outbound-start] an outbound flow's role is a free name, and its initial state handles the answer
    and the failure of the call it dials (warning): else the session waits for what never comes."""
    outbound = ctx.flow.outbound
    if outbound is None:
        return
    if outbound.role in EXPRESSION_GLOBALS:  # only a role named in full can be one (the default is not)
        message = f"{quote(outbound.role)} is reserved in templates; choose another role name"
        yield ctx.at_value(("start", START_OUTBOUND, "as"), message, "role")
    initial = ctx.flow.initial
    if not ctx.graph_known:
        return
    missing = [name for name in _BEGINS if name not in ctx.handled.get(initial, set())]
    if missing:
        yield ctx.at_value(
            ("initial",),
            f"an outbound session begins in {quote(initial)} on the dialled call's {quoted_list(_BEGINS)}, "
            f"but it handles no {quoted_list(missing)}: such a session would wait for nothing",
            "outbound-start",
            "warning",
        )


RULES: tuple[Rule, ...] = (undeclared_events, unused_events, outbound_start)
