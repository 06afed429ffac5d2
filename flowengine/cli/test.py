"""``flowengine test``: every scenario of every flow, checked against its expectations (for CI)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from flowengine.cli._common import EXIT_FATAL, EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, setup_logging, use_color
from flowengine.errors import FlowEngineError
from flowengine.providers import PROVIDERS
from flowengine.scenarios.model import load_scenarios
from flowengine.scenarios.runner import ScenarioResult, run_scenario
from flowengine.scenarios.timeline import format_result, result_json


def flow_files(paths: tuple[Path, ...]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")))
        else:
            found.append(path)
    return found


@click.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("-p", "--provider", type=click.Choice([*PROVIDERS, "all"]), default="all", show_default=True)
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="Show every scenario's timeline, not only failures'.")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True)
def command(paths: tuple[Path, ...], provider: str, output: str, verbose: bool, color: str) -> None:
    """Run the scenarios of each flow in PATHS (files or folders; default: flows/) on the simulators
    and check what each expects: the final state, the status, the actions sent.

    \b
    Examples:
      flowengine test                        every flow under flows/, on both platforms
      flowengine test flows/ivr_menu.yaml -p sinch

    Exit codes: 0 all passed, 1 a scenario failed, 2 usage, 3 fatal.
    """
    setup_logging("error")
    files = flow_files(paths or (Path("flows"),))
    if not files:
        click.echo("flowengine: no flow files found", err=True)
        sys.exit(EXIT_USAGE)
    providers = list(PROVIDERS) if provider == "all" else [provider]
    try:
        results = asyncio.run(_run(files, providers))
    except FlowEngineError as exc:
        click.echo(f"flowengine: {exc}", err=True)
        sys.exit(EXIT_FATAL)
    _report(results, output, verbose, use_color(color))
    sys.exit(EXIT_OK if all(r.passed for r in results) else EXIT_PROBLEMS)


async def _run(files: list[Path], providers: list[str]) -> list[ScenarioResult]:
    results = []
    for path in files:
        for scenario in load_scenarios(path).values():
            for provider in providers:
                results.append(await run_scenario(provider, path, scenario))
    return results


def _report(results: list[ScenarioResult], output: str, verbose: bool, color: bool) -> None:
    if output == "json":
        click.echo(json.dumps([result_json(r) for r in results], indent=2))
        return
    for result in results:
        if verbose or not result.passed:
            click.echo(format_result(result, color=color))
        else:
            click.echo(
                f"PASS {result.scenario.name} on {result.provider} ({result.virtual_seconds:.1f} virtual s)"
            )
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results) - failed} passed, {failed} failed", err=True)
