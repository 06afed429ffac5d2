"""Load the configured flows, checked against the provider's capabilities: at start-up, on a reload (every
file read and checked again, nothing changed unless all pass), and a stored version on demand.

Each flow is loaded with its version (``flow/version.py``: a hash of the resolved source) and that source,
which the store keeps so any instance can run a session on the version it started on (``server.catalog``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from flowengine.config import ServiceConfig
from flowengine.errors import ConfigError, FlowError
from flowengine.flow.diagnostics import Diagnostic
from flowengine.flow.loader import check_text, load_flow
from flowengine.flow.model import Flow
from flowengine.flow.platform import Platform
from flowengine.flow.version import resolved_source, version_of
from flowengine.providers import platform
from flowengine.redaction import redact_json
from flowengine.server.routing import FlowRoute, Router

CONFIG_RULE = "config"  # the rule of a problem with how the config uses a flow, not with the flow itself


@dataclass(frozen=True, slots=True)
class FlowVersion:
    """One version of a flow: the compiled flow, its version (hash), its resolved source, and what the
    store keeps of that source (``kept_source``)."""

    flow: Flow
    version: str
    source: str

    @property
    def kept(self) -> str:
        return kept_source(self.source)


def kept_source(source: str) -> str:
    """What the store may keep of a resolved source: the source itself, or, when it holds text that reads
    as a secret (a URL's password or query values, an Authorization value, ``token=...``), a copy with
    those masked (``redaction``): no secret is written to the store. A masked copy cannot be run; an
    instance runs that version only from its own files (``server.catalog``)."""
    doc = json.loads(source)
    masked = redact_json(doc)
    return source if masked == doc else resolved_source(masked)


@dataclass(frozen=True, slots=True)
class LoadedFlows:
    versions: dict[str, FlowVersion]  # by flow name
    router: Router

    @property
    def flows(self) -> dict[str, Flow]:
        return {name: loaded.flow for name, loaded in self.versions.items()}


def read_flows(config: ServiceConfig) -> LoadedFlows:
    """Every flow the config names, read from its files and checked as ``flowengine validate`` checks it,
    with the router; ``FlowError`` carries every problem (a flow's diagnostics, or how the config uses it)."""
    table = platform(config.provider)  # serve refuses a flow its platform cannot run
    by_path: dict[Path, FlowVersion] = {}
    problems: list[Diagnostic] = []
    for path in config.flow_paths():
        result = load_flow(path, platform=table)
        if result.flow is None or result.resolved is None:
            problems.extend(result.errors or result.diagnostics)
        else:
            by_path[path] = FlowVersion(result.flow, version_of(result.resolved), result.resolved)
    if not config.flow_paths():
        problems.append(_problem(Path("<config>"), "no flows: give routes, default_flow or flows"))
    problems.extend(_misplaced(config, by_path))
    versions: dict[str, FlowVersion] = {}
    for path, loaded in by_path.items():
        name = loaded.flow.name
        if name in versions and versions[name].flow.source != loaded.flow.source:
            other = versions[name].flow.source
            problems.append(_problem(path, f'two flows are named "{name}": {other} and {path}'))
        versions[name] = loaded
    if problems:
        raise FlowError(tuple(problems))
    routes = tuple(FlowRoute(by_path[r.flow].flow.name, r.to, r.configuration) for r in config.routes)
    default = by_path[config.default_flow].flow.name if config.default_flow is not None else None
    return LoadedFlows(versions, Router(routes, default))


def start_flows(config: ServiceConfig) -> LoadedFlows:
    """``read_flows`` for start-up: ``ConfigError`` lists what is wrong."""
    try:
        return read_flows(config)
    except FlowError as exc:
        lines = "\n".join(d.format() for d in exc.diagnostics)
        raise ConfigError(f"flows failed to load:\n{lines}") from None


def load_flows(config: ServiceConfig) -> tuple[dict[str, Flow], Router]:
    """``start_flows``' flows by name and router."""
    loaded = start_flows(config)
    return loaded.flows, loaded.router


def compile_source(name: str, version: str, source: str, table: Platform) -> Flow:
    """A stored version's flow (its resolved source, checked again: the platform's table may have changed
    since); ``FlowError`` when it no longer loads or is not what its version says."""
    shown = f"<flow {name} version {version}>"
    if version_of(source) != version:
        raise FlowError((Diagnostic(shown, 1, 1, "error", "the stored source does not match its version",
                                    CONFIG_RULE),))
    checked = check_text(source, shown, platform=table)
    if checked.flow is None:
        raise FlowError(tuple(d for d in checked.diagnostics if d.is_error))
    return checked.flow


def _problem(path: Path, message: str) -> Diagnostic:
    return Diagnostic(str(path), 1, 1, "error", message, CONFIG_RULE)


def _misplaced(config: ServiceConfig, by_path: dict[Path, FlowVersion]) -> list[Diagnostic]:
    """An outbound flow answers no inbound call, and an inbound one is never dialled out: each goes where
    it can start (``routes``/``default_flow``, or ``flows``)."""
    routed = {route.flow for route in config.routes}
    if config.default_flow is not None:
        routed.add(config.default_flow)
    problems = []
    for path, loaded in by_path.items():
        flow = loaded.flow
        if path in routed and flow.outbound is not None:
            problems.append(_problem(path, f'flow "{flow.name}" is an outbound flow (start: outbound): it '
                                     "answers no inbound call; list it under `flows` and start it with "
                                     "POST /api/calls"))
        elif path not in routed and flow.outbound is None:
            problems.append(_problem(path, f'flow "{flow.name}" starts on inbound calls: route it with '
                                     "`routes` or `default_flow` (`flows` is for outbound flows, start: "
                                     "outbound)"))
    return problems
