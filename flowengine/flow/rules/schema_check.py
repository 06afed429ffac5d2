"""The schema check: the flow document against the flow schema, each error reported as a house-style
diagnostic at the node it is about (``schema_messages`` words them), and whether the flow is still sound
enough in shape for the semantic rules.
"""

from __future__ import annotations

from typing import Any, cast

from jsonschema.exceptions import ValidationError

from flowengine.flow.diagnostics import Diagnostic
from flowengine.flow.model import Pos
from flowengine.flow.rules.places import place_of
from flowengine.flow.rules.schema_messages import Finding, translate
from flowengine.flow.schema_validation import is_transition, surely_valid, validator
from flowengine.flow.source import SourceMap


def check_schema(doc: Any, source_map: SourceMap) -> tuple[list[Diagnostic], bool]:
    """Diagnostics for ``doc`` against the flow schema, and whether the flow is still sound enough in
    shape for the semantic rules (errors only inside action parameters, event names, timer keys)."""
    diagnostics: list[Diagnostic] = []
    sound = True
    if surely_valid(doc):  # the usual case, fast; otherwise the Python validator finds each error
        return diagnostics, sound
    for error in validator().iter_errors(doc):
        for finding in translate(error):
            pos = source_map.key_pos(finding.path) if finding.at_key else source_map.value_pos(finding.path)
            diagnostics.append(_diagnostic(pos.file or source_map.path, pos, finding))
        sound = sound and _is_local(error)
    return diagnostics, sound


def _diagnostic(path: str, pos: Pos, finding: Finding) -> Diagnostic:
    return Diagnostic(path, pos.line, pos.col, "error", finding.message, finding.rule)


def _is_local(error: ValidationError) -> bool:
    """Errors that leave the state graph intact: ``build_flow`` can still read the flow."""
    place = place_of(tuple(error.absolute_path))
    if place.kind in ("params", "param"):
        return True
    if place.kind == "action":
        return error.validator == "additionalProperties" and len(cast(Any, error.instance)) == 1
    if place.kind == "handlers" and error.validator == "additionalProperties":
        # An unknown event: the schema looks no further into its value, which ``build_flow`` reads all
        # the same, so the graph is intact only if every value has a transition's shape.
        return all(is_transition(value) for value in cast(Any, error.instance).values())
    if place.kind in ("handlers", "timers"):  # bad durations: the mapping itself is fine
        return error.validator in ("additionalProperties", "pattern")
    if place.kind == "vars":  # a bad variable name
        return error.validator == "pattern"
    return place.kind == "field" and place.state is None and place.event is None and place.field in (
        "flow",
        "description",
    )
