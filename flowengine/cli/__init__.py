"""The ``flowengine`` command line. Each subcommand lives in its own module, imported only when it runs
(click's lazy-group pattern), so ``flowengine validate`` starts without loading aiohttp."""

from __future__ import annotations

import importlib

import click

from flowengine import __version__

SUBCOMMANDS = {
    "validate": "Check flow files: YAML, the schema and the semantic rules.",
    "schema": "Print the JSON Schema of flow files (or of the config, or the OpenAPI description).",
    "simulate": "Play a flow's scenarios on a simulated platform and show the timeline.",
    "test": "Check every flow's scenarios against their expectations (for CI).",
    "graph": "Print a flow's state diagram (Mermaid or DOT).",
    "serve": "Serve the platform's webhooks and drive real calls.",
    "call": "Start an outbound flow's call on a running service.",
    "replay": "Replay recorded sessions against a flow and report where its commands diverge.",
    "simulator": "Run a simulated platform on its own.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return None
        command: click.Command = importlib.import_module(f"flowengine.cli.{cmd_name}").command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table above: listing commands must not import them all.
        with formatter.section("Commands"):
            formatter.write_dl(list(SUBCOMMANDS.items()))


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
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

    Exit codes: 0 ok, 1 problems found, 2 usage error, 3 fatal error.
    """


def main() -> None:
    cli(prog_name="flowengine")
