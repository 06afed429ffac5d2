"""The ``flowengine`` command line. Each subcommand lives in its own module and registers here."""

from __future__ import annotations

import click

from flowengine import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="flowengine")
def cli() -> None:
    """Declarative YAML call flows for Infobip and Sinch voice.

    \b
    Author a flow in YAML, check it offline, simulate it against a local copy of
    the platform, and run it as a service that drives real calls.

    \b
    Examples:
      flowengine validate flows/                 check every flow in a folder
      flowengine simulate flows/two_party_conference.yaml --scenario callee-answers
      flowengine serve --config flowengine.yaml  run the webhook service
    """


def _register() -> None:
    # Subcommands import lazily-heavy modules (aiohttp) only when they run.
    import importlib

    for name in ("validate", "schema", "simulate", "serve", "simulator", "graph"):
        try:
            module = importlib.import_module(f"flowengine.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"flowengine.cli.{name}":
                raise
            continue
        cli.add_command(module.command)


_register()


def main() -> None:
    cli(prog_name="flowengine")
