"""What ``flowengine replay`` prints: per file, the same or where it diverged; text for people, JSON for
tools."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from flowengine.recordings.replayer import Outcome

WIDTH = 110  # characters of a recorded or replayed value shown on one line


def to_json(outcomes: Sequence[Outcome]) -> str:
    files = [{
        "path": str(o.path), "flow": o.flow or None, "flow_path": o.flow_path or None,
        "diverged": o.diverged, "error": o.error, "recorded_commands": o.recorded_commands,
        "replayed_commands": o.replayed_commands, "end": o.end,
        "divergences": [d.to_json() for d in o.divergences],
    } for o in outcomes]
    return json.dumps({**counts(outcomes), "files": files}, indent=2) + "\n"


def counts(outcomes: Sequence[Outcome]) -> dict[str, int]:
    errors = sum(o.error is not None for o in outcomes)
    diverged = sum(o.error is None and o.diverged for o in outcomes)
    return {"replayed": len(outcomes) - errors, "diverged": diverged,
            "same": len(outcomes) - errors - diverged, "errors": errors}


def to_text(outcomes: Sequence[Outcome], painted: bool) -> str:
    def paint(text: str, colour: str) -> str:
        return click.style(text, fg=colour, bold=True) if painted else text

    lines: list[str] = []
    for outcome in outcomes:
        if outcome.error is not None:
            lines.append(f"{paint('ERROR', 'red')}     {outcome.path}\n  {outcome.error}")
            continue
        head = paint("DIVERGED", "yellow") if outcome.diverged else paint("same", "green")
        lines.append(f"{head:<9} {outcome.path}")
        lines.append(f"  flow {outcome.flow} ({outcome.flow_path}): {outcome.recorded_commands} commands "
                     f"recorded, {outcome.replayed_commands} sent in the replay")
        for d in outcome.divergences:
            lines.append(f"  {d.kind:<9} {d.what} {d.where}")
            if d.recorded is not None:
                lines.append(f"            recorded: {_short(d.recorded)}")
            if d.replayed is not None:
                lines.append(f"            replayed: {_short(d.replayed)}")
    tally = counts(outcomes)
    summary = (f"{tally['replayed']} file(s) replayed: {tally['diverged']} diverged, {tally['same']} the same"
               + (f"; {tally['errors']} could not be replayed" if tally["errors"] else ""))
    return "\n".join([*lines, summary]) + "\n"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= WIDTH else text[: WIDTH - 3] + "..."
