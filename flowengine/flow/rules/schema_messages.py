"""What a schema error says: jsonschema's errors translated into house-style findings about one node.

One small translator per JSON Schema keyword. The place of the error (``places.place_of``) picks the
rule id and the wording: an unknown key is an unknown *event* under ``on`` [event], an unknown *action*
in an action list [action], an unknown *parameter* inside one [action-params].
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from flowengine.flow.diagnostics import alternatives, quote, quoted_list
from flowengine.flow.rules.places import Place, place_of
from flowengine.flow.rules.schema_wording import describe, rule_for, subject
from flowengine.flow.schema import START_PATTERN
from flowengine.flow.source import Path
from flowengine.flow.vocabulary import (
    ACTIONS,
    CUSTOM_EVENT_PATTERN,
    DURATION_PATTERN,
    EVENT_NAMESPACES,
    EVENTS,
    FLOW_NAME_PATTERN,
    IDENTIFIER_PATTERN,
    STATE_NAME_PATTERN,
    TEMPLATE_PATTERN,
    parse_duration,
)

# Plain scalars YAML 1.1 read as booleans; YAML 1.2 (and flowengine) reads them as strings.
YAML11_BOOLEANS = frozenset({"yes", "no", "on", "off", "y", "n"})
_DURATION_HINT = 'write a number and a unit (ms, s, m or h), such as "500ms", "10s" or "2m"'


@dataclass(frozen=True, slots=True)
class Finding:
    path: Path  # the node the finding is about
    at_key: bool  # point at the key naming ``path`` (unknown keys) rather than at its value
    message: str
    rule: str = "schema"


def translate(error: ValidationError) -> list[Finding]:
    path = tuple(error.absolute_path)
    place = place_of(path)
    if "propertyNames" in error.schema_path:
        return [_property_name(place, path, str(_instance(error)))]
    translator = _TRANSLATORS.get(str(error.validator))
    if translator is None:
        return [Finding(path, False, _lower(error.message), rule_for(place))]
    return list(translator(error, place, path))


def _instance(error: ValidationError) -> Any:
    """The offending value (jsonschema types it loosely)."""
    return cast(Any, error.instance)


def _expected(error: ValidationError) -> Any:
    """The failed keyword's value in the schema: the required names, the pattern, the enum, ..."""
    return cast(Any, error.validator_value)


def _required(error: ValidationError, place: Place, path: Path) -> Iterator[Finding]:
    present = _instance(error) if isinstance(_instance(error), dict) else {}
    for name in _expected(error):
        if name in present:
            continue
        if place.kind == "params":
            yield Finding(
                path,
                True,
                f"action {quote(place.action)} is missing the required parameter {quote(name)}",
                "action-params",
            )
        elif place.kind == "root":
            yield Finding(path, False, f"missing required key {quote(name)} at the top of the flow")
        else:
            yield Finding(path, True, f"{subject(place)} is missing the required key {quote(name)}")


def _any_of(error: ValidationError, place: Place, path: Path) -> Iterator[Finding]:
    names = [n for branch in _expected(error) for n in branch.get("required", ())]
    if place.kind == "params":
        yield Finding(path, True, f"action {quote(place.action)} needs {quoted_list(names)}", "action-params")
    elif place.kind == "transition":
        yield Finding(
            path, False, 'a transition mapping needs "target" (or "actions" for an internal transition)'
        )
    else:
        yield Finding(path, False, f"{subject(place)} needs {quoted_list(names)}", rule_for(place))


def _additional(error: ValidationError, place: Place, path: Path) -> Iterator[Finding]:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    known = list(schema.get("properties", {}))
    for extra in sorted(set(_instance(error)) - set(known)):
        where = (*path, extra)
        if place.kind == "action":
            yield Finding(
                where, True, f"unknown action {quote(extra)}{alternatives(extra, ACTIONS)}", "action"
            )
        elif place.kind == "params":
            hint = alternatives(extra, known)
            yield Finding(
                where,
                True,
                f"unknown parameter {quote(extra)} for action {quote(place.action)}{hint}",
                "action-params",
            )
        elif place.kind == "handlers":
            yield Finding(where, True, f"unknown event {quote(extra)}{_not_an_event(extra, place)}", "event")
        elif place.kind == "param":
            yield Finding(
                where,
                True,
                f"unknown endpoint kind {quote(extra)}{alternatives(extra, known)}",
                "action-params",
            )
        else:
            scope = ' in "start"' if place.field == "start" else {
                "root": " at the top of the flow",
                "state": f" in state {quote(place.state)}",
                "transition": " in a transition",
            }.get(place.kind, "")
            yield Finding(where, True, f"unknown key {quote(extra)}{scope}{alternatives(extra, known)}")


def _not_an_event(name: str, place: Place) -> str:
    """What the unknown event name is instead, when it is a state's key or a timer's duration written one
    level too deep (under ``on``), or the nearest event names."""
    if name in _STATE_KEYS:
        if place.state is None:
            return f"; {quote(name)} is a key of a state, not an event"
        return f'; {quote(name)} is a key of the state, not an event: indent it level with "on", not under it'
    if parse_duration(name) is not None:
        return f'; a timer goes under a state\'s "after" ("after: {{{name}: <target>}}"), not under "on"'
    return alternatives(name, EVENTS)


_STATE_KEYS = frozenset({"after", "always", "entry", "exit", "type"})  # a state's keys that never name events


def _property_name(place: Place, path: Path, name: str) -> Finding:
    where = (*path, name)
    if place.kind == "timers":
        hint = f'; did you mean "{name.strip()}s"?' if parse_duration(f"{name.strip()}s") is not None else ""
        return Finding(where, True, f"invalid duration {quote(name)}: {_DURATION_HINT}{hint}", "duration")
    if place.kind == "states":
        return Finding(
            where,
            True,
            f'invalid state name {quote(name)}: start with a letter or "_", then use '
            'letters, digits, "_" or "-"',
        )
    return Finding(
        where,
        True,
        f'invalid variable name {quote(name)}: use letters, digits and "_", not starting with a digit',
        rule_for(place),
    )


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "object": "a mapping",
    "array": "a list",
    "boolean": "true or false",
    "null": "null",
}


def _type(error: ValidationError, place: Place, path: Path) -> Iterator[Finding]:
    expected = _expected(error) if isinstance(_expected(error), list) else [_expected(error)]
    value = _instance(error)
    if place.kind == "transition":
        yield Finding(
            path,
            False,
            "a transition is a state name, a mapping {target, when, actions} or a list "
            f"of those; got {describe(value)}",
        )
        return
    if place.kind == "action" and isinstance(value, str) and value in ACTIONS:
        yield Finding(
            path, False, f'action {quote(value)} needs its parameters: write "{value}: {{...}}"', "action"
        )
        return
    if place.kind == "action":
        yield Finding(
            path,
            False,
            'an action is a one-key mapping such as "say: {call: caller, text: Hello}"; '
            f"got {describe(value)}",
            "action",
        )
        return
    wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in expected)
    if expected == ["integer", "string"]:
        wanted = "an integer or a {{ template }}"
    message, rule = f"{subject(place)} must be {wanted}; got {describe(value)}", rule_for(place)
    if "boolean" in expected and isinstance(value, str) and value.lower() in YAML11_BOOLEANS:
        message = (
            f"{subject(place)} must be true or false; got {quote(value)}, which YAML 1.2 reads as a "
            "string: write true or false"
        )
        rule = "schema"
    elif "string" in expected and isinstance(value, int | float) and not isinstance(value, bool):
        message = _number_for_string(error, place, value, message)
    yield Finding(path, False, message, rule)


def _number_for_string(error: ValidationError, place: Place, value: float, message: str) -> str:
    """A number where a string is expected: the duration it likely means (``5`` -> ``5s``), or quoting,
    but only when the fix is itself valid (``call: 5`` quoted is still no role name)."""
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if schema.get("pattern") == DURATION_PATTERN:
        fixed = f"{value}s"
        hint = f": write {fixed} (a number and a unit: ms, s, m or h)" if _fits(schema, fixed) else ""
        return f"{subject(place)} must be a duration; got the number {value}{hint}"
    return message + f'; quote it: "{value}"' if _fits(schema, str(value)) else message


def _fits(schema: Mapping[str, Any], value: Any) -> bool:
    return bool(Draft202012Validator(schema).is_valid(value))


def _pattern(error: ValidationError, place: Place, path: Path) -> Iterator[Finding]:
    value, pattern = str(_instance(error)), _expected(error)
    if pattern == DURATION_PATTERN:
        rule = "action-params" if place.kind == "param" else "duration"
        yield Finding(
            path, False, f"invalid duration {quote(value)} for {subject(place)}: {_DURATION_HINT}", rule
        )
    elif pattern == TEMPLATE_PATTERN:
        number = value.strip()
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        usable = number.lstrip("-").isdigit() and _fits(schema, int(number))
        hint = f"; write it without quotes: {int(number)}" if usable else ""
        yield Finding(
            path,
            False,
            f"{subject(place)} must be an integer or a {{{{ template }}}}; got {describe(value)}{hint}",
            rule_for(place),
        )
    elif pattern == IDENTIFIER_PATTERN:
        kind = "variable" if place.param == "as" and place.action in ("conference_info", "http") else "role"
        yield Finding(
            path,
            False,
            f'invalid {kind} name {quote(value)}: use letters, digits and "_", not starting with a digit',
            rule_for(place),
        )
    elif pattern == FLOW_NAME_PATTERN:
        yield Finding(
            path,
            False,
            f'invalid flow name {quote(value)}: use lower case letters, digits, ".", '
            '"_" and "-", starting with a letter or digit',
        )
    elif pattern == STATE_NAME_PATTERN:
        yield Finding(path, False, f"invalid state name {quote(value)}")
    elif pattern == START_PATTERN:
        yield Finding(path, False, f'invalid start {quote(value)}: write "inbound" (the default), '
                      '"outbound", or "outbound: {as: <role>, from: <caller id>, timeout: <duration>}"')
    elif pattern == CUSTOM_EVENT_PATTERN:
        spaces = ", ".join(f"{name}." for name in EVENT_NAMESPACES)
        yield Finding(path, False, f"invalid custom event name {quote(value)}: dotted lower-case words such "
                      f'as "agent.free", not in the neutral events\' namespaces ({spaces})', "event")
    else:
        yield Finding(path, False, f"{subject(place)} does not match {quote(pattern)}", rule_for(place))


def _enum(error: ValidationError, place: Place, path: Path) -> Iterator[Finding]:
    value, choices = _instance(error), [str(c) for c in _expected(error)]
    if place.kind == "field" and place.field == "type":
        shown = quote(value) if isinstance(value, str) else describe(value)
        yield Finding(path, False, f'invalid state type {shown}; the only type is "final"')
        return
    hint = alternatives(str(value), choices)
    yield Finding(path, False, f"invalid value {quote(value)} for {subject(place)}{hint}", rule_for(place))


def _bounds(error: ValidationError, place: Place, path: Path) -> Iterator[Finding]:
    keyword, limit, value = error.validator, _expected(error), _instance(error)
    rule = rule_for(place)
    if keyword == "maxProperties" and place.kind == "action":
        keys = list(value)
        yield Finding(
            (*path, keys[1]),
            True,
            f'one action per list item: found {quoted_list(keys, "and")}; start each with its own "- "',
            "action",
        )
    elif keyword in ("minProperties", "maxProperties") and place.kind == "param":
        kinds = quoted_list(["phone", "sip", "user", "webrtc"])
        yield Finding(path, False, f"an endpoint mapping has exactly one of {kinds}", rule)
    elif keyword == "minProperties":
        what = {
            "states": "a flow needs at least one state",
            "action": 'an empty action: write one action such as "say: {call: caller, text: Hello}"',
        }.get(place.kind)
        yield Finding(path, False, what or f"{subject(place)} must not be empty", rule)
    elif keyword == "minimum":
        yield Finding(path, False, f"{subject(place)} must be at least {limit}; got {value}", rule)
    else:  # minItems, minLength
        yield Finding(path, False, f"{subject(place)} must not be empty", rule)


def _unique(error: ValidationError, place: Place, path: Path) -> Iterator[Finding]:
    items = [item for item in _instance(error) if isinstance(item, str)]
    twice = sorted({item for item in items if items.count(item) > 1})
    message = f"{subject(place)} lists {quoted_list(twice, 'and')} more than once"
    yield Finding(path, False, message, rule_for(place))


_TRANSLATORS: dict[str, Callable[[ValidationError, Place, Path], Iterator[Finding]]] = {
    "required": _required,
    "anyOf": _any_of,
    "additionalProperties": _additional,
    "type": _type,
    "pattern": _pattern,
    "enum": _enum,
    "minimum": _bounds,
    "minProperties": _bounds,
    "maxProperties": _bounds,
    "minItems": _bounds,
    "minLength": _bounds,
    "uniqueItems": _unique,
}


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]
