"""Answering-machine detection end to end on both simulators: a dial with `machine_detection` asks the
platform for it on the wire (Infobip `machineDetection` on the call request, Sinch `amd` in the
callout's inline ICE `connectPstn`), and the call's `call.answered` reaches the flow once detection has
listened, with `reason` `machine` or `human` as the dialled party's script says (`machine: true`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flowengine.scenarios.model import parse_scenario
from flowengine.scenarios.runner import ScenarioResult, run_scenario
from flowengine.simulator.parties import DETECTION_SECONDS

CALLEE = "447415784323"
DIAL_FLOW = """\
flow: amd-dial
version: 1
vars: {said_to: null}
initial: answering
states:
  answering:
    entry: [{answer: {call: caller}}]
    on: {call.answered: dialing}
    after: {30s: done}
  dialing:
    entry: [{dial: {to: "447415784323", as: callee, timeout: 30s, machine_detection: true}}]
    on:
      call.answered:
        - {target: voicemail, when: "event.call == 'callee' and event.reason == 'machine'"}
        - {target: talking, when: "event.call == 'callee' and event.reason == 'human'"}
        - {target: unsure, when: "event.call == 'callee'"}
      call.failed: done
      action.failed: done
    after: {2m: done}
  voicemail:
    entry: [{set: {said_to: machine}}, {say: {call: callee, text: "Please call us back."}}]
    on: {say.finished: done}
    after: {30s: done}
  talking:
    entry: [{set: {said_to: human}}, {say: {call: callee, text: "Hello."}}]
    on: {say.finished: done}
    after: {30s: done}
  unsure:
    entry: [{hangup: {call: callee}}]
    on: {call.finished: done}
    after: {10s: done}
  done:
    entry: [{hangup: {call: callee}}, {hangup: {call: caller}}]
    type: final
"""
CONFERENCE_FLOW = """\
flow: amd-conference
version: 1
initial: answering
states:
  answering:
    entry: [{answer: {call: caller}}, {conference_create: {as: room}}]
    on: {call.answered: dialing}
    after: {30s: done}
  dialing:
    entry: [{conference_dial: {conference: room, to: "447415784323", as: callee, machine_detection: true}}]
    on:
      call.answered:
        - {target: machine, when: "event.call == 'callee' and event.reason == 'machine'"}
        - {target: human, when: "event.call == 'callee' and event.reason == 'human'"}
      participant.join_failed: done
      action.failed: refused
    after: {2m: done}
  machine: {entry: [{conference_hangup: {conference: room}}], type: final}
  human: {entry: [{conference_hangup: {conference: room}}], type: final}
  refused: {entry: [{conference_hangup: {conference: room}}, {hangup: {call: caller}}], type: final}
  done: {entry: [{conference_hangup: {conference: room}}], type: final}
"""


async def play(tmp_path: Path, flow: str, provider: str, callee: dict[str, Any]) -> ScenarioResult:
    path = tmp_path / "amd.yaml"
    path.write_text(flow)
    scenario = parse_scenario("amd", {"parties": {CALLEE: callee}})
    return await run_scenario(provider, path, scenario)


def creation(result: ScenarioResult) -> dict[str, Any]:
    creating = ("/calls/1/calls", "/calling/v1/callouts")
    (request,) = [r for r in result.requests
                  if r["method"] == "POST" and (r["path"] in creating or r["path"].endswith("/call"))]
    return dict(request["body"])


def answered_after(result: ScenarioResult) -> float:
    """Virtual seconds between the callee's pick-up (its answer_after) and the step its answer made (the
    one that moved the flow on: a late or repeated answer of the caller's, on a loaded machine, is also
    ``call.answered`` in ``dialing``, but leads nowhere)."""
    steps = [s for s in result.session["trace"]
             if s["event"] == "call.answered" and s["from"] == "dialing" and s["to"] is not None]
    return float(steps[0]["at"]) - result.started_at


@pytest.mark.parametrize("provider", ["infobip", "sinch"])
@pytest.mark.parametrize(("machine", "state"), [(True, "voicemail"), (False, "talking")])
async def test_a_dial_hears_who_answered(tmp_path: Path, provider: str, machine: bool, state: str) -> None:
    result = await play(tmp_path, DIAL_FLOW, provider, {"answer_after": "2s", "machine": machine})
    assert result.failures == []
    assert state in [s["to"] for s in result.session["trace"]]
    assert result.session["vars"]["said_to"] == ("machine" if machine else "human")
    # The answer reaches the flow once detection has listened, not when the party picked up.
    assert answered_after(result) >= 2.0 + DETECTION_SECONDS
    body = creation(result)
    if provider == "infobip":
        assert body["machineDetection"] == {"enabled": True}
    else:
        callout = body["customCallout"]
        ice = json.loads(callout["ice"])
        assert ice["action"]["name"] == "connectPstn" and ice["action"]["amd"] == {"enabled": True}
        assert ice["action"]["number"] == "+" + CALLEE and json.loads(callout["custom"])["flowengine"]["amd"]


@pytest.mark.parametrize("provider", ["infobip", "sinch"])
async def test_a_party_that_never_answers_is_a_plain_failure(tmp_path: Path, provider: str) -> None:
    result = await play(tmp_path, DIAL_FLOW, provider, {"busy": True})
    assert result.session["state"] == "done" and result.session["vars"]["said_to"] is None
    assert [s["event"] for s in result.session["trace"] if s["from"] == "dialing"] == ["call.failed"]


@pytest.mark.parametrize("machine", [True, False])
async def test_infobip_detects_on_a_conference_dial(tmp_path: Path, machine: bool) -> None:
    result = await play(tmp_path, CONFERENCE_FLOW, "infobip", {"answer_after": "1s", "machine": machine})
    assert result.session["state"] == ("machine" if machine else "human")
    assert creation(result)["callRequest"]["machineDetection"] == {"enabled": True}


async def test_sinch_refuses_detection_on_a_conference_dial_saying_why(tmp_path: Path) -> None:
    result = await play(tmp_path, CONFERENCE_FLOW, "sinch", {"answer_after": "1s"})
    assert result.session["state"] == "refused"
    errors = [c[2] for s in result.session["trace"] for c in s["commands"]
              if c[:2] == ["conference_dial", "error"]]
    assert "Sinch detects answering machines on a dial of its own" in errors[0]
    assert not [r for r in result.requests if r["path"] == "/calling/v1/callouts"]  # nothing was dialled
