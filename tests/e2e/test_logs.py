"""The service's log lines from real calls (engine and simulator on 127.0.0.1), as JSON and as text:
one info line per transition with the session, flow, state and event it is about; commands at debug;
nothing at info for events a session did not act on; numbers masked and secrets redacted in both."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flowengine.cli._common import log_handler
from flowengine.config import Route
from flowengine.scenarios.runner import ScenarioResult, play
from flowengine.scenarios.stack import running_stack

from .conftest import FLOW, scenario
from .test_metrics import BREAKS, BREAKS_TO

SECRET, NUMBER = "hunter2", "447700900123"


@contextmanager
def logged(log_format: str, level: int = logging.DEBUG) -> Iterator[io.StringIO]:
    """The service's handler (as ``serve`` sets it up) on the root logger for the block."""
    stream = io.StringIO()
    handler = log_handler(stream, log_format=log_format)
    root, machine = logging.getLogger(), logging.getLogger("transitions")  # as setup_logging quiets it
    before = root.level, machine.level
    root.addHandler(handler)
    root.setLevel(level)
    machine.setLevel(logging.WARNING)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(before[0])
        machine.setLevel(before[1])


async def run(
    tmp_path: Path, log_format: str, level: int = logging.DEBUG
) -> tuple[str, list[ScenarioResult]]:
    """One call of the seed flow, one of the flow that logs a number and a secret and then fails."""
    breaks = tmp_path / "breaks.yaml"
    breaks.write_text(BREAKS)
    talk = scenario(callee={"answer_after": "3s", "hangup_after": "30s"})
    options = {"routes": (Route(breaks, to=BREAKS_TO),)}
    with logged(log_format, level) as stream:
        async with running_stack("infobip", FLOW, parties=talk.parties, service_options=options) as stack:
            results = [await play(stack, talk), await play(stack, scenario(caller={"to": BREAKS_TO}))]
    return stream.getvalue(), results


def transitions(session: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    return [(s["event"], s["from"], s["to"]) for s in session["trace"] if s["to"] is not None]


async def test_json_lines_carry_the_step_they_are_about(tmp_path: Path) -> None:
    text, results = await run(tmp_path, "json")
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    for result in results:
        session = result.session
        moves = [line for line in lines if line["level"] == "info" and line.get("session") == session["id"]
                 and " -> " in line["message"]]
        # One info line per transition, carrying its session, flow, new state and event.
        assert [(m["event"], m["state"]) for m in moves] == [(e, to) for e, _, to in transitions(session)]
        assert all(m["flow"] == session["flow"] for m in moves)
        assert all(m["message"].startswith(f"session {session['id']} flow {session['flow']}: state ")
                   for m in moves)
    commands = [line for line in lines if line.get("action") and line["logger"] == "flowengine.session"]
    assert commands and all(line["level"] == "debug" and line.get("session") for line in commands)
    assert {line["action"] for line in commands} >= {"answer", "say", "hold", "http"}
    # A line written elsewhere while a step runs (the adapter's request line) says which session.
    requests = [line for line in lines if line["logger"] == "flowengine.providers.infobip"]
    assert requests and all(line.get("session") for line in requests)
    # The flow's log line: its number masked, its secret redacted.
    (said,) = [line for line in lines if "calling" in line["message"]]
    assert said["level"] == "info" and said["session"] == results[1].session["id"]
    assert "+4477******23" in said["message"] and "crm:***@crm.invalid" in said["message"]
    assert NUMBER not in text and SECRET not in text


async def test_nothing_at_info_for_events_a_session_did_not_act_on(tmp_path: Path) -> None:
    text, results = await run(tmp_path, "json", logging.INFO)
    lines = [json.loads(line) for line in text.splitlines()]
    unacted = sum(1 for s in results[0].session["trace"] if s["to"] is None and s["note"])
    assert unacted > 0  # the seed call has several (conference.created, participant.joining, ...)
    quiet = ("not acted on", "already handled")
    assert not [line for line in lines if any(words in line["message"] for words in quiet)]
    assert all(line["level"] != "debug" for line in lines)
    ended = [line["message"] for line in lines if line["message"].endswith(("ended in state closing",
                                                                            "failed in state failed"))]
    assert len(ended) == 2


async def test_text_lines_stay_readable_and_redacted(tmp_path: Path) -> None:
    text, results = await run(tmp_path, "text")
    session = results[0].session
    first = f"INFO flowengine.session: session {session['id']} flow two-party-conference: state (start) ->"
    assert first + " answering on event call.received" in text
    assert not any(line.startswith("{") for line in text.splitlines())
    assert SECRET not in text and NUMBER not in text and "+4477******23" in text
