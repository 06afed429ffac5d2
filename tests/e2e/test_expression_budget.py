"""A hostile caller against a real engine and simulator: the number a caller keys in drives nested
loops, a power and a repetition. With 10000 each expression goes over its budget and fails its action,
which the flow handles; a normal caller keying 3 at the same time gets through every step; and the
event loop both calls share is never held for long."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from flowengine.flow.loader import load_flow
from flowengine.scenarios.model import DEFAULT_TO
from flowengine.scenarios.stack import Stack, running_stack
from flowengine.simulator.parties import PartyScript

REAL_LIMIT = 30.0  # seconds of wall time before the test gives up waiting
MAX_LAG = 0.5  # seconds the event loop may be held; before the budget the loops alone held it ~4 s

FLOW = """
flow: budget
version: 1
vars: {n: 0, power: 0, text: ""}
initial: answering
on:
  call.finished: {target: done, when: "event.call == 'caller'"}
states:
  answering:
    entry: [{answer: {call: caller}}]
    on: {call.answered: asking}
    after: {10s: done}
  asking:
    entry:
      - capture_dtmf: {call: caller, max_digits: 5, timeout: 5s, prompt: Enter a number.}
    on: {dtmf.captured: looping}
    after: {20s: done}
  looping:
    entry:
      - set: {n: "{{ event.digits | int }}"}
      - log: {message: "{% for i in range(vars.n) %}{% for j in range(vars.n) %}{% endfor %}{% endfor %}ok"}
      - say: {call: caller, text: Looped.}
    on: {say.finished: powering, action.failed: loops_refused}
    after: {20s: done}
  loops_refused:
    entry: [{say: {call: caller, text: Too many loops.}}]
    on: {say.finished: powering}
    after: {20s: done}
  powering:
    entry:
      - set: {power: "{{ vars.n ** vars.n }}"}
      - say: {call: caller, text: Powered.}
    on: {say.finished: repeating, action.failed: power_refused}
    after: {20s: done}
  power_refused:
    entry: [{say: {call: caller, text: Too big a number.}}]
    on: {say.finished: repeating}
    after: {20s: done}
  repeating:
    entry:
      - set: {text: "{{ 'ab' * (vars.n * vars.n * 10) }}"}
      - say: {call: caller, text: "Repeated {{ vars.text | length }} characters."}
    on: {say.finished: closing, action.failed: repeat_refused}
    after: {20s: done}
  repeat_refused:
    entry: [{say: {call: caller, text: Too long a text.}}]
    on: {say.finished: closing}
    after: {20s: done}
  closing:
    entry: [{hangup: {call: caller}}]
    type: final
  done: {type: final}
"""


class LoopLag:
    """The longest the event loop took to come back to a task that sleeps 5 ms at a time."""

    def __init__(self) -> None:
        self.worst = 0.0

    async def watch(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, time.perf_counter() - before - 0.005)


async def finished(stack: Stack, session_ids: list[str]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + REAL_LIMIT
    while time.monotonic() < deadline:
        records = [await stack.service.store.get(sid) for sid in session_ids]
        if all(r is not None and r.status in ("ended", "failed") for r in records) and not stack.live_calls():
            return [r.data for r in records if r is not None]
        await asyncio.sleep(0.01)
    raise AssertionError("the calls did not finish in time")


def entered(session: dict[str, Any]) -> list[str]:
    return [step["to"] for step in session["trace"] if step.get("to") and step["to"] != step.get("from")]


def errors(session: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c[0], c[2]) for step in session["trace"] for c in step["commands"] if c[1] == "error"]


async def test_a_hostile_call_fails_its_actions_while_a_normal_call_alongside_ends(tmp_path: Path) -> None:
    flow = tmp_path / "budget.yaml"
    flow.write_text(FLOW)
    assert load_flow(flow).ok  # nothing constant in it is over budget: validate lets it through
    lag = LoopLag()
    async with running_stack("infobip", flow) as stack:
        monitor = asyncio.create_task(lag.watch())
        try:
            hostile = await stack.simulator.place_inbound_call(
                "447700900001", DEFAULT_TO, PartyScript(press=((1.0, "10000"),), hangup_after=120.0))
            normal = await stack.simulator.place_inbound_call(
                "447700900002", DEFAULT_TO, PartyScript(press=((1.0, "3"),), hangup_after=120.0))
            bad, good = await finished(stack, [stack.service.session_id_for(c) for c in (hostile, normal)])
        finally:
            monitor.cancel()

    assert good["status"] == "ended" and good["state"] == "closing"
    assert entered(good) == ["answering", "asking", "looping", "powering", "repeating", "closing"]
    assert (good["vars"]["n"], good["vars"]["power"], good["vars"]["text"]) == (3, 27, "ab" * 90)
    assert errors(good) == []

    assert bad["status"] == "ended" and bad["state"] == "closing"
    assert entered(bad) == ["answering", "asking", "looping", "loops_refused", "powering", "power_refused",
                            "repeating", "repeat_refused", "closing"]
    failed = errors(bad)
    assert [action for action, _ in failed] == ["log", "set", "set"]
    assert all("over the expression budget" in message for _, message in failed), failed
    assert "more than 10,000 operations" in failed[0][1]
    assert "bits" in failed[1][1] and "characters" in failed[2][1]
    assert (bad["vars"]["power"], bad["vars"]["text"]) == (0, "")

    assert lag.worst < MAX_LAG, f"the event loop was held {lag.worst * 1000:.0f} ms"
