"""The service configuration (``flowengine.yaml``): provider, routes, store, listen address.

Secrets never live in the file: any string may be ``${ENV_VAR}`` (or ``${ENV_VAR:-default}``), and the
provider's credentials default to its environment variables. The JSON Schema below is the contract; the
published copy is ``schemas/config.schema.json``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from flowengine.errors import ConfigError
from flowengine.flow.vocabulary import ENV_REFERENCE
from flowengine.logformat import FORMATS
from flowengine.providers import PROVIDERS
from flowengine.providers.intake import DEPTH_CEILING, MAX_DEPTH, MAX_EVENTS
from flowengine.redaction import redact
from flowengine.server.allow_list import AllowList

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


@dataclass(frozen=True)
class Route:
    flow: Path
    to: str | None = None
    configuration: str | None = None


@dataclass(frozen=True)
class ServerLimits:
    """How long a client may take and how many may be connected at once (``server:``)."""

    header_timeout: float = 10.0
    body_timeout: float = 15.0
    keepalive_timeout: float = 75.0  # above a reverse proxy's usual 60 s upstream keep-alive
    max_connections: int = 1000


@dataclass(frozen=True)
class RecordSettings:
    """``record:``: where replay files go and which fields they mask besides numbers and secrets."""

    dir: Path
    redact: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceConfig:
    provider: str
    host: str = "127.0.0.1"
    port: int = 8080
    store: str = "sqlite:///flowengine.db"
    routes: tuple[Route, ...] = ()
    default_flow: Path | None = None
    flows: tuple[Path, ...] = ()  # outbound flows: loaded, started through the API, never routed
    webhook_path: str = "/webhooks"
    max_body_bytes: int = 262_144
    max_depth: int = MAX_DEPTH
    max_events: int = MAX_EVENTS
    server: ServerLimits = field(default_factory=ServerLimits)
    http_allow: tuple[str | Mapping[str, Any], ...] = ()
    http_timeout: float = 10.0
    http_max_bytes: int = 1_048_576
    provider_settings: Mapping[str, Any] = field(default_factory=dict)
    log_level: str = "info"
    reconcile_after: float = 60.0
    insecure_webhooks: bool = False
    api_tokens: tuple[str, ...] = field(default=(), repr=False)  # secrets: kept out of repr
    metrics_public: bool = False
    log_numbers: str = "masked"
    log_format: str = "text"
    replay_ttl: float = DEFAULT_REPLAY_TTL
    pacing: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # provider -> {rate, burst, ...}
    record: RecordSettings | None = None  # None: nothing is recorded

    def flow_paths(self) -> list[Path]:
        paths = [route.flow for route in self.routes]
        if self.default_flow is not None:
            paths.append(self.default_flow)
        return list(dict.fromkeys([*paths, *self.flows]))


_ENV = ENV_REFERENCE


def env_names(text: str) -> list[str]:
    """The environment variables a string refers to with ``${VAR}`` (or ``${VAR:-default}``)."""
    return [match["name"] for match in _ENV.finditer(text)]


def expand_env(value: Any, environ: Mapping[str, str], where: str = "") -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string; an unset variable is an error."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match["name"], match["default"]
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ConfigError(f'{where or "config"}: environment variable "{name}" is not set')

        return _ENV.sub(substitute, value)
    if isinstance(value, Mapping):
        return {k: expand_env(v, environ, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, environ, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> ServiceConfig:
    """Read, expand and validate a config file; raises ``ConfigError`` with every problem listed."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(redact(f"{path}: not valid YAML: {exc}")) from exc
    return parse_config(document, base=path.parent, name=str(path), environ=environ)


def parse_config(
    document: Any, *, base: Path = Path("."), name: str = "config", environ: Mapping[str, str] | None = None
) -> ServiceConfig:
    if not isinstance(document, dict):
        raise ConfigError(f"{name}: expected a mapping at the top level")
    document = expand_env(document, os.environ if environ is None else environ)
    problems = sorted(Draft202012Validator(CONFIG_SCHEMA).iter_errors(document), key=lambda e: list(e.path))
    if problems:
        # A schema message quotes the value it refuses, which may be a URL with a password in it.
        raise ConfigError(redact("\n".join(f"{name}: {_where(e)}{e.message}" for e in problems)))
    AllowList(document.get("http_allow", []))  # ConfigError naming an entry that does not parse
    listen = document.get("listen", {})
    webhook = document.get("webhook", {})
    provider = document["provider"]
    default = document.get("default_flow")
    return ServiceConfig(
        provider=provider,
        host=listen.get("host", "127.0.0.1"),
        port=listen.get("port", 8080),
        store=document.get("store", "sqlite:///flowengine.db"),
        routes=tuple(
            Route(base / r["flow"], r.get("to"), r.get("configuration")) for r in document.get("routes", [])
        ),
        default_flow=base / default if default else None,
        flows=tuple(base / flow for flow in document.get("flows", [])),
        webhook_path=webhook.get("path", "/webhooks").rstrip("/") or "/webhooks",
        max_body_bytes=webhook.get("max_body_bytes", 262_144),
        max_depth=webhook.get("max_depth", MAX_DEPTH),
        max_events=webhook.get("max_events", MAX_EVENTS),
        server=ServerLimits(**document.get("server", {})),
        http_allow=tuple(document.get("http_allow", [])),
        http_timeout=float(document.get("http_timeout", 10.0)),
        http_max_bytes=document.get("http_max_bytes", 1_048_576),
        provider_settings=document.get(provider, {}),
        log_level=document.get("log_level", "info"),
        reconcile_after=float(document.get("reconcile_after", 60.0)),
        insecure_webhooks=document.get("insecure_webhooks", False),
        api_tokens=tuple(document.get("api_tokens", [])),
        metrics_public=document.get("metrics_public", False),
        log_numbers=document.get("log_numbers", "masked"),
        log_format=document.get("log_format", "text"),
        replay_ttl=float(document.get("replay_ttl", DEFAULT_REPLAY_TTL)),
        pacing=document.get("pacing", {}),
        record=_record(document.get("record"), base),
    )


def _record(section: Mapping[str, Any] | None, base: Path) -> RecordSettings | None:
    if section is None:
        return None
    return RecordSettings(base / section["dir"], tuple(section.get("redact", ())))


def _where(error: ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    return f"{path}: " if path else ""
