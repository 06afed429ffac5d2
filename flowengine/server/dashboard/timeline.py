"""A session's trace on a timeline: each step at its time since the session started, the states it went
through as bands, errors marked. Built from the stored document (what ``/api/sessions/{id}`` answers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from flowengine.server.dashboard.layout import duration, shown, utc

WIDTH, BAND_Y, BAND_H, TICK_Y = 1000, 22, 26, 56  # the strip's drawing units (it scales to the page)
PALETTE = 6  # band colours, by order of first appearance (classes band-0 .. band-5)


@dataclass(frozen=True, slots=True)
class Command:
    action: str
    outcome: str  # ok | error | skipped
    detail: str | None
    latency: float | None  # seconds; None where not recorded


@dataclass(frozen=True, slots=True)
class Moment:
    offset: float  # seconds since the session started
    event: str
    source: str | None
    target: str | None
    guards: tuple[tuple[str, bool], ...]
    commands: tuple[Command, ...]
    note: str | None

    @property
    def moved(self) -> bool:
        return self.target is not None and (self.target != self.source or self.source is None)

    @property
    def error(self) -> bool:
        return (
            self.event == "action.failed" or self.target == "failed"
            or any(c.outcome == "error" for c in self.commands)
        )


def moments(doc: Mapping[str, Any]) -> list[Moment]:
    start = float(doc.get("created") or 0.0)
    found = []
    for step in doc.get("trace") or []:
        records = [c for c in step.get("commands") or [] if len(c) >= 3]
        commands = tuple(
            Command(str(c[0]), str(c[1]), None if c[2] is None else str(c[2]), latency)
            for c, latency in zip_longest(records, step.get("latency") or [])
            if c is not None
        )
        found.append(Moment(
            float(step.get("at") or start) - start, str(step.get("event")), step.get("from"), step.get("to"),
            tuple((str(g[0]), bool(g[1])) for g in step.get("guards") or [] if len(g) == 2), commands,
            step.get("note"),
        ))
    return found


def spans(steps: Sequence[Moment], end: float) -> list[tuple[str, float, float]]:
    """(state, from, to) in seconds since the start: the states the trace shows, as consecutive bands."""
    bands: list[tuple[str, float, float]] = []
    for step in steps:
        if step.moved and step.target is not None:
            if bands:
                state, began, _ = bands[-1]
                bands[-1] = (state, began, step.offset)
            bands.append((step.target, step.offset, end))
    return bands


def strip(steps: Sequence[Moment], end: float) -> str:
    """The timeline as an inline SVG: state bands across the top, a tick per step (red for errors)."""
    total = max(end, max((s.offset for s in steps), default=0.0), 0.001)

    def x(offset: float) -> float:
        return round(10 + (WIDTH - 20) * max(offset, 0.0) / total, 1)

    colours: dict[str, int] = {}
    parts = []
    for state, began, until in spans(steps, total):
        colour = colours.setdefault(state, len(colours) % PALETTE)
        left, right = x(began), x(until)
        when = f"{duration(began)} to {duration(until)}"
        parts.append(
            f'<g class="band band-{colour}"><title>{shown(state)}: {when}</title>'
            f'<rect x="{left}" y="{BAND_Y}" width="{max(right - left, 1.5)}" height="{BAND_H}" rx="3"/>'
            + (f'<text x="{left + 4}" y="{BAND_Y + 17}">{shown(state)}</text>' if right - left > 70 else "")
            + "</g>"
        )
    for step in steps:
        kind = "error" if step.error else ("move" if step.moved else "stay")
        parts.append(
            f'<g class="tick {kind}"><title>+{duration(step.offset)} {shown(step.event)}</title>'
            f'<line x1="{x(step.offset)}" x2="{x(step.offset)}" y1="{BAND_Y - 6}" y2="{TICK_Y}"/>'
            f'<circle cx="{x(step.offset)}" cy="{TICK_Y}" r="{5 if step.error else 3}"/></g>'
        )
    axis = (
        f'<text class="axis" x="10" y="14">0 s</text>'
        f'<text class="axis" x="{WIDTH - 10}" y="14" text-anchor="end">{duration(total)}</text>'
    )
    return (
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {TICK_Y + 10}" role="img" '
        f'aria-label="the session over time">{axis}{"".join(parts)}</svg>'
    )


def table(steps: Sequence[Moment], start: float) -> str:
    """Every step: time since start, event, where it led, guards, commands with outcome and latency."""
    rows = []
    for step in steps:
        if step.source is None:
            moved = f"started in <b>{shown(step.target)}</b>"
        elif step.moved:
            moved = f"{shown(step.source)} → <b>{shown(step.target)}</b>"
        else:
            moved = f"stayed in {shown(step.source)}"
        guards = "".join(
            f'<li class="guard {"held" if held else "failed"}"><code>{shown(expr)}</code> '
            f"{'true' if held else 'false'}</li>"
            for expr, held in step.guards
        )
        rows.append(
            f'<tr class="step{" error" if step.error else ""}{" moved" if step.moved else ""}">'
            f'<td class="offset" title="{utc(start + step.offset)}">+{duration(step.offset)}</td>'
            f"<td><code>{shown(step.event)}</code></td><td>{moved}</td>"
            f"<td>{'<ul>' + guards + '</ul>' if guards else ''}</td><td>{_commands(step.commands)}</td>"
            f"<td>{shown(step.note or '')}</td></tr>"
        )
    return (
        '<table class="trace"><thead><tr><th>time</th><th>event</th><th>transition</th><th>guards</th>'
        f"<th>commands</th><th>note</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _commands(commands: Sequence[Command]) -> str:
    return f"<ul>{''.join(_command(c) for c in commands)}</ul>" if commands else ""


def _command(c: Command) -> str:
    ms = None if c.latency is None else c.latency * 1000
    latency = "" if ms is None else (f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms")
    detail = f' <span class="detail">{shown(c.detail)}</span>' if c.detail else ""
    return (
        f'<li class="command outcome-{shown(c.outcome)}"><code>{shown(c.action)}</code> '
        f'<span class="outcome">{shown(c.outcome)}</span> <span class="latency">{latency}</span>{detail}</li>'
    )
