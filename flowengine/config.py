"""The service configuration (``flowengine.yaml``): provider, routes, store, listen address.

Secrets never live in the file: any string may be ``${ENV_VAR}`` (or ``${ENV_VAR:-default}``), and the
provider's credentials default to its environment variables. The JSON Schema (``config_schema``) is the
contract and holds every default; the published copy is ``schemas/config.schema.json``.
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

from flowengine.config_schema import CONFIG_SCHEMA, DEFAULT_REPLAY_TTL, MIN_TOKEN_LENGTH, default
from flowengine.errors import ConfigError
from flowengine.flow.vocabulary import ENV_REFERENCE
from flowengine.plainjson import json_place
from flowengine.redaction import redact
from flowengine.server.allow_list import AllowList

__all__ = [
    "CONFIG_SCHEMA", "DEFAULT_REPLAY_TTL", "MIN_TOKEN_LENGTH", "RecordSettings", "Route", "ServerLimits",
    "ServiceConfig", "env_names", "expand_env", "load_config", "parse_config",
]


@dataclass(frozen=True)
class Route:
    flow: Path
    to: str | None = None
    configuration: str | None = None


@dataclass(frozen=True)
class ServerLimits:
    """How long a client may take and how many may be connected at once (``server:``)."""

    header_timeout: float = default("server", "header_timeout")
    body_timeout: float = default("server", "body_timeout")
    keepalive_timeout: float = default("server", "keepalive_timeout")  # above a proxy's usual 60 s
    max_connections: int = default("server", "max_connections")


@dataclass(frozen=True)
class RecordSettings:
    """``record:``: where replay files go and which fields they mask besides numbers and secrets."""

    dir: Path
    redact: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceConfig:
    provider: str
    host: str = default("listen", "host")
    port: int = default("listen", "port")
    store: str = default("store")
    routes: tuple[Route, ...] = ()
    default_flow: Path | None = None
    flows: tuple[Path, ...] = ()  # outbound flows: loaded, started through the API, never routed
    webhook_path: str = default("webhook", "path")
    max_body_bytes: int = default("webhook", "max_body_bytes")
    max_depth: int = default("webhook", "max_depth")
    max_events: int = default("webhook", "max_events")
    server: ServerLimits = field(default_factory=ServerLimits)
    http_allow: tuple[str | Mapping[str, Any], ...] = ()
    http_timeout: float = default("http_timeout")
    http_max_bytes: int = default("http_max_bytes")
    provider_settings: Mapping[str, Any] = field(default_factory=dict)
    log_level: str = default("log_level")
    reconcile_after: float = default("reconcile_after")
    insecure_webhooks: bool = default("insecure_webhooks")
    api_tokens: tuple[str, ...] = field(default=(), repr=False)  # secrets: kept out of repr
    metrics_public: bool = default("metrics_public")
    log_numbers: str = default("log_numbers")
    log_format: str = default("log_format")
    replay_ttl: float = default("replay_ttl")
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
    listen, webhook = document.get("listen", {}), document.get("webhook", {})
    provider = document["provider"]
    default_flow = document.get("default_flow")
    # Only what the file says is passed on: whatever it leaves out takes the dataclass's default, which
    # is the schema's.
    given = {key: document[key] for key in _AS_WRITTEN if key in document}
    for key in ("http_timeout", "reconcile_after", "replay_ttl"):
        if key in given:
            given[key] = float(given[key])
    return ServiceConfig(
        provider=provider,
        **{key: listen[key] for key in ("host", "port") if key in listen},
        **{f"max_{key}": webhook[f"max_{key}"] for key in ("body_bytes", "depth", "events")
           if f"max_{key}" in webhook},
        webhook_path=str(webhook.get("path", "")).rstrip("/") or default("webhook", "path"),
        routes=tuple(
            Route(base / r["flow"], r.get("to"), r.get("configuration")) for r in document.get("routes", [])
        ),
        default_flow=base / default_flow if default_flow else None,
        flows=tuple(base / flow for flow in document.get("flows", [])),
        server=ServerLimits(**document.get("server", {})),
        http_allow=tuple(document.get("http_allow", [])),
        provider_settings=document.get(provider, {}),
        api_tokens=tuple(document.get("api_tokens", [])),
        pacing=document.get("pacing", {}),
        record=_record(document.get("record"), base),
        **given,
    )


# Settings whose value in the file is the config's value as it is (no paths, no nesting).
_AS_WRITTEN = (
    "store", "http_timeout", "http_max_bytes", "log_level", "reconcile_after", "insecure_webhooks",
    "metrics_public", "log_numbers", "log_format", "replay_ttl",
)


def _record(section: Mapping[str, Any] | None, base: Path) -> RecordSettings | None:
    if section is None:
        return None
    return RecordSettings(base / section["dir"], tuple(section.get("redact", ())))


def _where(error: ValidationError) -> str:
    path = json_place(error.absolute_path)
    return f"{path}: " if path else ""
