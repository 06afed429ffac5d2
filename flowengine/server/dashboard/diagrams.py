"""Each flow drawn by Graphviz, server-side, as SVG placed in the page (no script needed to see it).

Why Graphviz on the server rather than Mermaid or ELK in the page: the pages stay script-free (a strict
Content-Security-Policy, nothing to ship or keep up to date in the package), the drawing is the same one
``flowengine graph --format svg`` prints, and ``dot`` lays out a few dozen states in ~20 ms. The cost is
one system package (``graphviz``); without it the page says so and lists the transitions instead.

A flow version is drawn once and kept (keyed by its DOT text, so a reloaded flow gets a new drawing):
every state's box holds a placeholder second line, which each page view fills with that state's live
sessions, and states with some get the ``live`` class, all by text substitution in a copy.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import OrderedDict
from collections.abc import Mapping
from urllib.parse import urlencode

from flowengine.errors import GraphvizError
from flowengine.flow.graph import ANY, DotOptions, FlowGraph, to_dot
from flowengine.graphviz import render_svg
from flowengine.server.dashboard.layout import link, shown

COUNT_SLOT = "0000 live"  # reserves room in each state's box for its count
KEEP = 64  # drawings kept (flows times versions)
_NODE = re.compile(r'<g id="state_(\d+)" class="node([^"]*)"(.*?)>' + re.escape(COUNT_SLOT) + "</text>", re.S)


class Diagrams:
    """Drawings of flow versions, made by Graphviz in a worker thread and kept (least recent out)."""

    def __init__(self, binary: str | None = None, keep: int = KEEP) -> None:
        self.binary = binary  # None: `dot` on the PATH
        self.keep = keep
        self._drawn: OrderedDict[str, str] = OrderedDict()
        self.runs = 0  # how many times Graphviz ran (the cache's test)

    async def svg(self, graph: FlowGraph, live: Mapping[str, int]) -> str:
        """The drawing of ``graph`` with ``live`` sessions per state; ``GraphvizError`` if it cannot be had
        (not cached: installing Graphviz later works without a restart)."""
        options = DotOptions(
            ids=True, link=lambda state: _sessions_of(graph.name, state), count_slot=COUNT_SLOT
        )
        source = to_dot(graph, options)
        key = hashlib.sha256(source.encode()).hexdigest()
        drawing = self._drawn.get(key)
        if drawing is None:
            self.runs += 1
            drawing = await asyncio.to_thread(render_svg, source, self.binary)
            self._drawn[key] = drawing
            while len(self._drawn) > self.keep:
                self._drawn.popitem(last=False)
        self._drawn.move_to_end(key)
        return with_counts(drawing, graph, live)


def with_counts(svg: str, graph: FlowGraph, live: Mapping[str, int]) -> str:
    """``svg`` with each state's placeholder replaced by its live count (nothing for none)."""

    def fill(match: re.Match[str]) -> str:
        index, classes, middle = int(match[1]), match[2], match[3]
        count = live.get(graph.nodes[index].name, 0) if index < len(graph.nodes) else 0
        if count:
            return f'<g id="state_{index}" class="node{classes} live"{middle}>{count} live</text>'
        return f'<g id="state_{index}" class="node{classes}"{middle}></text>'

    return _NODE.sub(fill, svg)


def _sessions_of(flow: str, state: str) -> str:
    return "/sessions?" + urlencode({"flow": flow, "state": state})


def transition_list(graph: FlowGraph, live: Mapping[str, int], problem: GraphvizError) -> str:
    """What the page shows instead of a drawing: why there is none, then every state and transition."""
    rows = []
    for node in graph.nodes:
        kind = "final" if node.final else ("initial" if node.initial else "")
        leaving = [edge for edge in graph.edges if edge.source == node.name]
        moves = "".join(
            f"<li>{shown(edge.label)} → {shown(edge.target or '(stays: internal)')}</li>" for edge in leaving
        )
        count = live.get(node.name, 0)
        href = link("/sessions", {"flow": graph.name, "state": node.name})
        rows.append(
            f'<tr class="state {kind}"><td><a href="{href}">'
            f"{shown(node.name)}</a> {shown(kind)}</td><td>{count or ''}</td><td><ul>{moves}</ul></td></tr>"
        )
    anywhere = "".join(
        f"<li>{shown(edge.label)} → {shown(edge.target or '(stays)')}"
        f"{' (not in ' + shown(', '.join(edge.except_in)) + ')' if edge.except_in else ''}</li>"
        for edge in graph.edges if edge.source == ANY
    )
    return (
        f'<p class="problem">No diagram: {shown(problem)}.</p>'
        '<table class="transitions"><thead><tr><th>state</th><th>live</th><th>transitions</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        + (f'<p>In any state that does not handle the event itself:</p><ul class="anywhere">{anywhere}</ul>'
           if anywhere else "")
    )
