"""``flowengine simulate``: play a flow's scenarios against a simulated platform: a line per scenario run,
the timeline of a failed one (every run's, in full, with ``-v``)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from flowengine.cli._common import (
    EXIT_FATAL,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    HttpAllow,
    http_allow_entries,
    http_allow_options,
    setup_logging,
    use_color,
)
from flowengine.errors import FlowEngineError
from flowengine.providers import PROVIDERS
from flowengine.scenarios.model import Scenario, load_scenarios
from flowengine.scenarios.runner import ScenarioResult, run_scenario
from flowengine.scenarios.timeline import final_state, format_result, result_json, summary_line


@click.command("simulate")
@click.argument("flow", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-s",
    "--scenario",
    "names",
    multiple=True,
    metavar="NAME",
    help="Scenario to play (repeatable). Default: every scenario in the flow file.",
)
@click.option(
    "-p",
    "--provider",
    type=click.Choice([*PROVIDERS, "all"]),
    default="infobip",
    show_default=True,
    help="Which simulated platform to run on.",
)
@click.option(
    "-v", "--verbose", is_flag=True,
    help="Show every run's whole timeline, events without a transition included.",
)
@click.option("--wire", is_flag=True, help="Show the timelines with each HTTP request the platform received.")
@click.option("--store", metavar="URL", help="Session store for the engine (default: a fresh SQLite file).")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="error",
    show_default=True,
    help="Engine log level (logs go to stderr).",
)
@http_allow_options
def command(
    flow: Path,
    names: tuple[str, ...],
    provider: str,
    verbose: bool,
    wire: bool,
    store: str | None,
    output: str,
    color: str,
    log_level: str,
    http_allow: tuple[str, ...],
    http_allow_private: bool,
) -> None:
    """Play FLOW's scenarios on a simulated platform and print what happened:
    a line per scenario and platform (PASS/FAIL, final state and status,
    virtual duration, commands sent), and the timeline of each failure
    (-v: every run's whole timeline).

    The engine and a wire-faithful copy of the platform run as two real HTTP
    servers on 127.0.0.1; virtual time makes a 60-second timeout take
    milliseconds. Scenarios live under the flow file's `scenarios:` key: the
    inbound caller, how dialled parties behave, and what to expect.

    \b
    Examples:
      flowengine simulate flows/two_party_conference.yaml
      flowengine simulate flows/two_party_conference.yaml -s callee-busy -v --wire
      flowengine simulate flows/two_party_conference.yaml --provider all --format json
      flowengine simulate flows/crm.yaml --http-allow 127.0.0.1:8081 --http-allow-private

    A flow's http actions are answered by the scenario's `http:` mocks; a
    request none matches fails, unless its host is on --http-allow.

    Exit codes: 0 every scenario met its expectations, 1 one did not, 2 usage, 3 fatal.
    """
    setup_logging(log_level)
    scenarios = _chosen(flow, names)
    providers = list(PROVIDERS) if provider == "all" else [provider]
    try:
        allow = http_allow_entries(http_allow, http_allow_private)
        results = asyncio.run(_play_all(flow, scenarios, providers, store, allow))
    except FlowEngineError as exc:
        click.echo(f"flowengine: {exc}", err=True)
        sys.exit(EXIT_FATAL)
    if output == "json":
        click.echo(json.dumps([result_json(r) for r in results], indent=2))
    else:
        _print_text(results, verbose=verbose or wire, wire=wire, color=use_color(color))
    sys.exit(EXIT_OK if all(r.passed for r in results) else EXIT_PROBLEMS)


def _print_text(results: list[ScenarioResult], *, verbose: bool, wire: bool, color: bool) -> None:
    """Verbose: each run's whole timeline. Else a summary line per run, and a failure's timeline without
    the events that changed nothing (the failure is what matters there)."""
    if verbose:
        click.echo("\n\n".join(format_result(r, wire=wire, color=color) for r in results))
    else:
        widths = (max(len(r.scenario.name) for r in results), max(len(final_state(r)) for r in results))
        for result in results:
            click.echo(summary_line(result, color=color, widths=widths))
            if not result.passed:
                click.echo("\n".join(format_result(result, color=color, full=False).splitlines()[2:]))
    failed = sum(not r.passed for r in results)
    hint = "" if verbose else " (-v: every timeline)"
    click.echo(f"\n{len(results) - failed} passed, {failed} failed{hint}", err=True)


def _chosen(flow: Path, names: tuple[str, ...]) -> list[Scenario]:
    try:
        available = load_scenarios(flow)
    except FlowEngineError as exc:
        click.echo(f"flowengine: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if not available:
        click.echo(f"flowengine: {flow} has no scenarios: add a `scenarios:` section", err=True)
        sys.exit(EXIT_USAGE)
    unknown = [name for name in names if name not in available]
    if unknown:
        click.echo(
            f'flowengine: no scenario "{unknown[0]}" in {flow}; choose from: {", ".join(available)}', err=True
        )
        sys.exit(EXIT_USAGE)
    return [available[name] for name in (names or tuple(available))]


async def _play_all(
    flow: Path, scenarios: list[Scenario], providers: list[str], store: str | None, http_allow: HttpAllow
) -> list[ScenarioResult]:
    return [
        await run_scenario(provider, flow, scenario, store=store, http_allow=http_allow)
        for provider in providers
        for scenario in scenarios
    ]
