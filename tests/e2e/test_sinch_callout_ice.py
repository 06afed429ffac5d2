"""A Sinch customCallout's own ICE, engine and Sinch simulator as real HTTP servers on 127.0.0.1.

Sinch's callout reference (Custom callout): "It all starts with the server placing the call which
generates an Incoming Call Event"; without inline ``ice`` in the request that ICE goes to the callback
URL, and its SVAML must connect the call (connectPstn is the only action allowed there). It is the
callout's event: answered with the connection to where the flow dialled, never a new inbound session;
and, carrying the callout's ``custom``, it names a callout whose POST answer was lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flowengine.scenarios.model import parse_scenario
from flowengine.scenarios.runner import ScenarioResult, play
from flowengine.scenarios.stack import running_stack
from flowengine.simulator.base import Faults

AGENT = "447400000009"
FLOW = f"""
flow: call-an-agent
version: 1
initial: answering
states:
  answering:
    entry: [{{answer: {{call: caller}}}}]
    on: {{call.answered: {{target: dialing, when: "event.call == 'caller'"}}}}
    after: {{10s: done}}
  dialing:
    entry:
      - say: {{call: caller, text: Connecting you.}}
      - dial: {{to: "{AGENT}", timeout: 30s, as: agent}}
    on:
      call.answered: {{target: talking, when: "event.call == 'agent'"}}
      call.failed: {{target: done, when: "event.call == 'agent'"}}
    after: {{40s: done}}
  talking:
    entry: [{{say: {{call: agent, text: Hello agent.}}}}]
    on: {{say.finished: done}}
    after: {{20s: done}}
  done:
    type: final
    entry: [{{hangup: {{call: agent}}}}, {{hangup: {{call: caller}}}}]
"""
SCENARIO = {"caller": {"hangup_after": "60s"}, "parties": {AGENT: {"answer_after": "3s"}},
            "expect": {"state": "done", "status": "ended",
                       "states": ["answering", "dialing", "talking", "done"]}}


async def run(tmp_path: Path, faults: Faults | None = None) -> tuple[ScenarioResult, int, dict[str, Any]]:
    flow = tmp_path / "agent.yaml"
    flow.write_text(FLOW, encoding="utf-8")
    played = parse_scenario("agent", SCENARIO)
    async with running_stack("sinch", flow, parties=played.parties) as stack:
        if faults is not None:
            stack.simulator.faults = faults
        result = await play(stack, played)
        sessions = await stack.service.store.list_sessions()
        agent_call = next(c for c in stack.simulator.calls.values() if c.remote.endswith(AGENT))  # type: ignore[attr-defined]
        return result, len(sessions), {"id": agent_call.id, "result": agent_call.result}


def _ice_of(result: ScenarioResult, call_id: str) -> dict[str, Any]:
    [ice] = [w for w in result.webhooks if w["body"]["event"] == "ice" and w["body"]["callid"] == call_id]
    return ice


async def test_the_callouts_ice_is_answered_with_its_connection_not_a_new_session(tmp_path: Path) -> None:
    result, sessions, agent = await run(tmp_path)
    assert result.passed, result.failures
    assert sessions == 1  # the caller's; the agent's ICE started none
    ice = _ice_of(result, agent["id"])
    assert ice["reply"]["action"] == {"name": "connectPstn", "number": "+" + AGENT}
    assert agent["result"] == "ANSWERED"
    assert result.session["calls"]["agent"] == agent["id"]


async def test_a_callout_whose_answer_was_lost_is_named_by_its_ice(tmp_path: Path) -> None:
    """The POST answer is lost: the agent is bound under a stand-in; the ICE (its ``custom`` carries the
    command's key) is the first callback about the call and names it; the flow goes on as usual."""
    lost = Faults(match=r"^POST /calling/v1/callouts$", times=1, lost_rate=1.0)
    result, sessions, agent = await run(tmp_path, lost)
    assert result.passed, result.failures
    assert sessions == 1
    assert result.session["calls"]["agent"] == agent["id"]
    named = [step for step in result.session["trace"] if step["event"] == "callout"]
    assert named, "the callout's ICE reached the caller's session"
