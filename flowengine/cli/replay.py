"""``flowengine replay``: recorded sessions played against a flow; where its commands diverge."""

from __future__ import annotations

import asyncio
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import click

from flowengine.cli._common import EXIT_FATAL, EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, setup_logging, use_color

if TYPE_CHECKING:
    from flowengine.recordings.replayer import Outcome

_EPILOG = """\b
Record first: in the service's config,
  record:
    dir: recordings/            # one file per session, written when it ends
    redact: [pin, customer.email]   # more fields to mask (numbers and secrets always are)

\b
Examples:
  flowengine replay recordings/                     every file, against the flow each was recorded with
  flowengine replay recordings/ --flow flows/new.yaml   last night's calls against a new version
  flowengine replay recordings/*.replay.json --format json

\b
Each file's webhooks and API events are fed again, at their recorded times
(virtual time: a 10-minute call replays in milliseconds), to the service
core with a memory store; each command the flow sends is answered from the
recording, and these are reported:
  added      a command the recording does not have (answered: success)
  missing    a recorded command the flow no longer sends
  changed    the same command with other arguments (the fields that differ)
  input      a recorded input the service refused this time
  end        another final state or status
  unfinished the flow kept going past the replay's limits

\b
Exit codes:
  0  no file diverged
  1  some file diverged
  2  usage error, or a file or flow that cannot be read (the message says why)
  3  internal error (run again with --debug for the traceback)
"""


def replay_files(paths: tuple[Path, ...]) -> list[Path]:
    """The files named, and every ``*.replay.json`` in the folders named."""
    from flowengine.recordings.fileformat import SUFFIX

    found: list[Path] = []
    for path in paths:
        found.extend(sorted(path.rglob(f"*{SUFFIX}")) if path.is_dir() else [path])
    return list(dict.fromkeys(found))


@click.command("replay", epilog=_EPILOG)
@click.argument("paths", metavar="FILE...", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--flow", "flow_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Replay against this flow file instead of the one each recording names.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for tools.")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Colour the text report; auto = on a terminal unless NO_COLOR is set.")
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
def command(paths: tuple[Path, ...], flow_path: Path | None, fmt: str, color: str, debug: bool) -> None:
    """Replay recorded sessions (replay files, or folders of them) against a flow and report where the
    commands it sends diverge from the recorded ones: last night's real traffic as a regression test
    before a flow change is deployed. Nothing is sent to a platform or to an http host.
    """
    from flowengine.recordings.report import to_json, to_text

    setup_logging("error")
    files = replay_files(paths)
    if not files:
        raise click.UsageError("no replay files (*.replay.json) in " + ", ".join(map(str, paths)))
    try:
        outcomes = asyncio.run(_replay_all(files, flow_path))
    except Exception as exc:  # a bug, not a divergence: say so, with the traceback on request
        if debug:
            traceback.print_exc()
        click.echo(f"flowengine replay: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_FATAL)
    painted = use_color(color) and fmt == "text"
    click.echo(to_json(outcomes) if fmt == "json" else to_text(outcomes, painted), nl=False, color=painted)
    if any(o.error is not None for o in outcomes):
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_PROBLEMS if any(o.diverged for o in outcomes) else EXIT_OK)


async def _replay_all(files: list[Path], flow_path: Path | None) -> list[Outcome]:
    from flowengine.errors import FlowError, RecordingError
    from flowengine.recordings.replayer import Outcome, load_recording, replay

    outcomes: list[Outcome] = []
    for path in files:
        try:
            document, flow = load_recording(path, flow_path)
        except RecordingError as exc:
            outcomes.append(Outcome(path, error=str(exc)))
            continue
        except FlowError as exc:
            outcomes.append(Outcome(path, error="\n  ".join(d.format() for d in exc.diagnostics)))
            continue
        outcomes.append(await replay(path, document, flow))
    return outcomes
