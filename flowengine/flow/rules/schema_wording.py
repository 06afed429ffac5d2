"""How a schema finding names what it is about: the node, by its place in the flow (``parameter "to" of
action "dial"``, ``state "ringing"``), and the value found there (``the string "yes"``, ``a list``); and
which rule id a place's findings carry.
"""

from __future__ import annotations

from typing import Any

from flowengine.flow.diagnostics import quote
from flowengine.flow.rules.places import Place


def rule_for(place: Place) -> str:
    """The rule id of a finding at ``place``: inside an action's parameters, ``action-params``."""
    return "action-params" if place.kind in ("params", "param") else "schema"


def subject(place: Place) -> str:
    """How a message names the node: ``parameter "to" of action "dial"``, ``"initial"``, ..."""
    if place.field == "start" and place.param:
        return f'parameter {quote(place.param)} of "start: outbound"'
    if place.kind == "param" and place.param:
        return f"parameter {quote(place.param)} of action {quote(place.action)}"
    if place.kind == "params":
        return f"the parameters of action {quote(place.action)}"
    if place.kind == "action":
        return "an action"
    if place.kind == "transition":
        return "a transition"
    if place.kind == "field" and place.field:
        return quote(place.field)
    if place.kind == "state":
        return f"state {quote(place.state)}"
    if place.kind == "actions":
        return quote(place.field or "actions")
    return {
        "root": "a flow",
        "states": '"states"',
        "vars": '"vars"',
        "handlers": '"on"',
        "timers": '"after"',
    }.get(place.kind, "the value")


def describe(value: Any) -> str:
    """A value as a message shows it: ``the string "yes"``, ``a list``, ``the number 5``."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {quote(shown)}"
    return "a list" if isinstance(value, list) else "a mapping"
