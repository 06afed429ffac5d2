"""The component schemas of the service's OpenAPI description that the read side, the probes and the
webhooks share (the write API's are ``openapi_control``'s), and the few names every part of it uses."""

from __future__ import annotations

from typing import Any

from flowengine.providers.infobip import webhook_schema as infobip
from flowengine.providers.sinch import callback_schema as sinch

Schema = dict[str, Any]
REF = "#/components/schemas/"
JSON = "application/json"

SCHEMAS: Schema = {
    "Error": {
        "type": "object",
        "description": "Why a request was refused (logged once, without a traceback).",
        "required": ["error", "status"],
        "properties": {"error": {"type": "string"}, "status": {"type": "integer", "minimum": 400}},
    },
    "SessionSummary": {
        "type": "object",
        "required": ["id", "flow", "state", "status", "updated_at"],
        "properties": {
            "id": {"type": "string"},
            "flow": {"type": "string"},
            "state": {"type": "string"},
            "status": {"enum": ["active", "ended", "failed"]},
            "updated_at": {"type": "number", "description": "Epoch seconds."},
        },
    },
    "Session": {
        "type": "object",
        "description": "A session as stored: state, variables, the calls and conferences it owns (role -> "
        "platform id), pending timers and the step trace (recent steps).",
        "required": ["id", "flow", "state", "status", "revision"],
        "properties": {
            "id": {"type": "string"},
            "flow": {"type": "string"},
            "flow_version": {"type": "integer"},
            "flow_hash": {"type": ["string", "null"], "description": "The version (a hash of the flow's "
                          "resolved source) it started on and runs to its end, across reloads."},
            "state": {"type": "string"},
            "status": {"enum": ["new", "active", "ended", "failed"]},
            "vars": {"type": "object"},
            "calls": {"type": "object", "additionalProperties": {"type": "string"}},
            "conferences": {"type": "object", "additionalProperties": {"type": "string"}},
            "timers": {"type": "object"},
            "trace": {"type": "array", "items": {"$ref": REF + "Step"}},
            "created": {"type": "number"},
            "updated": {"type": "number"},
            "revision": {"type": "integer"},
            "origin": {"type": ["object", "null"], "description": "How an outbound session was started "
                       "(`start`, and the request's fingerprint); null for an inbound one."},
        },
    },
    "Step": {
        "type": "object",
        "description": "One step: the event, the states it led from and to, guards and commands sent.",
        "required": ["at", "event", "from", "to"],
        "properties": {
            "at": {"type": "number"},
            "event": {"type": "string"},
            "from": {"type": ["string", "null"]},
            "to": {"type": ["string", "null"]},
            "guards": {"type": "array"},
            "commands": {"type": "array"},
            "note": {"type": ["string", "null"]},
        },
    },
    "Flow": {
        "type": "object",
        "description": "A loaded flow's graph: states with their transitions (events, timers, guards).",
        "required": ["name", "version", "initial", "states"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "integer"},
            "description": {"type": ["string", "null"]},
            "initial": {"type": "string"},
            "source": {"type": "string"},
            "start": {"enum": ["inbound", "outbound"], "description": "How its sessions start."},
            "vars": {"type": "object", "additionalProperties": {"type": "string"},
                     "description": "Its declared variables and their types (string, integer, number, "
                     "boolean, list, mapping, or any)."},
            "events": {"type": "array", "items": {"type": "string"},
                       "description": "The custom events it declares."},
            "states": {"type": "object", "additionalProperties": {"$ref": REF + "FlowState"}},
            "hash": {"type": ["string", "null"], "description": "The version new sessions start on: a hash "
                     "of the flow's resolved source (`include:` merged)."},
            "versions": {"type": "array", "items": {"$ref": REF + "FlowVersion"},
                         "description": "The current version, then each other one live sessions hold."},
        },
    },
    "FlowVersion": {
        "type": "object",
        "required": ["hash", "current", "sessions"],
        "properties": {
            "hash": {"type": ["string", "null"], "description": "null: sessions started before versions "
                     "were kept."},
            "current": {"type": "boolean", "description": "New sessions start on it."},
            "sessions": {"type": "integer", "minimum": 0, "description": "Live (active) sessions on it."},
        },
    },
    "RetiredFlow": {
        "type": "object",
        "description": "A flow no longer loaded (a reload removed or renamed it) that live sessions run.",
        "required": ["name", "versions"],
        "properties": {"name": {"type": "string"},
                       "versions": {"type": "array", "items": {"$ref": REF + "FlowVersion"}}},
    },
    "FlowState": {
        "type": "object",
        "required": ["final", "transitions"],
        "properties": {
            "final": {"type": "boolean"},
            "transitions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["event", "target"],
                    "properties": {
                        "event": {"type": "string"},
                        "target": {"type": ["string", "null"]},
                        "when": {"type": ["string", "null"]},
                    },
                },
            },
        },
    },
    "Pacing": {
        "type": "object",
        "description": "How fast calls are created, per paced provider (config `pacing`).",
        "required": ["providers"],
        "properties": {"providers": {"type": "array", "items": {
            "type": "object",
            "required": ["provider", "rate", "burst", "max_wait", "queue_depth", "queued_store_wide",
                         "next_slot_in"],
            "properties": {
                "provider": {"type": "string"},
                "rate": {"type": "number", "description": "Calls created per second, at most."},
                "burst": {"type": "integer"},
                "max_wait": {"type": "number", "description": "Seconds a call may wait for its turn."},
                "queue_depth": {"type": "integer", "description": "Calls waiting on this instance."},
                "queued_store_wide": {"type": "integer",
                                      "description": "Turns reserved ahead by all instances of the store."},
                "next_slot_in": {"type": "number", "description": "Seconds a call asking now would wait."},
                "paced": {"type": "integer", "description": "Calls this instance let through."},
                "refused": {"type": "integer", "description": "Calls refused: their turn was past max_wait."},
                "wait_seconds_total": {"type": "number", "description": "Seconds waited, in all."},
                "last_wait": {"type": ["number", "null"]},
            },
        }}},
    },
    "Readiness": {
        "type": "object",
        "required": ["status", "store", "flows"],
        "properties": {
            "status": {"enum": ["ready", "not ready"]},
            "store": {"type": "boolean", "description": "Whether the session store answered."},
            "flows": {"type": "array", "items": {"type": "string"}},
        },
    },
    **infobip.SCHEMAS,
    **sinch.SCHEMAS,
}
