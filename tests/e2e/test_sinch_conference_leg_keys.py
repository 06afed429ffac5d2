"""Keys asked of a call dialled into a conference, in the reply to that call's ACE, on Sinch (engine and
simulator over HTTP on 127.0.0.1). A menu there would be the reply's one action in place of the call's
way into the conference (Sinch's SVAML reference: one action per reply), and the call would never join;
so the adapter says the prompt in the reply, lets the call join, and hears its keys through the key
detection every join asks for (``conferenceDtmfOptions``)."""

from __future__ import annotations

from pathlib import Path

from flowengine.scenarios.model import parse_scenario
from flowengine.scenarios.runner import play
from flowengine.scenarios.stack import running_stack

AGENT = "46700000001"
FLOW = f"""
flow: accept-the-call
initial: answering
states:
  answering:
    entry: [{{answer: {{call: caller}}}}]
    on: {{call.answered: opening}}
    after: {{10s: done}}
  opening:
    entry: [{{conference_create: {{as: room}}}}, {{conference_join: {{conference: room, call: caller}}}}]
    on: {{participant.joined: dialing}}
    after: {{10s: done}}
  dialing:
    entry: [{{conference_dial: {{conference: room, to: "{AGENT}", timeout: 30s, as: agent}}}}]
    on:
      call.answered: {{target: asking, when: "event.call == 'agent'"}}
      call.failed: done
    after: {{40s: done}}
  asking:
    entry: [{{capture_dtmf: {{call: agent, max_digits: 1, timeout: 10s, prompt: Press 1 to take the call}}}}]
    on:
      dtmf.captured: {{target: accepted, when: "event.call == 'agent' and event.digits == '1'"}}
    after: {{20s: done}}
  accepted:
    entry: [{{say: {{call: caller, text: You are connected.}}}}]
    on: {{say.finished: done}}
    after: {{10s: done}}
  done: {{type: final, entry: [{{conference_hangup: {{conference: room}}}}]}}
"""
SCENARIO = {"caller": {"hangup_after": "2m"},
            "parties": {AGENT: {"answer_after": "2s", "press": [["8s", "1"]], "hangup_after": "1m"}},
            "expect": {"state": "done",
                       "states": ["answering", "opening", "dialing", "asking", "accepted", "done"]}}


async def test_a_conference_legs_keys_asked_in_its_ace_reply_let_it_join(tmp_path: Path) -> None:
    flow = tmp_path / "accept.yaml"
    flow.write_text(FLOW, encoding="utf-8")
    played = parse_scenario("accept", SCENARIO)
    async with running_stack("sinch", flow, parties=played.parties) as stack:
        result = await play(stack, played)
        assert result.passed, result.failures
        agent = next(c for c in stack.simulator.calls.values() if c.remote.endswith(AGENT))  # type: ignore[attr-defined]
        about_agent = [w for w in result.webhooks if w["body"]["callid"] == agent.id]
        [ace] = [w for w in about_agent if w["body"]["event"] == "ace"]
        assert ace["reply"]["action"] == {"name": "continue"}  # not a menu: the call goes on into the room
        assert ace["reply"]["instructions"][0]["text"] == "Press 1 to take the call"
        assert agent.joined_at is not None  # the agent joined, and its "1" came through key detection
        [keys] = [w for w in about_agent if w["body"]["event"] == "pie"]
        assert keys["body"]["menuResult"]["menuId"] != "main"
