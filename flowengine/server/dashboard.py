"""A small dashboard: each flow drawn as its states (columns by distance from ``initial``), with the
number of live sessions in each state. Server-rendered SVG, no scripts, refreshed every few seconds."""

from __future__ import annotations

from collections import Counter
from html import escape

from flowengine.flow.model import Flow

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 150, 44, 60, 22, 16


def layers(flow: Flow) -> dict[str, int]:
    """Each state's column: its distance from ``initial``; unreachable states go last."""
    column = {flow.initial: 0}
    frontier = [flow.initial]
    while frontier:
        following = []
        for name in frontier:
            for target in _targets(flow, name):
                if target in flow.states and target not in column:
                    column[target] = column[name] + 1
                    following.append(target)
        frontier = following
    last = max(column.values(), default=0) + 1
    return {name: column.get(name, last) for name in flow.states}


def _targets(flow: Flow, state: str) -> list[str]:
    if flow.states[state].final:
        return []
    found = [t.target for ts in flow.handlers(state).values() for t in ts if t.target]
    found += [t.target for timer in flow.states[state].after for t in timer.transitions if t.target]
    return found


def flow_svg(flow: Flow, live: Counter[str]) -> str:
    column = layers(flow)
    rows: Counter[int] = Counter()
    place: dict[str, tuple[int, int]] = {}
    for name in flow.states:
        place[name] = (PAD + column[name] * (BOX_W + GAP_X), PAD + rows[column[name]] * (BOX_H + GAP_Y))
        rows[column[name]] += 1
    width = PAD * 2 + (max(column.values()) + 1) * (BOX_W + GAP_X) - GAP_X
    height = PAD * 2 + max(rows.values()) * (BOX_H + GAP_Y) - GAP_Y
    edges = [_edge(place[a], place[b]) for a in flow.states for b in set(_targets(flow, a)) if b in place]
    boxes = [_box(name, place[name], flow.states[name].final, live[name]) for name in flow.states]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="states of {escape(flow.name)}">' + "".join(edges + boxes) + "</svg>"
    )


def _edge(a: tuple[int, int], b: tuple[int, int]) -> str:
    x1, y1 = a[0] + BOX_W, a[1] + BOX_H // 2
    x2, y2 = b[0], b[1] + BOX_H // 2
    if b[0] <= a[0]:  # a step back or sideways: leave from the box's bottom edge
        x1, y1 = a[0] + BOX_W // 2, a[1] + BOX_H
    return f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#9aa" stroke-width="1"/>'


def _box(name: str, at: tuple[int, int], final: bool, count: int) -> str:
    x, y = at
    fill = "#ffe9b3" if count else ("#eef" if final else "#fff")
    badge = f" ({count} live)" if count else ""
    return (
        f"<g><title>{escape(name)}{badge}</title>"
        f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8" fill="{fill}" stroke="#456" '
        f'stroke-width="{2 if final else 1}"/>'
        f'<text x="{x + 8}" y="{y + 18}" font-size="13" font-family="sans-serif">{escape(name)}</text>'
        f'<text x="{x + 8}" y="{y + 36}" font-size="12" font-family="sans-serif" fill="#a50">'
        f"{count or ''}</text></g>"
    )


def page(flows: list[Flow], live: Counter[tuple[str, str]], refresh: int = 3) -> str:
    sections = []
    for flow in flows:
        counts = Counter({state: n for (name, state), n in live.items() if name == flow.name})
        total = sum(counts.values())
        sections.append(
            f"<section><h2>{escape(flow.name)} <small>v{flow.version} — {total} live "
            f"session{'s' if total != 1 else ''}</small></h2>"
            f"<p>{escape(flow.description or '')}</p>{flow_svg(flow, counts)}</section>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='{refresh}'><title>flowengine</title>"
        "<style>body{font-family:sans-serif;margin:2em}small{color:#667;font-weight:normal}</style>"
        "</head><body><h1>flowengine</h1>" + "".join(sections) + "</body></html>"
    )
