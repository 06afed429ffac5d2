"""Conference recording, end to end: on the Infobip simulator the room is recorded (POST
/conferences/{id}/start-recording, the Calls API's conference recording) and the mixed file arrives as
``recording.ready`` for the conference role; Sinch's Calling API v1 cannot record a conference, so
``validate --provider sinch`` reports it and the service refuses the flow before any call."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowengine.errors import FlowEngineError
from flowengine.flow.loader import load_flow
from flowengine.providers import capabilities
from flowengine.scenarios.model import parse_scenario
from flowengine.scenarios.runner import run_scenario

FLOW = """\
flow: recorded-room
initial: answering
on:
  call.finished: {target: done, when: "event.call == 'caller'"}
states:
  answering:
    entry:
      - answer: {call: caller}
    on: {call.answered: opening}
    after: {10s: done}
  opening:
    entry:
      - conference_create: {as: room}
      - conference_join: {conference: room, call: caller}
      - conference_record: {conference: room}
    on: {participant.joined: talking}
    after: {10s: done}
  talking:
    after:
      20s:
        target: waiting
        actions: [{conference_stop_record: {conference: room}}]
  waiting:
    on:
      recording.ready:
        target: closing
        when: "event.conference == 'room'"
        actions:
          - set: {recording: "{{ event.data.urls[0] }}"}
    after: {10s: done}
  closing:
    entry:
      - conference_hangup: {conference: room}
    after: {1s: done}
  done: {type: final}
"""


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    path = tmp_path / "recorded.yaml"
    path.write_text(FLOW, encoding="utf-8")
    return path


async def test_infobip_records_the_conference_and_tells_the_flow_when_the_file_is_ready(flow: Path) -> None:
    scenario = parse_scenario("record", {"caller": {"hangup_after": "5m"},
                                         "expect": {"state": "done", "status": "ended"}})
    result = await run_scenario("infobip", flow, scenario, store="memory://")
    assert result.passed, result.failures
    started = [r for r in result.requests if r["path"].endswith("/start-recording")]
    assert [(r["method"], r["body"]) for r in started] == [("POST", {"recordingType": "AUDIO"})]
    assert "/calls/1/conferences/" in started[0]["path"]
    assert [r["path"].split("/")[-1] for r in result.requests if "recording" in r["path"]] == [
        "start-recording", "stop-recording"]
    ready = [w["body"] for w in result.webhooks if w["body"].get("type") == "CONFERENCE_RECORDING_READY"]
    assert len(ready) == 1
    file_id = ready[0]["properties"]["recording"]["composedFiles"][0]["id"]
    assert result.session["vars"]["recording"].endswith(f"/calls/1/recordings/files/{file_id}")
    assert "closing" in [step["to"] for step in result.session["trace"]]


def test_validate_for_sinch_reports_conference_recording() -> None:
    result = load_flow(FLOW, capabilities=capabilities("sinch"), provider="sinch")
    assert [(d.line, d.rule, d.message) for d in result.errors] == [
        (15, "provider", 'provider "sinch" cannot perform action "conference_record"'),
        (22, "provider", 'provider "sinch" cannot perform action "conference_stop_record"'),
    ]
    assert load_flow(FLOW, capabilities=capabilities("infobip"), provider="infobip").diagnostics == ()


async def test_the_service_on_sinch_refuses_the_flow_before_any_call(flow: Path) -> None:
    scenario = parse_scenario("record", {"caller": {"hangup_after": "1m"}})
    with pytest.raises(FlowEngineError, match="conference_record"):
        await run_scenario("sinch", flow, scenario, store="memory://")
