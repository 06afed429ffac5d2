"""``flowengine simulator``: run a simulated platform on its own, in wall-clock time."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml

from flowengine.cli._common import EXIT_USAGE, setup_logging
from flowengine.providers import PROVIDERS
from flowengine.simulator.parties import PartyBook
from flowengine.simulator.serve import serve_simulator


@click.command("simulator")
@click.option("-p", "--provider", type=click.Choice(PROVIDERS), required=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8081, show_default=True)
@click.option("--webhook-url", required=True, help="Where to POST events (the engine's webhook route).")
@click.option(
    "--parties",
    "parties_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML mapping of number -> party script (answer_after, busy, hangup_after, press, ...).",
)
def command(provider: str, host: str, port: int, webhook_url: str, parties_file: Path | None) -> None:
    """Serve a wire-faithful copy of the platform's API for an engine to talk to.

    Place calls and read what happened through its control API under
    /_simulator/ (POST /_simulator/calls {from, to, script}; GET requests,
    events, calls, conferences; PUT parties).

    \b
    Example:
      flowengine simulator -p infobip --port 8081 \\
          --webhook-url http://127.0.0.1:8080/webhooks/infobip
    """
    setup_logging("info")
    parties = None
    if parties_file is not None:
        try:
            parties = PartyBook.from_dict(yaml.safe_load(parties_file.read_text()) or {})
        except (ValueError, yaml.YAMLError) as exc:
            click.echo(f"flowengine: {parties_file}: {exc}", err=True)
            sys.exit(EXIT_USAGE)
    serve_simulator(provider, host, port, webhook_url, parties=parties)
