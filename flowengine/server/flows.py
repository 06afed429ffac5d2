"""Load the configured flows once at start-up, checked against the provider's capabilities."""

from __future__ import annotations

from pathlib import Path

from flowengine.config import ServiceConfig
from flowengine.errors import ConfigError, FlowError
from flowengine.flow.loader import load_flow_or_raise
from flowengine.flow.model import Flow
from flowengine.providers import platform
from flowengine.server.routing import FlowRoute, Router


def load_flows(config: ServiceConfig) -> tuple[dict[str, Flow], Router]:
    """Every flow the routes name, by flow name, and the router; ``ConfigError`` lists what is wrong."""
    table = platform(config.provider)  # serve refuses a flow its platform cannot run
    by_path: dict[Path, Flow] = {}
    problems: list[str] = []
    for path in config.flow_paths():
        try:
            by_path[path] = load_flow_or_raise(path, platform=table)
        except FlowError as exc:
            problems.extend(d.format() for d in exc.diagnostics)
    if not config.flow_paths():
        problems.append("no flows: give routes, default_flow or flows")
    problems.extend(_misplaced(config, by_path))
    if problems:
        raise ConfigError("flows failed to load:\n" + "\n".join(problems))
    flows: dict[str, Flow] = {}
    for path, flow in by_path.items():
        if flow.name in flows and flows[flow.name].source != flow.source:
            raise ConfigError(f'two flows are named "{flow.name}": {flows[flow.name].source} and {path}')
        flows[flow.name] = flow
    routes = tuple(FlowRoute(by_path[r.flow].name, r.to, r.configuration) for r in config.routes)
    default = by_path[config.default_flow].name if config.default_flow is not None else None
    return flows, Router(routes, default)


def _misplaced(config: ServiceConfig, by_path: dict[Path, Flow]) -> list[str]:
    """An outbound flow answers no inbound call, and an inbound one is never dialled out: each goes where
    it can start (``routes``/``default_flow``, or ``flows``)."""
    routed = {route.flow for route in config.routes}
    if config.default_flow is not None:
        routed.add(config.default_flow)
    problems = []
    for path, flow in by_path.items():
        if path in routed and flow.outbound is not None:
            problems.append(f'{path}: flow "{flow.name}" is an outbound flow (start: outbound): it answers '
                            "no inbound call; list it under `flows` and start it with POST /api/calls")
        elif path not in routed and flow.outbound is None:
            problems.append(f'{path}: flow "{flow.name}" starts on inbound calls: route it with `routes` or '
                            "`default_flow` (`flows` is for outbound flows, start: outbound)")
    return problems
