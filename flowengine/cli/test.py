"""``flowengine test``: every scenario of every flow, checked against its expectations, with state and
transition coverage (for CI)."""

from __future__ import annotations

import asyncio
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from flowengine.cli._common import (
    EXIT_FATAL,
    EXIT_OK,
    EXIT_PROBLEMS,
    http_allow_entries,
    http_allow_options,
    setup_logging,
    use_color,
)
from flowengine.providers import PROVIDERS
from flowengine.scenarios.reporters import REPORTERS
from flowengine.scenarios.runner import REAL_LIMIT, VIRTUAL_LIMIT, Limits
from flowengine.scenarios.suite import run_files
from flowengine.simulator.parties import parse_duration

_EPILOG = """\b
A scenario, under a flow file's `scenarios:` key:
  scenarios:
    no-key-pressed:
      description: The caller never presses a key.
      caller: {hangup_after: 5m}            # also: press: [[2s, "1"]]
      parties: {"447415784323": {busy: true}}
      expect:
        state: done                         # the final state
        status: ended                       # or failed
        states: [answering, menu, menu, menu, voicemail_prompt, recording]
        visits: {menu: 3}                   # entries of a state, re-entries included
        actions: [answer, capture_dtmf, ...]
      http:                                 # answers for the flow's http actions
        - {method: POST, url: "https://crm.example.com/*", status: 200, body: {ok: true}}

\b
http actions: a request no `http:` mock matches fails the scenario, naming
it, unless its host is on --http-allow (then it is sent for real). Any http
action that fails fails the scenario, unless a mock's answer meant it to
(a mocked 500, a mocked delay past the timeout).

\b
Examples:
  flowengine test                               every flow under flows/, on both platforms
  flowengine test flows/ivr_menu.yaml -p sinch  one file, one platform
  flowengine test --min-coverage 80             fail when a flow's scenarios leave much untried
  flowengine test --format junit > report.xml   for the CI's test report

\b
Coverage, per flow file, over all its scenarios on the platforms run:
  states       which states were entered
  transitions  which transitions fired: each written entry under `on:` and
               `after:` (each choice of a guarded list counts on its own;
               a flow-level `on:` handler counts once)
Both are printed with what was never entered or fired; --min-coverage N
fails the run when either is under N percent for some file.

\b
A scenario that is not over (session ended, every call down) is stopped:
  --virtual-limit  after that much of its own time: the flow keeps going
  --real-limit     after that much wall-clock time: the run has stalled
and reported as having hit that limit.

\b
Exit codes:
  0  every scenario passed (and coverage, if asked, is enough)
  1  a scenario failed, a file has no scenarios (see --allow-empty) or does
     not load, or coverage is under --min-coverage
  2  usage error (bad option, missing path)
  3  internal error (run again with --debug for the traceback)
"""


def flow_files(paths: tuple[Path, ...]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()))
        elif path not in found:
            found.append(path)
    return found


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        seconds = parse_duration(value, param.name or "duration")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if seconds <= 0:
        raise click.BadParameter("must be more than 0")
    return seconds


@click.command("test", epilog=_EPILOG)
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("-p", "--provider", type=click.Choice([*PROVIDERS, "all"]), default="all", show_default=True,
              help="Which simulated platform to run every scenario on.")
@click.option("--format", "fmt", type=click.Choice(list(REPORTERS)), default="text", show_default=True,
              help="text for people, json for tools, junit for CI test reports (JUnit XML).")
@click.option("--allow-empty", is_flag=True,
              help="A flow file without scenarios is noted, not a failure.")
@click.option("--min-coverage", type=click.FloatRange(0, 100), metavar="PERCENT",
              help="Fail when a file's state or transition coverage is under PERCENT.")
@click.option("--virtual-limit", default=f"{VIRTUAL_LIMIT / 3600:g}h", show_default=True, callback=_duration,
              metavar="DURATION", help="Stop a scenario not over after this much virtual time (e.g. 2h).")
@click.option("--real-limit", default=f"{REAL_LIMIT:g}s", show_default=True, callback=_duration,
              metavar="DURATION", help="Stop a scenario not over after this much real time.")
@click.option("-v", "--verbose", is_flag=True, help="Show every scenario's timeline, not only failures'.")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Colour the text report; auto = on a terminal unless NO_COLOR is set.")
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
@http_allow_options
def command(paths: tuple[Path, ...], provider: str, fmt: str, allow_empty: bool, min_coverage: float | None,
            virtual_limit: float, real_limit: float, verbose: bool, color: str, debug: bool,
            http_allow: tuple[str, ...], http_allow_private: bool) -> None:
    """Run the scenarios of each flow in PATHS on the simulated platforms and check what each expects:
    the final state and status, the states entered, the actions sent. Then report, per flow file, which
    states and transitions the scenarios covered.

    PATH may be a file or a folder (every *.yaml and *.yml inside, recursively). Without PATH, the
    flows/ folder is tested. A file with no scenarios fails the run unless --allow-empty: a CI job that
    tested nothing has not passed.
    """
    setup_logging("error")
    if not paths and not Path("flows").is_dir():
        raise click.UsageError("no PATH given and there is no flows/ folder here")
    files = flow_files(paths or (Path("flows"),))
    if not files:
        raise click.UsageError("no flow files (*.yaml, *.yml) in " + ", ".join(map(str, paths)))
    options: dict[str, Any] = {
        "allow_empty": allow_empty, "min_coverage": min_coverage, "limits": Limits(virtual_limit, real_limit),
        "http_allow": http_allow_entries(http_allow, http_allow_private),
    }
    providers = list(PROVIDERS) if provider == "all" else [provider]
    try:
        run = asyncio.run(run_files(files, providers, **options))
    except Exception as exc:  # a bug, not a failed scenario: say so, with the traceback on request
        if debug:
            traceback.print_exc()
        click.echo(f"flowengine test: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_FATAL)
    painted = use_color(color) and fmt == "text"
    click.echo(REPORTERS[fmt](run, painted, verbose), nl=False, color=painted)
    click.echo(run.summary(), err=True)
    sys.exit(EXIT_OK if run.passed else EXIT_PROBLEMS)
