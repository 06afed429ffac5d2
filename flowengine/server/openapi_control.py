"""The OpenAPI description of the write API (``control``): its operations and their bodies, merged into the
service's document by ``openapi``. A served document names this instance's outbound flows, so a client
(or schemathesis) sees which ``flow`` values start a call; the published one leaves the name open.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowengine.flow.vocabulary import ENDPOINT_KINDS
from flowengine.server.control import MAX_BODY, MAX_DEPTH, REPLAYED_HEADER
from flowengine.server.openapi_schemas import JSON, REF, Schema
from flowengine.server.outbound import IDEMPOTENCY_TTL, MAX_ADDRESS, MAX_KEY
from flowengine.server.steering import MAX_ID, NAME_PATTERN

_SUMMARY = {"id": {"type": "string"}, "flow": {"type": "string"}, "state": {"type": "string"},
            "status": {"enum": ["new", "active", "ended", "failed"],
                       "description": "`new`: an outbound session whose call is still being dialled."}}


def control_schemas(outbound_flows: Sequence[str] | None = None) -> Schema:
    """The bodies of the write routes; ``outbound_flows`` (a served document) lists the flows to start."""
    flow: Schema = {"type": "string", "description": "An outbound flow (`start: outbound`) loaded here."}
    if outbound_flows:
        flow["enum"] = list(outbound_flows)
    example = {"flow": outbound_flows[0] if outbound_flows else "reminder", "to": "447700900001",
               "idempotency_key": "reminder-2026-01-05-0930"}
    endpoint = {kind: {"type": "string", "minLength": 1, "maxLength": MAX_ADDRESS, "description": text}
                for kind, text in ENDPOINT_KINDS.items()}
    return {
        "CallRequest": {
            "type": "object",
            "description": "An outbound call: the flow's session begins on its answer or failure.",
            "examples": [example],
            "required": ["flow", "to"],
            "additionalProperties": False,
            "properties": {
                "flow": flow,
                "to": {"type": ["string", "object"], "minLength": 1, "minProperties": 1, "maxProperties": 1,
                       "properties": endpoint, "additionalProperties": False,
                       "description": "A phone number in international format (3 to 15 digits; `+`, spaces, "
                       "dots, dashes and parentheses are dropped), or one of `{phone|sip|user|webrtc: "
                       "address}`."},
                "from": {"type": "string", "minLength": 1, "maxLength": MAX_ADDRESS,
                         "description": "Caller id; else the flow's `start.outbound.from`, else the "
                         "provider's default."},
                "vars": {"type": "object", "description": "Values for the flow's declared variables, each "
                         "of its declared type (that of its initial value; any, if declared null)."},
                "idempotency_key": {"type": "string", "minLength": 1, "maxLength": MAX_KEY,
                                    "description": "A retry with the same key gets the same session and "
                                    "never a second call (on any instance sharing the store); the same key "
                                    "with another request is refused (422); a key whose session is no "
                                    f"longer kept is refused (409) for {IDEMPOTENCY_TTL:g} s."},
            },
        },
        "CallStarted": _object("The session (`new` while its call is dialled).", {
            **_SUMMARY, "url": {"type": "string", "description": "The session's path in this API."},
            "replayed": {"type": "boolean", "description": "The same request came before: nothing was "
                         "dialled this time."}}),
        "EventRequest": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": NAME_PATTERN,
                         "description": "A custom event the session's flow declares (`events`)."},
                "data": {"type": "object", "description": "What the flow reads as `event.data`."},
                "id": {"type": "string", "minLength": 1, "maxLength": MAX_ID, "description": "Names this "
                       "event: a retry with the same id is recognised and not acted on twice."},
            },
        },
        "EventDelivered": _object("The session after the event's step.", {
            **_SUMMARY, "event": {"type": "string"},
            "outcome": {"enum": ["handled", "ignored", "duplicate"], "description": "`ignored`: nothing in "
                        "the session's state handles it; `duplicate`: an event with that id came before."}}),
        "FlowsReloaded": {"type": "object", "required": ["reloaded", "flows"], "properties": {
            "reloaded": {"const": True},
            "flows": {"type": "array", "items": {
                      "type": "object", "required": ["name", "change", "from", "to"],
                      "properties": {"name": {"type": "string"},
                                     "change": {"enum": ["changed", "unchanged", "added", "removed"]},
                                     "from": {"type": ["string", "null"], "description": "Version before."},
                                     "to": {"type": ["string", "null"], "description": "Version now."}}}}}},
        "FlowsRefused": {"type": "object", "required": ["error", "status", "diagnostics"], "properties": {
            "error": {"type": "string"}, "status": {"const": 422},
            "diagnostics": {"type": "array", "items": {
                "type": "object", "required": ["path", "line", "col", "severity", "rule", "message"],
                "properties": {"path": {"type": "string"}, "line": {"type": "integer"},
                               "col": {"type": "integer"}, "severity": {"enum": ["error", "warning"]},
                               "rule": {"type": "string"}, "message": {"type": "string"}}}}}},
        "SessionEnded": _object("The session, ended (or as it was, if it had ended before).", {
            **_SUMMARY,
            "hung_up": {"type": "array", "items": {"type": "string"},
                        "description": "Roles of the calls and conferences hung up."},
            "failed": {"type": "array", "items": {"type": "string"},
                       "description": "`role: error` for each that could not be (see the trace)."}}),
    }


def control_paths(refused: Schema) -> dict[str, Schema]:
    """The write operations (``refused``: the 401 and 403 answers every guarded route shares)."""
    bad = _error(f"What is wrong with the request, all of it: not JSON (or nested deeper than {MAX_DEPTH}), "
                 "an unknown field, a missing or malformed value.")
    common = {**refused, "413": _error(f"The body is over {MAX_BODY} bytes."),
              "503": _error("The session store is unavailable.")}
    session_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    call = _operation("postCall", "Start an outbound call: a session of an outbound flow", {
        "201": {**_body("CallStarted", "Started (or, for a retried idempotency key, started before)."),
                "headers": {"Location": {"schema": {"type": "string"}},
                            REPLAYED_HEADER: {"schema": {"const": "true"}}}},
        "400": _error("Bad request, before anything is dialled: an unknown or inbound flow, `to`, or "
                      "`vars` that are not the flow's declared variables of their declared types."),
        "409": _error("The idempotency key started a call whose session is no longer kept."),
        "422": _error("The idempotency key was used for another request."), **common}, "CallRequest")
    event = _operation("postSessionEvent", "Deliver a custom event to a session", {
        "200": _body("EventDelivered", "The event's step was taken."),
        "400": bad, "404": _error("No session with that id."),
        "409": _error("The session has not begun (its call is still being dialled), or has ended."),
        **common}, "EventRequest", parameters=[session_id])
    end = _operation("deleteSession", "End a session, hanging up every call and conference it owns", {
        "200": _body("SessionEnded", "Ended (its record stays readable)."),
        "404": _error("No session with that id."), **refused,
        "503": _error("The session store is unavailable.")}, parameters=[session_id])
    reload = _operation("postFlowsReload", "Read the flow files again: new calls get the new versions, "
                        "sessions in progress keep theirs", {
        "200": _body("FlowsReloaded", "Reloaded: what changed per flow."),
        "422": _body("FlowsRefused", "A flow has errors: nothing changed, the loaded versions keep serving."),
        **refused, "503": _error("The session store is unavailable: nothing changed.")})
    return {"/api/calls": {"post": call}, "/api/sessions/{id}/events": {"post": event},
            "/api/sessions/{id}": {"delete": end}, "/api/flows/reload": {"post": reload}}


def _operation(op_id: str, summary: str, responses: Schema, body: str | None = None, **more: Any) -> Schema:
    operation = {"operationId": op_id, "tags": ["api"], "summary": summary, "responses": responses,
                 "security": [{"apiToken": []}], **more}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": {"$ref": REF + body}}}}
    return operation


def _object(description: str, properties: Schema) -> Schema:
    return {"type": "object", "description": description, "required": list(_SUMMARY),
            "properties": properties}


def _body(name: str, description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": {"$ref": REF + name}}}}


def _error(description: str) -> Schema:
    return _body("Error", description)
