"""The JSON Schema of the service configuration (``flowengine.yaml``): the contract, published as
``schemas/config.schema.json``. Every default is written here once; ``config`` reads its defaults from
this document (``default``), so the published schema and the running service never disagree.
"""

from __future__ import annotations

from typing import Any

from flowengine.logformat import FORMATS
from flowengine.providers import PROVIDERS
from flowengine.providers.intake import DEPTH_CEILING, MAX_DEPTH, MAX_EVENTS

MIN_TOKEN_LENGTH = 16  # an API token shorter than this is guessable
DEFAULT_REPLAY_TTL = 3600.0

CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://flowengine.dev/schemas/config.schema.json",
    "title": "flowengine service configuration",
    "type": "object",
    "additionalProperties": False,
    "required": ["provider"],
    "properties": {
        "provider": {
            "enum": list(PROVIDERS),
            "description": "The platform whose webhooks this service takes.",
        },
        "listen": {
            "type": "object",
            "additionalProperties": False,
            "description": "Where the service listens.",
            "properties": {
                "host": {"type": "string", "default": "127.0.0.1", "description": "Interface to bind."},
                "port": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 65535,
                    "default": 8080,
                    "description": "TCP port (0 picks a free one).",
                },
            },
        },
        "store": {
            "type": "string",
            "default": "sqlite:///flowengine.db",
            "pattern": "^(memory://|sqlite:///|redis://|rediss://)",
            "description": "Session store URL: sqlite:///path.db (default), redis://host:6379/0, memory://.",
        },
        "routes": {
            "type": "array",
            "description": "Which flow answers which inbound call; first match wins.",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["flow"],
                "properties": {
                    "flow": {
                        "type": "string",
                        "description": "Path of the flow file (relative to this file).",
                    },
                    "to": {
                        "type": "string",
                        "description": "Called number (or SIP user) that selects this flow.",
                    },
                    "configuration": {
                        "type": "string",
                        "description": "Infobip calls configuration id / Sinch application key.",
                    },
                },
            },
        },
        "default_flow": {"type": "string", "description": "Flow for inbound calls that match no route."},
        "flows": {
            "type": "array",
            "items": {"type": "string"},
            "description": (
                "More flow files to load (paths relative to this file): the outbound flows (`start: "
                "outbound`) that `POST /api/calls` and `flowengine call` start. Inbound flows go in "
                "`routes` and `default_flow`."
            ),
        },
        "webhook": {
            "type": "object",
            "additionalProperties": False,
            "description": "Webhook intake limits.",
            "properties": {
                "path": {
                    "type": "string",
                    "default": "/webhooks",
                    "description": "Path prefix of webhook routes.",
                },
                "max_body_bytes": {
                    "type": "integer",
                    "minimum": 1024,
                    "default": 262144,
                    "description": "Larger webhook bodies get 413.",
                },
                "max_depth": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": DEPTH_CEILING,
                    "default": MAX_DEPTH,
                    "description": "JSON nested deeper than this gets 400 (measured before parsing).",
                },
                "max_events": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 1000,
                    "default": MAX_EVENTS,
                    "description": "A webhook body carrying more events than this gets 413.",
                },
            },
        },
        "server": {
            "type": "object",
            "additionalProperties": False,
            "description": (
                "Connection limits of `serve` (put a reverse proxy with its own limits in front as well)."
            ),
            "properties": {
                "header_timeout": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "default": 10,
                    "description": "Seconds a client may take to send a request's line and headers.",
                },
                "body_timeout": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "default": 15,
                    "description": "Seconds a client may take to send a request's body.",
                },
                "keepalive_timeout": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "default": 75,
                    "description": "Seconds an idle kept-alive connection stays open.",
                },
                "max_connections": {
                    "type": "integer",
                    "minimum": 1,
                    "default": 1000,
                    "description": (
                        "Open connections at most (lowered to fit the open-file limit); at the limit "
                        "the longest-waiting idle connection is closed for a new one."
                    ),
                },
            },
        },
        "http_allow": {
            "type": "array",
            "description": (
                "Hosts the `http` action may call: `host` (ports 80 and 443), `host:port`, `*.domain`, "
                "or {host, ports, private}. Names resolving to loopback, private or link-local "
                "addresses are refused unless the entry says `private: true`."
            ),
            "items": {
                "oneOf": [
                    {"type": "string", "minLength": 1},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["host"],
                        "properties": {
                            "host": {"type": "string", "minLength": 1},
                            "ports": {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "integer", "minimum": 1, "maximum": 65535},
                                "default": [80, 443],
                            },
                            "private": {
                                "type": "boolean",
                                "default": False,
                                "description": "Allow loopback, private and link-local addresses.",
                            },
                        },
                    },
                ]
            },
        },
        "http_timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 10,
            "description": "Seconds an `http` action may take in all, redirects included.",
        },
        "http_max_bytes": {
            "type": "integer",
            "minimum": 1,
            "default": 1048576,
            "description": "Largest answer an `http` action reads; a larger one fails the action.",
        },
        "pacing": {
            "type": "object",
            "description": (
                "How fast calls may be created, per provider (platforms cap it): dials and outbound starts "
                "wait their turn in a token bucket kept in the store, shared by every instance that shares "
                "it. Unset: no pacing."
            ),
            "propertyNames": {"enum": list(PROVIDERS)},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["rate"],
                "properties": {
                    "rate": {"type": "number", "exclusiveMinimum": 0,
                             "description": "Calls created per second, at most."},
                    "burst": {"type": "integer", "minimum": 1, "default": 1,
                              "description": "How many may go at once after a quiet spell."},
                    "max_wait": {"type": "number", "minimum": 0, "maximum": 25, "default": 20,
                                 "description": "Seconds a call may wait for its turn; one that would wait "
                                 "longer fails (action.failed, status 429)."},
                },
            },
        },
        "infobip": {
            "type": "object",
            "description": "Infobip settings (defaults from INFOBIP_* variables).",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "sinch": {
            "type": "object",
            "description": "Sinch settings (defaults from SINCH_* variables).",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "reconcile_after": {
            "type": "number",
            "minimum": 0,
            "default": 60,
            "description": (
                "Seconds a live session may go without a webhook before the engine asks the platform "
                "what happened to its calls and conferences (0: never; start-up always asks)."
            ),
        },
        "log_level": {
            "enum": ["debug", "info", "warning", "error"],
            "default": "info",
            "description": "Service log level.",
        },
        "insecure_webhooks": {
            "type": "boolean",
            "default": False,
            "description": (
                "Serve although the provider's webhooks are not authenticated (anyone who can reach the "
                "webhook route could then drive calls). Off: serve refuses to start without it."
            ),
        },
        "api_tokens": {
            "type": "array",
            "items": {"type": "string", "minLength": MIN_TOKEN_LENGTH},
            "description": (
                "Bearer tokens that open the read API (/api/...), the dashboard (/) and /metrics "
                "(`Authorization: Bearer <token>`); use ${VAR} references. None: those routes are closed."
            ),
        },
        "metrics_public": {
            "type": "boolean",
            "default": False,
            "description": "Serve /metrics without a token (for a scraper on a private network).",
        },
        "log_format": {
            "enum": list(FORMATS),
            "default": "text",
            "description": (
                "Service log lines: text, or json (one object per line with time, level, message and the "
                "session, call, flow, state, event and action it is about)."
            ),
        },
        "log_numbers": {
            "enum": ["masked", "full"],
            "default": "masked",
            "description": "Phone numbers in log lines: masked (+4479******89) or in full.",
        },
        "record": {
            "type": "object",
            "additionalProperties": False,
            "required": ["dir"],
            "description": (
                "Record each session's traffic as a replay file in `dir` (relative to this file): the "
                "webhooks and API events in, the commands and the platform's answers out, phone numbers "
                "replaced by placeholders and secrets removed. `flowengine replay` plays them against a "
                "flow and reports where its commands diverge."
            ),
            "properties": {
                "dir": {"type": "string", "minLength": 1, "description": "Folder of the replay files."},
                "redact": {
                    "type": "array",
                    "items": {"type": "string", "pattern": r"^[^.\s]+(\.[^.\s]+)*$"},
                    "default": [],
                    "description": (
                        "More fields to mask wherever they appear (webhook bodies, API events, command "
                        "arguments and answers): a field name (`pin`) or a dotted path of them "
                        "(`customer.email`), matched case-insensitively at any depth."
                    ),
                },
            },
        },
        "replay_ttl": {
            "type": "number",
            "minimum": 1,
            "default": DEFAULT_REPLAY_TTL,
            "description": (
                "Seconds every instance remembers a webhook event it has handled, so a replay is not acted "
                "on again; at least twice the provider's timestamp window."
            ),
        },
    },
}


def default(*path: str) -> Any:
    """The schema's default of the setting at ``path`` (``default("listen", "port")``)."""
    node: Any = CONFIG_SCHEMA
    for name in path:
        node = node["properties"][name]
    return node["default"]
