"""The validators of the flow schema (``schema.py``): jsonschema-rs for a quick yes on a valid flow, and
Python's ``jsonschema`` for what is wrong with one, with the paths the diagnostics need."""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator

from flowengine.flow.schema import Schema, flow_schema
from flowengine.plainjson import json_place


def _inline(node: Any, defs: Schema) -> Any:
    """Replace each local ``$ref`` by the definition it names (the language has no recursive
    definitions), so validation does not resolve references for every node: a third faster."""
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    inlined = {key: _inline(value, defs) for key, value in node.items() if key != "$defs"}
    ref = inlined.pop("$ref", None)
    if ref is None:
        return inlined
    return {**_inline(defs[ref.removeprefix("#/$defs/")], defs), **inlined}


def validator() -> Draft202012Validator:
    """The validator ``validate`` uses: the published schema with its references inlined, built once."""
    return _validator_of()


@cache  # one per part below: the whole schema, a transition, a scenario
def _validator_of(*part: str) -> Draft202012Validator:
    """A validator of the part of the flow schema at the keys ``part``, its references inlined."""
    schema = node = flow_schema()
    for key in part:
        node = node[key]
    return Draft202012Validator(_inline(node, schema["$defs"]))


def is_transition(value: Any) -> bool:
    """Whether ``value`` is what the schema takes as an event's transition (a target, ``{target, when,
    actions}`` or a list of them): the schema checks no such thing under an event name it refuses."""
    return bool(_validator_of("$defs", "transition").is_valid(value))


def scenario_problem(body: Any) -> str | None:
    """What is wrong with one scenario's body by the flow schema (``validate`` says it with a line), the
    first problem in the order of its place; None when it has the schema's shape."""
    scenario = _validator_of("properties", "scenarios", "additionalProperties")
    errors = sorted(scenario.iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return None
    where = json_place(errors[0].absolute_path)
    return f"{where + ': ' if where else ''}{errors[0].message[:200]}"


@lru_cache(maxsize=1)
def _fast_validator() -> jsonschema_rs.Validator | None:
    """The Rust validator, given the schema with its references: it resolves them when it compiles, and
    inlined the schema is 48 times as large (2.5 MB of JSON), which took a fifth of a first ``validate``
    (issue 15). The same schema for both: every ``$ref``'s siblings are annotations (``description``,
    ``default``: a test holds that), which inlining may override without changing what is valid."""
    try:
        return jsonschema_rs.validator_for(flow_schema())
    except (ValueError, TypeError):  # a schema it cannot compile: the Python validator does all the work
        return None


def surely_valid(doc: Any) -> bool:
    """True when the Rust validator (jsonschema-rs) finds ``doc`` valid against the same schema: a
    1,000-state flow in milliseconds where ``validator()`` takes a third of a second (issue 15). False
    when it finds it invalid or cannot read it (a key that is not a string): then ``validator()``
    says what is wrong, with the paths the diagnostics need."""
    fast = _fast_validator()
    if fast is None:
        return False
    try:
        return bool(fast.is_valid(doc))
    except (ValueError, TypeError, OverflowError):
        return False
