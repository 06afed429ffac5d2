"""``flowengine graph``: draw a flow's states and transitions as Mermaid or Graphviz DOT."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from flowengine.cli._common import EXIT_PROBLEMS
from flowengine.flow.loader import load_flow
from flowengine.flow.model import Flow


def _edges(flow: Flow) -> list[tuple[str, str, str]]:
    edges = []
    for name, state in flow.states.items():
        if state.final:
            continue
        for event, transitions in flow.handlers(name).items():
            edges += [
                (name, t.target, event + (" [when]" if t.when else "")) for t in transitions if t.target
            ]
        for timer in state.after:
            edges += [(name, t.target, f"after {timer.key}") for t in timer.transitions if t.target]
        edges += [
            (name, t.target, "always" + (" [when]" if t.when else "")) for t in state.always if t.target
        ]
    return edges


def mermaid(flow: Flow) -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {flow.initial}"]
    lines += [f"    {a} --> {b}: {label}" for a, b, label in _edges(flow)]
    lines += [f"    {name} --> [*]" for name, state in flow.states.items() if state.final]
    return "\n".join(lines)


def dot(flow: Flow) -> str:
    lines = [f'digraph "{flow.name}" {{', "    rankdir=LR;", "    node [shape=box, style=rounded];"]
    lines += [f'    "{name}" [shape=doublecircle];' for name, s in flow.states.items() if s.final]
    lines += [f'    "{a}" -> "{b}" [label="{label}"];' for a, b, label in _edges(flow)]
    return "\n".join([*lines, "}"])


@click.command("graph")
@click.argument("flow_path", metavar="FLOW", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format", "output", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True
)
def command(flow_path: Path, output: str) -> None:
    """Print FLOW's state diagram (Mermaid for Markdown/GitHub, or DOT for Graphviz).

    \b
    Example:
      flowengine graph flows/two_party_conference.yaml --format dot | dot -Tsvg > flow.svg
    """
    result = load_flow(flow_path)
    if result.flow is None:
        for diagnostic in result.errors:
            click.echo(diagnostic.format(), err=True)
        sys.exit(EXIT_PROBLEMS)
    click.echo(mermaid(result.flow) if output == "mermaid" else dot(result.flow))
