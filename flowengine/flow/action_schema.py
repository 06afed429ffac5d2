"""The schema of an action: each action's parameters, declared once in ``vocabulary``'s ``ActionSpec``s,
as JSON Schema; the options every action takes (``if``, ``on_error``); and the endpoint a call is made to.
``schema`` puts them in the flow schema's ``$defs``.
"""

from __future__ import annotations

from typing import Any

from flowengine.flow.vocabulary import (
    ACTION_OPTIONS,
    ENDPOINT_KINDS,
    HEADER_NAME_PATTERN,
    IDENTIFIER_PATTERN,
    TEMPLATE_PATTERN,
    ActionSpec,
    Param,
)

_KIND_NOTES = {
    "text": " May hold {{ templates }}.",
    "integer": " A number, or a {{ template }} that renders to one.",
    "duration": " A duration such as `500ms`, `10s`, `2m`.",
    "mapping": " Values may hold {{ templates }}.",
}


def ref(name: str, description: str) -> dict[str, Any]:
    """A reference to one of the flow schema's ``$defs``, described where it is used."""
    return {"$ref": f"#/$defs/{name}", "description": description}


def param_schema(param: Param) -> dict[str, Any]:
    kind = param.kind
    body: dict[str, Any]
    if kind == "text":
        body = {"type": "string"}
    elif kind in ("call", "conference", "new_call", "new_conference", "new_var"):
        body = {"type": "string", "pattern": IDENTIFIER_PATTERN}
    elif kind == "endpoint":
        body = {"$ref": "#/$defs/endpoint"}
    elif kind == "duration":
        body = {"$ref": "#/$defs/duration"}
    elif kind == "integer":
        # A number, or a string that is one {{ expression }} rendering to a number.
        body = {"type": ["integer", "string"], "pattern": TEMPLATE_PATTERN}
        if param.minimum is not None:
            body["minimum"] = param.minimum
    elif kind == "boolean":
        body = {"type": "boolean"}
    elif kind == "enum":
        body = {"type": "string", "enum": list(param.choices)}
    elif kind == "headers":
        body = {"type": "object", "propertyNames": {"pattern": HEADER_NAME_PATTERN},
                "additionalProperties": {"type": "string"}}
    elif kind == "expressions":
        body = {"type": "object", "minProperties": 1, "propertyNames": {"pattern": IDENTIFIER_PATTERN},
                "additionalProperties": {"type": "string", "minLength": 1}}
    else:  # mapping
        body = {"type": "object", "additionalProperties": {"$ref": "#/$defs/value"}}
    body["description"] = param.description + _KIND_NOTES.get(kind, "")
    if param.default is not None:
        body["default"] = param.default
    return body


def _options() -> dict[str, Any]:
    """``if`` and ``on_error``, which every action takes besides its own parameters."""
    return {name: ref(name, text) for name, text in ACTION_OPTIONS.items()}


def action_schema(spec: ActionSpec) -> dict[str, Any]:
    if spec.name == "set":
        # ``set`` takes the variables directly: ``set: {attempts: "{{ vars.attempts + 1 }}"}``.
        return {
            "type": "object",
            "description": spec.description + " Write the variables directly: `set: {attempts: 0}` "
            "(`if` and `on_error` are options, never variable names).",
            "minProperties": 1,
            "propertyNames": {"pattern": IDENTIFIER_PATTERN},
            "properties": _options(),
            "additionalProperties": ref(
                "value", "The variable's new value; strings may hold {{ templates }}."
            ),
        }
    body: dict[str, Any] = {
        "type": "object",
        "description": spec.description,
        "properties": {**{p.name: param_schema(p) for p in spec.params}, **_options()},
        "additionalProperties": False,
    }
    required = [p.name for p in spec.params if p.required]
    if required:
        body["required"] = required
    if spec.one_of:
        body["anyOf"] = [{"required": [name]} for name in spec.one_of]
    return body


def endpoint_schema() -> dict[str, Any]:
    return {
        "description": "Who to call: a phone number (or a {{ template }}), or a mapping with one of "
        + ", ".join(f"`{k}`" for k in ENDPOINT_KINDS)
        + ".",
        "type": ["string", "object"],
        "minLength": 1,
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            kind: {"type": "string", "minLength": 1, "description": text}
            for kind, text in ENDPOINT_KINDS.items()
        },
        "additionalProperties": False,
    }
