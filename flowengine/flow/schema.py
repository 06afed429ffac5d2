"""The flow language's JSON Schema (draft 2020-12), generated from ``vocabulary`` so that every action,
parameter and event is declared once.

The schema is the contract editors use (yaml-language-server autocompletes from the descriptions) and
the first check ``validate`` runs. It avoids ``oneOf``/``anyOf`` between shapes: a transition is one
schema whose type is ``string | object | array`` and whose keywords each apply to one type only, and an
action item is an object with exactly one property. That keeps every validation error about one node,
so diagnostics stay precise instead of a wall of "is not valid under any of the given schemas".
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from flowengine.flow.action_schema import action_schema, endpoint_schema, param_schema, ref
from flowengine.flow.scenario_schema import scenarios_schema
from flowengine.flow.vocabulary import (
    ACTION_SPECS,
    ALWAYS_LIMIT,
    CUSTOM_EVENT_PATTERN,
    DURATION_PATTERN,
    EVENT_SPECS,
    FLOW_NAME_PATTERN,
    IDENTIFIER_PATTERN,
    IF_OPTION,
    ON_ERROR_CHOICES,
    ON_ERROR_OPTION,
    OUTBOUND_PARAMS,
    START_INBOUND,
    START_OUTBOUND,
    STATE_NAME_PATTERN,
)

SCHEMA_ID = "https://flowengine.dev/schemas/flow.schema.json"
Schema = dict[str, Any]

_LANGUAGE_DOC = (
    "A flowengine call flow: a state machine driven by neutral call events, the same on Infobip and Sinch. "
    "A session starts in `initial` when a call arrives (with `start: outbound`, when the call the API had "
    "it dial is answered or fails). Each state runs its `entry` actions, then waits: an "
    "event under `on` (or a timer under `after`) leads to another state, running the old state's `exit` "
    "actions, the transition's `actions` and the new state's `entry` actions, in that order. A state with "
    "`type: final` ends the session. A state's `always` transitions need no event: they are tried once its "
    "entry actions have run. Flow-level `on` handlers apply in every state without its own handler "
    "for the event. An action is a one-key mapping, `{say: {call: caller, text: Hello}}`; any action may "
    "carry `if` (run it only when true) and `on_error` (`fail` or `continue`). Calls and "
    "conferences are named by roles: `caller` is the inbound call, `as: <name>` names a new one. Strings may "
    "hold sandboxed Jinja2 templates (`{{ vars.callee }}`) over `vars`, `session`, `event` and the roles; "
    "`when` guards are bare expressions. The file is read as YAML 1.2: `yes`, `no`, `on` and `off` are "
    "strings, only `true` and `false` are booleans, and a key may appear only once."
)
_BRANCH_DOC = (
    "One branch of a guarded list: a target state name, or {target, when, actions}. Branches are tried in "
    "order; the first whose `when` holds (or that has none) is taken."
)
_TRANSITION_DOC = (
    "Where the event leads: a target state name; or {target, when, actions} (`when` guards it, `actions` "
    "run on the way; without `target` it is an internal transition: the actions run and the state stays, "
    "without exit or entry actions); or a list of those, tried in order, the first whose `when` holds wins."
)


def _transition_schema(*, allow_list: bool) -> Schema:
    body: Schema = {
        "description": _TRANSITION_DOC if allow_list else _BRANCH_DOC,
        "type": ["string", "object", "array"] if allow_list else ["string", "object"],
        "minLength": 1,
        "properties": {
            "target": {
                "type": "string",
                "minLength": 1,
                "description": "The state to go to. Omit it (and give `actions`) for an internal transition.",
            },
            "when": {
                "type": "string",
                "minLength": 1,
                "description": "A guard: a bare Jinja2 expression over `vars`, `session`, `event` and the "
                "roles, such as `event.call == 'callee'`. The transition is taken only "
                "when it is true.",
            },
            "actions": ref(
                "actions",
                "Actions run on the way, after the old state's exit actions and "
                "before the new state's entry actions.",
            ),
        },
        "additionalProperties": False,
        "anyOf": [{"required": ["target"]}, {"required": ["actions"]}],
    }
    if allow_list:
        body["minItems"] = 1
        body["items"] = {"$ref": "#/$defs/branch"}
    return body


def _handlers_schema() -> Schema:
    properties = {}
    for event in EVENT_SPECS:
        fields = ", ".join(f"`event.{f}`" for f in event.fields)
        properties[event.name] = ref("transition", f"{event.description} Fields: {fields}.")
    custom = ref("transition", "A custom event, declared under the flow's `events` and delivered through "
                  "the API (`POST /api/sessions/{id}/events`). Fields: `event.data`.")
    return {
        "type": "object",
        "description": "Event name -> transition. Events are neutral: the same names on every provider; "
        "custom events (dotted names such as `agent.free`) are declared under `events`.",
        "properties": properties,
        "patternProperties": {CUSTOM_EVENT_PATTERN: custom},
        "additionalProperties": False,
    }


def _state_schema() -> Schema:
    return {
        "type": "object",
        "description": "A state: actions run on entry and exit, and events or timers lead out of it.",
        "properties": {
            "description": {"type": "string", "description": "What this state is for (shown in graphs)."},
            "type": {
                "type": "string",
                "enum": ["final"],
                "description": "`final` ends the session once entered (after its entry actions). "
                "A final state may have `entry` actions but no `on` or `after`.",
            },
            "entry": ref("actions", "Actions run, in order, when the state is entered."),
            "exit": ref("actions", "Actions run, in order, when the state is left by a transition."),
            "on": ref(
                "handlers",
                "Event name -> transition, while in this state. Overrides the flow-level "
                "`on` for the same event.",
            ),
            "after": {
                "type": "object",
                "description": "Timers: duration -> transition, taken when the state has been active that "
                "long (for example `10s: giving_up`).",
                "propertyNames": {"$ref": "#/$defs/duration"},
                "additionalProperties": {"$ref": "#/$defs/transition"},
            },
            "always": ref(
                "transition",
                "Eventless transitions (as in XState): tried, first match wins, once the state's entry "
                "actions have run and again after each internal transition's actions in it; no event "
                f"is awaited. Guards see the event that led here. A chain of more than {ALWAYS_LIMIT} in a "
                "row ends the session as failed; `validate` reports a cycle whose guards nothing on it "
                "changes.",
            ),
        },
        "additionalProperties": False,
    }


def _defs() -> Schema:
    return {
        IF_OPTION: {
            "type": "string",
            "minLength": 1,
            "description": "A bare Jinja2 expression over `vars`, `session`, `event` and the roles, such as "
            "`vars.attempts < 3` or `agent is defined`.",
        },
        ON_ERROR_OPTION: {"type": "string", "enum": list(ON_ERROR_CHOICES), "default": "fail"},
        "duration": {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration: a number and a unit, `ms`, `s`, `m` or `h` (`500ms`, `10s`, `2m`).",
        },
        "endpoint": endpoint_schema(),
        "value": {
            "description": "A value: a string (which may hold {{ templates }}), a number, a boolean, "
            "null, a list or a mapping."
        },
        "action": {
            "type": "object",
            "description": "One action, written as a one-key mapping: `{<action>: {parameters}}`, such as "
            "`say: {call: caller, text: Hello}`.",
            "minProperties": 1,
            "maxProperties": 1,
            "properties": {spec.name: action_schema(spec) for spec in ACTION_SPECS},
            "additionalProperties": False,
        },
        "actions": {
            "type": "array",
            "description": "A list of actions, run in order.",
            "items": {"$ref": "#/$defs/action"},
        },
        "transition": _transition_schema(allow_list=True),
        "branch": _transition_schema(allow_list=False),
        "handlers": _handlers_schema(),
        "state": _state_schema(),
    }


START_PATTERN = f"^({START_INBOUND}|{START_OUTBOUND})$"


def _start_schema() -> Schema:
    """``start: inbound`` (the default), ``start: outbound``, or ``start: {outbound: {as, from, timeout}}``
    (a string or a mapping: each keyword below applies to one of the two types only)."""
    return {
        "type": ["string", "object"],
        "description": "How a session starts: `inbound` (the default: an inbound call arrives and is bound "
        "to `caller`), or `outbound`: `POST /api/calls` (or `flowengine call`) dials a number and the "
        "session begins in `initial` on that call's `call.answered` or `call.failed` (with its `reason`); "
        "the dialled call is bound to `callee`, or to the role named by `{outbound: {as: <role>}}`, "
        "which may also give the caller id (`from`), the ring `timeout` and `machine_detection` (the "
        "answer then comes with `reason` `human` or `machine`).",
        "default": START_INBOUND,
        "pattern": START_PATTERN,
        "properties": {
            START_OUTBOUND: {
                "type": "object",
                "description": "The outbound start's dial.",
                "properties": {p.name: param_schema(p) for p in OUTBOUND_PARAMS},
                "additionalProperties": False,
            },
        },
        "required": [START_OUTBOUND],
        "additionalProperties": False,
    }


def _top_level() -> Schema:
    return {
        "flow": {
            "type": "string",
            "pattern": FLOW_NAME_PATTERN,
            "description": "The flow's name: lower case letters, digits, `.`, `_` and `-`.",
        },
        "version": {
            "type": "integer",
            "minimum": 1,
            "default": 1,
            "description": "The flow's own version number (1 or more), for your change tracking.",
        },
        "description": {"type": "string", "description": "What the flow does."},
        "vars": {
            "type": "object",
            "description": "Session variables with their initial values, read as `vars.<name>` in templates "
            "and changed with the `set` action.",
            "propertyNames": {"pattern": IDENTIFIER_PATTERN},
            "additionalProperties": {"$ref": "#/$defs/value"},
        },
        "initial": {
            "type": "string",
            "minLength": 1,
            "description": "The state a new session starts in (when the inbound call arrives, or, for an "
            "outbound flow, when the dialled call is answered or fails: that event is then handled there).",
        },
        "start": _start_schema(),
        "events": {
            "type": "array",
            "description": "Custom events this flow handles, delivered through the API "
            "(`POST /api/sessions/{id}/events`, with `data`): dotted lower-case names such as "
            "`agent.free`, outside the neutral events' namespaces (`call.`, `conference.`, ...).",
            "uniqueItems": True,
            "items": {"type": "string", "pattern": CUSTOM_EVENT_PATTERN},
        },
        "on": ref(
            "handlers",
            "Flow-level handlers: event -> transition, in every state that has no "
            "handler of its own for the event.",
        ),
        "states": {
            "type": "object",
            "description": "State name -> state. State names start with a letter or `_`; every state must be "
            "reachable from `initial`, and some final state must be.",
            "minProperties": 1,
            "propertyNames": {"pattern": STATE_NAME_PATTERN},
            "additionalProperties": {"$ref": "#/$defs/state"},
        },
        "include": {
            "type": "array",
            "description": "Files of shared states, flow-level handlers and variables, merged into this flow "
            "(paths relative to this file): each is a mapping of `states`, `on` and `vars` only. A name "
            "defined twice is an error; includes do not nest.",
            "items": {"type": "string", "minLength": 1},
        },
        "scenarios": scenarios_schema(),
    }


@lru_cache(maxsize=1)
def _cached() -> str:
    schema: Schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "flowengine call flow",
        "description": _LANGUAGE_DOC,
        "type": "object",
        "required": ["flow", "initial", "states"],
        "properties": _top_level(),
        "additionalProperties": False,
        "$defs": _defs(),
    }
    return json.dumps(schema)


def flow_schema() -> Schema:
    """A fresh copy of the schema (callers may change it)."""
    result: Schema = json.loads(_cached())
    return result


def schema_json(indent: int | None = 2) -> str:
    """The schema as published in ``schemas/flow.schema.json`` (with a trailing newline)."""
    return json.dumps(flow_schema(), indent=indent, ensure_ascii=False) + "\n"
