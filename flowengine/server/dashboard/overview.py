"""The front page: every flow drawn, with how many sessions are live in each state and how many failed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from flowengine.errors import GraphvizError
from flowengine.flow.graph import flow_graph
from flowengine.flow.model import Flow
from flowengine.server.dashboard.diagrams import Diagrams, transition_list
from flowengine.server.dashboard.layout import link, shown
from flowengine.stores.base import SessionStore

FAILED_SHOWN = 100  # failed sessions counted per flow; past that "100+"
LEGEND = (
    '<p class="legend">Arrows are transitions, labelled <code>event [guard] / actions</code>; dashed ones '
    "are timers (<code>after</code>), dotted loops internal transitions (actions only). Boxes with a "
    "double border are final states; a highlighted box has live sessions in it (click a state for them). "
    "The dashed <em>flow-level handlers</em> box stands for every state that does not handle the event "
    "itself.</p>"
)


async def overview(flows: Iterable[Flow], store: SessionStore, diagrams: Diagrams) -> tuple[str, str]:
    """(title, body) of the front page."""
    live = (await store.census(_any_kind)).live  # counted by the store, every session: none loaded
    sections = []
    for flow in flows:
        failed = len(await store.list_sessions(status="failed", flow=flow.name, limit=FAILED_SHOWN))
        counts = Counter({state: n for (name, state), n in live.items() if name == flow.name})
        sections.append(await _section(flow, counts, failed, diagrams))
    body = LEGEND + ("".join(sections) or "<p>No flows are loaded.</p>")
    return "Flows", body


def _any_kind(timer_id: str) -> str:
    return ""  # the page shows no timers


async def _section(flow: Flow, live: Counter[str], failed: int, diagrams: Diagrams) -> str:
    graph = flow_graph(flow)
    try:
        drawing = f'<figure class="diagram">{await diagrams.svg(graph, live)}</figure>'
    except GraphvizError as exc:
        drawing = transition_list(graph, live, exc)
    total = sum(live.values())
    failures = f"{failed}{'+' if failed >= FAILED_SHOWN else ''} failed"
    states = "".join(
        f'<li><a href="{link("/sessions", {"flow": flow.name, "state": state, "status": "active"})}">'
        f"{shown(state)}</a>: {n}</li>"
        for state, n in sorted(live.items())
    )
    live_href = link("/sessions", {"flow": flow.name, "status": "active"})
    failed_href = link("/sessions", {"flow": flow.name, "status": "failed"})
    return (
        f'<section class="flow" id="flow-{shown(flow.name)}">'
        f"<h2>{shown(flow.name)} <small>version {flow.version}</small></h2>"
        f"<p>{shown(flow.description or '')}</p>"
        f'<p class="stats"><a class="live-count" href="{live_href}">'
        f"{total} live session{'' if total == 1 else 's'}</a> · "
        f'<a class="failed-count{" has-failed" if failed else ""}" '
        f'href="{failed_href}">{failures}</a></p>'
        f"{drawing}"
        + (f'<ul class="live-states">{states}</ul>' if states else "")
        + "</section>"
    )
