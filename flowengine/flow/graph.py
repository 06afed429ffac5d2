"""A flow as a graph: the one description that ``flowengine graph`` prints and the dashboard draws.

``flow_graph`` lists the states and every transition with what labels it: the event (or ``after 10s``
for a timer), its guard, the actions it runs. Flow-level handlers start from ``ANY`` rather than from
each state, since they apply wherever a state does not handle the event itself (``except_in`` names
those states), and never in a final state. ``to_dot`` and ``to_mermaid`` turn the graph into text;
every string from the flow is escaped for the format it goes into, because guards and descriptions are
free text (``vars.attempts < 3``, quotes, backslashes) and the dashboard shows them to a browser.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

from flowengine.flow.model import Flow, Transition

ANY = "(any state)"  # no state name has a space or a bracket (the schema's pattern)
START = "(start)"
LABEL_WIDTH, LABEL_MAX = 44, 120  # characters per label line; longer labels are cut, the tooltip has it all


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    final: bool = False
    initial: bool = False
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Edge:
    """One transition. ``target`` None: internal (its actions run, the state stays, no exit or entry)."""

    source: str  # a state, or ANY for a flow-level handler
    target: str | None
    event: str  # an event name, "after 10s" for a timer, "always" for an eventless transition
    kind: str  # "on", "after", "always" or "flow"
    guard: str | None = None
    otherwise: bool = False  # unguarded, after guarded ones for the same event: taken when none held
    actions: tuple[str, ...] = ()
    except_in: tuple[str, ...] = ()  # flow-level: states whose own handler for the event replaces it

    @property
    def label(self) -> str:
        """``event [guard] / action, action`` as one line."""
        condition = f" [{self.guard}]" if self.guard else (" [else]" if self.otherwise else "")
        actions = f" / {', '.join(self.actions)}" if self.actions else ""
        return f"{self.event}{condition}{actions}"


@dataclass(frozen=True, slots=True)
class FlowGraph:
    name: str
    version: int
    initial: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...] = field(default=())

    @property
    def handled_anywhere(self) -> tuple[Edge, ...]:
        return tuple(edge for edge in self.edges if edge.source == ANY)


def flow_graph(flow: Flow) -> FlowGraph:
    """The states of ``flow`` and its transitions, flow-level handlers drawn once from ``ANY``."""
    nodes = tuple(
        Node(name, state.final, name == flow.initial, state.description)
        for name, state in flow.states.items()
    )
    edges: list[Edge] = []
    live = [name for name, state in flow.states.items() if not state.final]
    for event, transitions in flow.on.items():
        overridden = tuple(name for name in live if event in flow.states[name].on)
        if len(overridden) < len(live):  # a handler every state overrides is never used: not drawn
            edges += _edges(ANY, event, "flow", transitions, overridden)
    for name, state in flow.states.items():
        if state.final:
            continue  # a final state handles nothing: the session has ended
        for event, transitions in state.on.items():
            edges += _edges(name, event, "on", transitions)
        for timer in state.after:
            edges += _edges(name, f"after {timer.key}", "after", timer.transitions)
        edges += _edges(name, "always", "always", state.always)
    return FlowGraph(flow.name, flow.version, flow.initial, nodes, tuple(edges))


def _edges(
    source: str, event: str, kind: str, transitions: tuple[Transition, ...], except_in: tuple[str, ...] = ()
) -> list[Edge]:
    found = []
    for index, t in enumerate(transitions):
        otherwise = t.when is None and any(earlier.when for earlier in transitions[:index])
        actions = tuple(action.name for action in t.actions)
        found.append(Edge(source, t.target, event, kind, t.when, otherwise, actions, except_in))
    return found


# -- Graphviz DOT -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DotOptions:
    """What the dashboard adds to the plain drawing: element ids and classes for its style sheet, a link
    per state, and a second label line per state (``count_slot``) it later fills with live counts."""

    ids: bool = False
    link: Callable[[str], str] | None = None  # state -> URL (already percent-encoded)
    count_slot: str | None = None
    font: str = "Helvetica,Arial,sans-serif"


def to_dot(graph: FlowGraph, options: DotOptions | None = None) -> str:
    """The graph in Graphviz DOT: a start point, states (final ones with a double border), one arrow per
    transition labelled with its event, guard and actions, timers dashed, internal transitions dotted
    loops, and flow-level handlers from an "any state" box in a dashed cluster of their own."""
    o = options or DotOptions()
    font = _dot(o.font)
    start = {"shape": "circle", "width": "0.18", "style": "filled", "fillcolor": "#223344", "label": ""}
    cluster = {"label": "flow-level handlers", "style": "dashed,rounded", "color": "#7788aa",
               "fontcolor": "#556677"}
    anywhere = {"label": "any state", "style": "dashed,rounded", "color": "#7788aa"}
    if o.ids:
        start.update(id="start", **{"class": "start"})
        cluster["id"] = "any"
        anywhere.update(id="any_state", **{"class": "any"})
    lines = [
        f"digraph {_dot(graph.name)} {{",
        f"  graph [rankdir=LR, nodesep=0.35, ranksep=0.55, fontname={font}, fontsize=11];",
        f'  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname={font}, fontsize=12];',
        f'  edge [fontname={font}, fontsize=10, color="#445566", arrowsize=0.7];',
        f"  {_dot(START)} [{_attrs(start)}];",
        f"  {_dot(START)} -> {_dot(graph.initial)};",
    ]
    for index, node in enumerate(graph.nodes):
        lines.append(f"  {_dot(node.name)} [{_attrs(_node_attrs(node, index, o))}];")
    if graph.handled_anywhere:
        lines += ["  subgraph cluster_any {", f"    graph [{_attrs(cluster)}];",
                  f"    {_dot(ANY)} [{_attrs(anywhere)}];", "  }"]
    for index, group in enumerate(_parallel(graph.edges)):
        first = group[0]
        target = first.target or first.source  # internal: a loop on the state it stays in
        lines.append(f"  {_dot(first.source)} -> {_dot(target)} [{_attrs(_edge_attrs(group, index, o))}];")
    return "\n".join([*lines, "}"]) + "\n"


def _node_attrs(node: Node, index: int, o: DotOptions) -> dict[str, str]:
    label = _label_text(node.name) + (f"\\n{_label_text(o.count_slot)}" if o.count_slot else "")
    attrs = {"label": label}
    if node.final:
        attrs.update(peripheries="2", fillcolor="#e8ecf4", color="#334455")
    if o.ids:
        kinds = ["state", *(["final"] if node.final else []), *(["initial"] if node.initial else [])]
        attrs.update(id=f"state_{index}", **{"class": " ".join(kinds)})
        attrs["tooltip"] = _label_text(node.description or node.name)
    if o.link is not None:
        attrs["URL"] = _label_text(o.link(node.name))
    return attrs


def _parallel(edges: tuple[Edge, ...]) -> list[list[Edge]]:
    """Edges of one kind between the same two states, as one arrow labelled with each of them (a state
    with seven keypad loops gets one loop with seven lines, not seven loops drawn over each other)."""
    groups: dict[tuple[str, str | None, str], list[Edge]] = {}
    for edge in edges:
        groups.setdefault((edge.source, edge.target, _kind(edge)), []).append(edge)
    return list(groups.values())


def _kind(edge: Edge) -> str:
    return "internal" if edge.target is None else edge.kind


def _edge_attrs(group: list[Edge], index: int, o: DotOptions) -> dict[str, str]:
    labels = [edge.label + (f" (not in {', '.join(edge.except_in)})" if edge.except_in else "")
              for edge in group]
    kind = _kind(group[0])
    attrs = {"label": "\\n".join(_wrapped(label) for label in labels)}
    if kind == "after":
        attrs["style"] = "dashed"
    elif kind == "always":
        attrs["style"] = "bold"
    elif kind == "internal":
        attrs["style"] = "dotted"
    elif kind == "flow":
        attrs["color"] = attrs["fontcolor"] = "#6677aa"
    if o.ids:
        attrs.update(id=f"edge_{index}", **{"class": f"transition {kind}"})
        attrs["tooltip"] = _label_text("; ".join(labels))
    return attrs


def _wrapped(label: str) -> str:
    if len(label) > LABEL_MAX:
        label = label[: LABEL_MAX - 1] + "…"
    lines = textwrap.wrap(label, LABEL_WIDTH, break_long_words=True, break_on_hyphens=False) or [""]
    return "\\n".join(_label_text(line) for line in lines)


def _label_text(text: str) -> str:
    """Text for inside a DOT string: backslashes and quotes escaped (so ``\\N`` or a quote stays text),
    ``&`` written as an entity (Graphviz would keep ``&lt;`` as a character reference), no line breaks."""
    flat = " ".join(text.split())
    return flat.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")


def _dot(name: str) -> str:
    return f'"{_label_text(name)}"'


def _attrs(attrs: dict[str, str]) -> str:
    return ", ".join(f'{key}="{value}"' for key, value in attrs.items())


# -- Mermaid ------------------------------------------------------------------------------------------
def to_mermaid(graph: FlowGraph) -> str:
    """The graph as a Mermaid ``stateDiagram-v2`` (renders in Markdown on GitHub and GitLab)."""
    lines = ["stateDiagram-v2", f"    [*] --> {graph.initial}"]
    if graph.handled_anywhere:
        lines.append('    state "any state (flow-level handlers)" as any_state')
    for edge in graph.edges:
        source = "any_state" if edge.source == ANY else edge.source
        label = edge.label + (f" (not in {', '.join(edge.except_in)})" if edge.except_in else "")
        label += " (internal)" if edge.target is None else ""
        lines.append(f"    {source} --> {edge.target or edge.source}: {_mermaid(label)}")
    lines += [f"    {node.name} --> [*]" for node in graph.nodes if node.final]
    return "\n".join(lines)


def _mermaid(text: str) -> str:
    """Mermaid's entity codes (``#35;``) for the characters its parser or its HTML labels would take."""
    return "".join(f"#{ord(c)};" if c in '#;:"<>{}&\\' else c for c in " ".join(text.split()))
