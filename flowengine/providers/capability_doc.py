"""The README's provider table, generated from the platforms' capability tables (``capabilities.py``),
as the command tables are from ``table.py``; a test keeps the README in step."""

from __future__ import annotations

from flowengine.flow.platform import CANNOT_RULE, Constraint, Platform
from flowengine.providers import PROVIDERS, platform

README_START, README_END = "<!-- provider-table:start -->", "<!-- provider-table:end -->"
_KINDS = {"place": "where", "closed": "where", "param": "parameter", "timeout": "timeout"}


def _reported(row: Constraint) -> str:
    if not row.reported:
        return "— (the engine enforces it)"
    severity = "warning" if row.kind == "timeout" else "error"
    return f"{severity} `{row.rule}`"


def _actions(table: Platform, row: Constraint) -> str:
    """The row's action; for the one-action-per-reply row, the actions that need the reply."""
    if row.kind != "closed":
        return f"`{row.action}`"
    return ", ".join(dict.fromkeys(f"`{c.action}`" for c in table.constraints if c.kind == "place"))


def _cannot(table: Platform) -> list[str]:
    by_reason: dict[str, list[str]] = {}
    for action, why in table.cannot.items():
        by_reason.setdefault(why, []).append(action)
    return [f"| {table.title} | {', '.join(f'`{a}`' for a in actions)} | cannot | {why} "
            f"| error `{CANNOT_RULE}` |" for why, actions in by_reason.items()]


def render(tables: list[Platform]) -> str:
    lines = ["| platform | action | what | on this platform | `validate --provider` |",
             "|---|---|---|---|---|"]
    for table in tables:
        lines += _cannot(table)
        lines += [f"| {table.title} | {_actions(table, row)} | {_KINDS[row.kind]} | {row.text} "
                  f"| {_reported(row)} |" for row in table.constraints]
    return "\n".join(lines)


def readme_provider_table() -> str:
    """The README's provider table, between its markers."""
    return f"{README_START}\n{render([platform(name) for name in PROVIDERS])}\n{README_END}"
