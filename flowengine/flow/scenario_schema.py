"""The schema of a flow file's ``scenarios:`` section: calls to play against a simulated platform, with
what should come of them (``flowengine simulate`` and ``flowengine test`` run them)."""

from __future__ import annotations

from typing import Any

from flowengine.flow.vocabulary import ACTIONS, DURATION_PATTERN, HTTP_METHODS

_SECONDS = {
    "anyOf": [
        {"type": "string", "pattern": DURATION_PATTERN}, {"type": "number", "minimum": 0}, {"type": "null"},
    ],
}


def _party_properties() -> dict[str, Any]:
    return {
        "answer_after": {**_SECONDS, "description": "Answers after this long (null: never answers, so the "
                         "dial times out as no_answer). Default 2s."},
        "hangup_after": {**_SECONDS, "description": "Hangs up this long after answering."},
        "busy": {"type": "boolean", "description": "Is busy (the call fails with busy)."},
        "reject": {"type": "boolean", "description": "Rejects the call."},
        "unreachable": {"type": "boolean", "description": "Cannot be reached (unreachable)."},
        "machine": {"type": "boolean", "description": "An answering machine answers: a dial with "
                    "`machine_detection` hears `call.answered` with reason `machine` (else `human`)."},
        "press": {
            "type": "array",
            "description": "Keys pressed after answering: a list of [seconds, digits] or {after, digits}.",
            "items": {"type": ["array", "object"]},
        },
    }


def _party(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "description": description,
            "properties": {**_party_properties(), **extra}}


# What picks the requests a mock answers or an expectation names (``scenarios.http_mocks``).
_REQUEST_MATCH: dict[str, Any] = {
    "method": {"enum": list(HTTP_METHODS), "description": "The request's method (any, when left out)."},
    "url": {"type": "string", "minLength": 1,
            "description": "The request's URL; `*` stands for any run of characters."},
}


def _http_mocks() -> dict[str, Any]:
    return {
        "type": "array",
        "description": "Answers for the flow's `http` actions (a request no mock matches fails the "
        "action and the scenario, unless its host is on the run's --http-allow). The first mock "
        "whose method and url match answers.",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url"],
            "properties": {
                **_REQUEST_MATCH,
                "status": {"type": "integer", "minimum": 100, "maximum": 599, "default": 200,
                           "description": "The answer's status; not 2xx fails the action."},
                "body": {"description": "The answer's body: JSON, or text."},
                "delay": {**_SECONDS, "description": "Answer after this long (virtual time); past "
                          "the action's timeout, the request times out."},
            },
        },
    }


def _outbound_start() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["outbound"],
        "description": "How the session of an outbound flow (`start: outbound`) starts: the run sends "
        "`POST /api/calls` with this call, in place of an inbound `caller`.",
        "properties": {
            "outbound": {
                "type": "object",
                "additionalProperties": False,
                "required": ["to"],
                "description": "The body of the `POST /api/calls` the run sends (the flow is the file's).",
                "properties": {
                    "to": {"type": ["string", "object"], "description": "The number dialled (script its "
                           "party under `parties:`), or {sip|user|webrtc: address}."},
                    "from": {"type": "string", "description": "Caller id; else the flow's."},
                    "vars": {"type": "object", "description": "The request's variables (declared by the "
                             "flow, of their declared types)."},
                },
            },
        },
    }


def _expected_http() -> dict[str, Any]:
    subset = "a subset of the request's: every key named has this value (mappings compared so at any depth)"
    return {
        "type": "array",
        "description": "Every request the flow's http actions made, in order (`[]`: none).",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url"],
            "properties": {
                **_REQUEST_MATCH,
                "json": {"description": f"The JSON body: {subset}."},
                "form": {"type": "object", "description": f"The form fields: {subset}."},
                "headers": {"type": "object", "description": "Headers as the flow wrote them (names in "
                            "any case; `${VAR}` not filled in): a subset of the request's."},
            },
        },
    }


def scenarios_schema() -> dict[str, Any]:
    scenario = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "description": {"type": "string", "description": "What the scenario shows."},
            "caller": _party(
                "The inbound call that starts the session, and how the caller behaves (an inbound flow's; "
                "an outbound flow's scenario gives `start` instead).",
                **{"from": {"type": "string", "description": "Caller's number."},
                   "to": {"type": "string", "description": "Number called (selects the flow in a service)."}},
            ),
            "start": _outbound_start(),
            "parties": {
                "type": "object",
                "description": "How dialled numbers behave: number (or `default`) -> party script.",
                "additionalProperties": _party("A dialled party's behaviour."),
            },
            "http": _http_mocks(),
            "expect": {
                "type": "object",
                "additionalProperties": False,
                "description": "What `flowengine test` checks once the session and every call are over.",
                "properties": {
                    "state": {"type": "string", "description": "The session's final state."},
                    "status": {"enum": ["ended", "failed"], "description": "The session's final status."},
                    "actions": {"type": "array", "items": {"enum": sorted(ACTIONS)},
                                "description": "The provider actions the session carried out, in order."},
                    "states": {"type": "array", "items": {"type": "string"},
                               "description": "Every entry into a state, in order: the initial state first, "
                               "and a state entered again (a transition back to it, from itself too) once "
                               "more each time. Internal transitions (no target) enter nothing."},
                    "visits": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
                               "description": "State -> how many times the session enters it, re-entries "
                               "included (0: never), e.g. {menu: 3}."},
                    "http": _expected_http(),
                },
            },
        },
    }
    return {
        "type": "object",
        "description": "Scenarios for `flowengine simulate` and `flowengine test`: name -> scenario. They "
        "do not affect how the flow runs in a service.",
        "additionalProperties": scenario,
    }
