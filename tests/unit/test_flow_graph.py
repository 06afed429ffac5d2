"""The one graph description of a flow, and its DOT and Mermaid texts: what each edge says, where
flow-level handlers apply, and hostile text kept as text (quotes, backslashes, markup, entities)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowengine.cli import cli
from flowengine.flow.graph import ANY, Edge, FlowGraph, Node, flow_graph, to_dot, to_mermaid
from flowengine.flow.loader import load_flow_or_raise
from flowengine.graphviz import render_svg

FLOWS = Path(__file__).resolve().parents[2] / "flows"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz is not installed (Debian: apt-get install graphviz)")
HOSTILE = 'x == "<script>alert(1)</script>" and y != \'&amp;\' \\N \\G'


def test_every_state_is_a_node_and_every_transition_an_edge_with_what_labels_it() -> None:
    flow = load_flow_or_raise(FLOWS / "two_party_conference.yaml")
    graph = flow_graph(flow)
    assert [node.name for node in graph.nodes] == list(flow.states)
    assert {node.name for node in graph.nodes if node.final} == {"abandoned", "giving_up", "closing", "done"}
    assert [node.name for node in graph.nodes if node.initial] == ["answering"]
    labels = {(e.source, e.target, e.label) for e in graph.edges}
    assert ("dialing", "connected", "participant.joined [event.call == 'callee']") in labels
    assert ("dialing", "callee_unavailable", "after 75s") in labels
    assert [e.kind for e in graph.edges if e.event == "after 75s"] == ["after"]
    assert not any(e.source in ("closing", "done") for e in graph.edges)  # final states handle nothing


def test_a_flow_level_handler_leaves_any_state_and_names_the_states_that_replace_it() -> None:
    graph = flow_graph(load_flow_or_raise(FLOWS / "two_party_conference.yaml"))
    (anywhere,) = graph.handled_anywhere
    assert (anywhere.source, anywhere.target, anywhere.kind) == (ANY, "done", "flow")
    assert anywhere.label == "call.finished [event.call == 'caller']"
    assert anywhere.except_in == ("dialing", "connected")  # their own call.finished replaces it


def test_fallbacks_internal_transitions_and_actions_are_labelled() -> None:
    ivr = flow_graph(load_flow_or_raise(FLOWS / "ivr_menu.yaml"))
    menu = [e.label for e in ivr.edges if e.source == "menu" and e.event == "dtmf.captured"]
    assert menu[-1] == "dtmf.captured [else]" and menu[2] == "dtmf.captured [vars.attempts < 3]"
    moderated = flow_graph(load_flow_or_raise(FLOWS / "moderated_conference.yaml"))
    internal = [e for e in moderated.edges if e.target is None]
    assert [e.label for e in internal] == ["dtmf.captured [event.call != 'caller'] / log"]
    assert "dtmf.captured [event.digits == '5'] / kick" in [e.label for e in moderated.edges]


def _hostile_graph() -> FlowGraph:
    nodes = (Node("a", initial=True, description='<b>"desc"</b>'), Node("b", final=True))
    edges = (Edge("a", "b", "call.finished", "on", guard=HOSTILE),
             Edge(ANY, "b", "x.y", "flow", guard="1 < 2"))
    return FlowGraph('name "with" \\ quotes', 1, "a", nodes, edges)


def test_dot_text_keeps_quotes_backslashes_and_entities_as_text() -> None:
    dot = to_dot(_hostile_graph())
    assert 'digraph "name \\"with\\" \\\\ quotes"' in dot
    assert '\\"&lt;script&gt;' not in dot  # markup is left to Graphviz to escape, entities are not
    assert "&amp;amp;" in dot and "\\\\N \\\\G" in dot


@needs_dot
def test_graphviz_draws_hostile_text_as_text() -> None:
    svg = render_svg(to_dot(_hostile_graph()))
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "<!--" not in svg
    assert "<script" not in svg and "&lt;script&gt;" in svg
    assert "&amp;amp;" in svg  # the guard's "&amp;" is shown as written, not as "&"
    assert "\\N" in svg and "\\G" in svg  # not expanded into the node's name or the graph's


def test_mermaid_escapes_what_its_parser_would_take() -> None:
    text = to_mermaid(_hostile_graph())
    assert text.splitlines()[:2] == ["stateDiagram-v2", "    [*] --> a"]
    line = next(line for line in text.splitlines() if line.startswith("    a --> b: "))
    label = line.removeprefix("    a --> b: ")
    assert not set(label) & set('<>"#;:&') - {"#", ";", "&"}
    assert "#60;script#62;" in label and "#34;" in label
    assert "    any_state --> b: x.y [1 #60; 2]" in text and "    b --> [*]" in text


def test_cli_prints_mermaid_and_dot() -> None:
    runner = CliRunner()
    flow = str(FLOWS / "two_party_conference.yaml")
    mermaid = runner.invoke(cli, ["graph", flow])
    assert mermaid.exit_code == 0 and "dialing --> connected: participant.joined" in mermaid.output
    dot = runner.invoke(cli, ["graph", flow, "--format", "dot"])
    assert dot.exit_code == 0 and '"dialing" -> "connected"' in dot.output


@needs_dot
def test_cli_svg_is_the_graph_drawn_by_graphviz() -> None:
    flow = str(FLOWS / "ivr_menu.yaml")
    result = CliRunner().invoke(cli, ["graph", flow, "--format", "svg"])
    assert result.exit_code == 0 and result.output.startswith("<svg")
    dot = CliRunner().invoke(cli, ["graph", flow, "--format", "dot"]).output
    drawn = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True, check=False)
    assert drawn.returncode == 0 and drawn.stderr == b""
    states = load_flow_or_raise(FLOWS / "ivr_menu.yaml").states
    assert result.output.count('class="node"') == len(states) + 2  # and the start point and "any state"


def test_cli_svg_without_graphviz_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    result = CliRunner().invoke(cli, ["graph", str(FLOWS / "ivr_menu.yaml"), "--format", "svg"])
    assert result.exit_code != 0 and "apt-get install graphviz" in result.output
