"""A scenario's run as a one-line summary, or as a readable timeline: virtual time, event, state change,
commands. Events the flow has no transition for in that state (``unmatched``, or after the session ended)
are most of a platform's chatter; the timeline leaves them out unless asked for all of it (``full``)."""

from __future__ import annotations

from typing import Any

from flowengine.scenarios.runner import ScenarioResult, states_entered

# Notes of a step that changed nothing and that nobody needs to read: the event had no transition in the
# state, came after the session ended, or was a duplicate. Guard errors and the like stay visible.
_QUIET_NOTES = ("unmatched", "duplicate")


def is_quiet(step: dict[str, Any]) -> bool:
    """A step that moved nothing, sent nothing and says nothing worth reading (see ``_QUIET_NOTES``)."""
    if step.get("to") is not None or step.get("commands"):
        return False
    note = step.get("note") or ""
    return note in _QUIET_NOTES or note.startswith("session ")


def timeline_rows(
    result: ScenarioResult, *, wire: bool = False, full: bool = True
) -> list[tuple[float, str]]:
    """(seconds since the call was placed, text) rows, engine steps and optionally the wire requests;
    without ``full``, the quiet steps (``is_quiet``) are left out."""
    rows: list[tuple[float, str]] = []
    for step in result.session.get("trace", []):
        if not full and is_quiet(step):
            continue
        rows.append((step["at"] - result.started_at, _step_text(step)))
        rows.extend(
            (step["at"] - result.started_at, "    " + _command_text(c)) for c in step.get("commands", [])
        )
    if wire:
        rows.extend(
            (r["at"] - result.started_at, f"    wire: {r['method']} {r['path']} -> {r['status']}")
            for r in result.requests
        )
    rows.sort(key=lambda row: row[0])
    return rows


def _step_text(step: dict[str, Any]) -> str:
    source, target = step.get("from"), step.get("to")
    if step.get("note") == "duplicate":
        change = "duplicate, ignored"
    elif target is None and source is None:  # before the session began: an outbound start, its dial
        change = f"not begun ({step.get('note') or 'no transition'})"
    elif target is None:
        change = f"in {source}: no transition" + (f" ({step['note']})" if step.get("note") else "")
    elif source == target:
        change = f"{source} -> {target} (entered again)"
    else:
        change = f"{source or 'start'} -> {target}"
    return f"{step['event']:<26} {change}"


def _command_text(command: list[Any]) -> str:
    action, status, detail = command
    text = f"{action} {status}"
    return f"{text}: {detail}" if detail else text


def commands_sent(result: ScenarioResult) -> tuple[int, int]:
    """(commands the session sent outside the engine, how many of them failed): platform and http
    actions; ``set`` and ``log`` stay inside."""
    sent = [c for step in result.session.get("trace", []) for c in step.get("commands", [])
            if c[0] not in ("set", "log") and c[1] != "skipped"]
    return len(sent), sum(c[1] == "error" for c in sent)


def final_state(result: ScenarioResult) -> str:
    return f"{result.session.get('state')} ({result.session.get('status')})"


def summary_line(result: ScenarioResult, *, color: bool = False, widths: tuple[int, int] = (0, 0)) -> str:
    """One line: PASS/FAIL, scenario and platform, final state and status, virtual duration, commands
    sent. ``widths`` pad the scenario's name and final state so a column of lines lines up."""
    mark = paint("PASS", "32", color) if result.passed else paint("FAIL", "31", color)
    sent, failed = commands_sent(result)
    commands = f"{sent} command{'s' * (sent != 1)}" + (f" ({failed} failed)" if failed else "")
    name, final = widths
    return (f"{mark}  {result.scenario.name:<{name}}  {result.provider:<7}  {final_state(result):<{final}}  "
            f"{result.virtual_seconds:7.1f} virtual s  {commands}")


def format_result(
    result: ScenarioResult, *, wire: bool = False, color: bool = False, max_rows: int | None = None,
    full: bool = True,
) -> str:
    """The scenario's header, timeline and failures. ``max_rows`` keeps the first and last rows of a
    longer timeline (a timer loop cut short by a limit can run to thousands of steps); without ``full``
    the quiet steps are left out and counted."""
    mark = paint("PASS", "32", color) if result.passed else paint("FAIL", "31", color)
    header = (
        f"{mark} {result.scenario.name} on {result.provider}: {result.scenario.description}".rstrip(": ")
        + f"\n  ({result.virtual_seconds:.1f} virtual s in {result.real_seconds * 1000:.0f} ms real; "
        + (f'final state "{result.session.get("state")}", {result.session.get("status")})' if result.session
           else "no session was started)")
    )
    lines = [header]
    rows = [f"  {at:8.3f}s  {text}" for at, text in timeline_rows(result, wire=wire, full=full)]
    if max_rows is not None and len(rows) > max_rows:
        head, tail = max_rows // 2, max_rows - max_rows // 2
        rows = [*rows[:head], f"  ... {len(rows) - max_rows} more rows ...", *rows[-tail:]]
    lines += rows
    if not full and (quiet := sum(map(is_quiet, result.session.get("trace", [])))):
        lines.append(f"  ({quiet} events without a transition left out; -v shows them)")
    lines += [f"  {paint('x', '31', color)} {failure}" for failure in result.failures]
    return "\n".join(lines)


def result_json(result: ScenarioResult) -> dict[str, Any]:
    return {
        "scenario": result.scenario.name,
        "provider": result.provider,
        "passed": result.passed,
        "failures": result.failures,
        "state": result.session.get("state"),
        "status": result.session.get("status"),
        "limit": result.limit,
        "states": states_entered(result.session),
        "actions": result.actions(),
        "virtual_seconds": round(result.virtual_seconds, 3),
        "real_seconds": round(result.real_seconds, 3),
        "timeline": [{"at": round(at, 3), "text": text} for at, text in timeline_rows(result)],
        "requests": [
            {k: r[k] for k in ("method", "path", "status")} | {"at": round(r["at"] - result.started_at, 3)}
            for r in result.requests
        ],
        "http": [call | {"at": round(call["at"] - result.started_at, 3)} for call in result.http_calls],
    }


def paint(text: str, code: str, color: bool) -> str:
    """``text`` in an ANSI colour (``code``: 31 red, 32 green, 1 bold) when ``color`` is on."""
    return f"\x1b[{code}m{text}\x1b[0m" if color else text
