"""One session's page: what it is and holds, then its trace on a timeline, errors highlighted."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flowengine.server.dashboard.layout import duration, link, shown, status_badge, utc
from flowengine.server.dashboard.sessions import problem
from flowengine.server.dashboard.timeline import moments, strip, table

LATENCY_NOTE = (
    "Latency: from sending a command to its outcome, retries included, on the engine's clock "
    "(a simulation's virtual clock does not move while a command is sent)."
)


def session_page(doc: Mapping[str, Any], now: float) -> str:
    """The body of the page of the session ``doc`` (its redacted stored document); a live session's
    timeline runs up to ``now``, a finished one's to its last change."""
    start = float(doc.get("created") or 0.0)
    end = float(doc.get("updated") or start)
    steps = moments(doc)
    failed = doc.get("status") == "failed"
    live = doc.get("status") not in ("ended", "failed")
    why = shown(problem(doc) or "see the trace")
    banner = f'<p class="problem failed-banner">This session failed: {why}</p>' if failed else ""
    trace = doc.get("trace") or []
    dropped = (
        '<p class="note">Earlier steps were dropped: a session keeps its most recent steps only.</p>'
        if trace and trace[0].get("from") is not None else ""
    )
    return (
        banner + _summary(doc, start, end)
        + "<h2>Timeline</h2>" + dropped + strip(steps, (max(now, end) if live else end) - start)
        + f'<p class="legend">{LATENCY_NOTE}</p>' + table(steps, start)
        + _bindings(doc) + _variables(doc.get("vars") or {}) + _timers(doc, start)
    )


def _summary(doc: Mapping[str, Any], start: float, end: float) -> str:
    flow = str(doc.get("flow", ""))
    rows = [
        ("flow", f'<a href="{link("/")}#flow-{shown(flow)}">{shown(flow)}</a> '
                 f"<small>version {shown(doc.get('flow_version', '?'))}</small>"),
        ("state", f'<a href="{link("/sessions", {"flow": flow, "state": doc.get("state")})}">'
                  f"{shown(doc.get('state', ''))}</a>"),
        ("status", status_badge(str(doc.get("status", "")))),
        ("started", utc(start)),
        ("last change", f"{utc(end)} (+{duration(end - start)})"),
        ("events handled", shown(doc.get("seq", ""))),
    ]
    cells = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    return f'<table class="summary">{cells}</table>'


def _bindings(doc: Mapping[str, Any]) -> str:
    call_states: Mapping[str, Any] = doc.get("call_states") or {}
    room_states: Mapping[str, Any] = doc.get("conference_states") or {}
    rows = [(role, cid, call_states.get(cid, "")) for role, cid in (doc.get("calls") or {}).items()]
    rows += [(role, cid, room_states.get(cid, "")) for role, cid in (doc.get("conferences") or {}).items()]
    if not rows:
        return ""
    cells = "".join(
        f"<tr><td>{shown(role)}</td><td><code>{shown(cid)}</code></td><td>{shown(state)}</td></tr>"
        for role, cid, state in rows
    )
    return ('<h2>Calls and conferences</h2><table class="bindings"><thead><tr><th>role</th>'
            f"<th>platform id</th><th>state</th></tr></thead><tbody>{cells}</tbody></table>")


def _variables(variables: Mapping[str, Any]) -> str:
    if not variables:
        return ""
    cells = "".join(
        f"<tr><th>{shown(name)}</th><td><code>{shown(json.dumps(value, ensure_ascii=False))}</code></td></tr>"
        for name, value in variables.items()
    )
    return f'<h2>Variables</h2><table class="variables">{cells}</table>'


def _timers(doc: Mapping[str, Any], start: float) -> str:
    timers: Mapping[str, Any] = doc.get("timers") or {}
    if not timers:
        return ""
    cells = "".join(
        f"<tr><td>{shown(t.get('state', ''))}</td><td>after {shown(t.get('key', ''))}</td>"
        f"<td>{utc(float(t.get('due', 0)))} (+{duration(float(t.get('due', 0)) - start)})</td></tr>"
        for t in timers.values() if isinstance(t, Mapping)
    )
    return ('<h2>Pending timers</h2><table class="timers"><thead><tr><th>state</th><th>timer</th>'
            f"<th>due</th></tr></thead><tbody>{cells}</tbody></table>")
