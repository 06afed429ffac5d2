"""``flowengine graph``: draw a flow's states and transitions as Mermaid, Graphviz DOT or SVG. The
drawing comes from ``flow.graph``, the same description the dashboard draws."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from flowengine.cli._common import EXIT_PROBLEMS
from flowengine.errors import GraphvizError
from flowengine.flow.graph import flow_graph, to_dot, to_mermaid
from flowengine.flow.loader import load_flow
from flowengine.graphviz import render_svg


@click.command("graph")
@click.argument("flow_path", metavar="FLOW", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format", "output", type=click.Choice(["mermaid", "dot", "svg"]), default="mermaid", show_default=True,
    help="svg runs Graphviz's `dot` (Debian/Ubuntu: apt-get install graphviz).",
)
def command(flow_path: Path, output: str) -> None:
    """Print FLOW's state diagram: Mermaid for Markdown/GitHub, DOT for Graphviz, or SVG drawn by
    Graphviz. Timers are dashed, internal transitions dotted, flow-level handlers leave an "any state" box.

    \b
    Examples:
      flowengine graph flows/two_party_conference.yaml --format svg > flow.svg
      flowengine graph flows/two_party_conference.yaml --format dot | dot -Tpng > flow.png
    """
    result = load_flow(flow_path)
    if result.flow is None:
        for diagnostic in result.errors:
            click.echo(diagnostic.format(), err=True)
        sys.exit(EXIT_PROBLEMS)
    graph = flow_graph(result.flow)
    if output == "mermaid":
        click.echo(to_mermaid(graph))
        return
    if output == "dot":
        click.echo(to_dot(graph), nl=False)
        return
    try:
        click.echo(render_svg(to_dot(graph)))
    except GraphvizError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_PROBLEMS)

