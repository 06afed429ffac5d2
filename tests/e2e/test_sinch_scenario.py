"""The bundled two-party conference on Sinch, unchanged, end to end: engine and Sinch simulator as two
real aiohttp servers on 127.0.0.1, in virtual time. Each branch is checked by the exact REST requests
the platform received, the SVAML the engine answered the callbacks with, and how every call ended."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowengine.scenarios.model import parse_scenario
from flowengine.scenarios.runner import ScenarioResult, play, states_entered
from flowengine.scenarios.stack import running_stack
from flowengine.simulator.sinch.simulator import SinchSimulator

FLOWS = Path(__file__).resolve().parents[2] / "flows"
BUNDLED = FLOWS / "two_party_conference.yaml"
CALLEE = "447415784323"

OPENING = ["PATCH /calling/v1/calls/id/{caller}/leg/caller"]  # the greeting, said over REST
DIALING = [
    "PATCH /calling/v1/conferences/id/{room}/{caller}",  # hold with music
    "POST /calling/v1/callouts",  # conferenceCallout to the second party
]
RESUME_AND_SAY = [
    "PATCH /calling/v1/conferences/id/{room}/{caller}",
    "PATCH /calling/v1/calls/id/{caller}/leg/caller",
]


async def run(
    parties: dict[str, Any], caller: dict[str, Any] | None = None
) -> tuple[ScenarioResult, SinchSimulator]:
    scenario = parse_scenario("test", {"caller": caller or {}, "parties": parties})
    async with running_stack("sinch", BUNDLED, parties=scenario.parties) as stack:
        result = await play(stack, scenario)
        assert isinstance(stack.simulator, SinchSimulator)
        return result, stack.simulator


def requests(result: ScenarioResult, *, reads: bool = False) -> list[str]:
    """``METHOD path`` with the session's ids replaced by role names, so sequences read like the flow;
    GETs (reconciliation's questions) only with ``reads``."""
    names = {
        **{v: k for k, v in result.session["calls"].items()},
        **{v: k for k, v in result.session["conferences"].items()},
    }
    shown = []
    for request in result.requests:
        if request["method"] == "GET" and not reads:
            continue
        path = request["path"]
        for raw, role in names.items():
            path = path.replace(raw, "{" + role + "}")
        shown.append(f"{request['method']} {path}")
    return shown


def callout_body(result: ScenarioResult) -> dict[str, Any]:
    (body,) = [r["body"] for r in result.requests if r["path"] == "/calling/v1/callouts"]
    assert isinstance(body, dict)
    return body


def ice_reply(result: ScenarioResult) -> Any:
    (ice,) = [w for w in result.webhooks if w["body"].get("event") == "ice"]
    return ice["reply"]


async def test_callee_answers_and_both_talk() -> None:
    result, sim = await run({CALLEE: {"answer_after": "3s"}}, {"hangup_after": "45s"})
    assert result.passed, result.failures
    assert (result.session["state"], result.session["status"]) == ("closing", "ended")
    assert requests(result) == [
        *OPENING,
        *DIALING,
        *RESUME_AND_SAY,
        "DELETE /calling/v1/conferences/id/{room}",
    ]
    # The ICE is answered with SVAML: answer, then the caller into the conference.
    reply = ice_reply(result)
    assert [i["name"] for i in reply["instructions"]] == ["answer"]
    assert reply["action"]["name"] == "connectConf"
    assert reply["action"]["conferenceId"] == result.session["conferences"]["room"]
    callout = callout_body(result)
    assert callout["method"] == "conferenceCallout"
    assert callout["conferenceCallout"]["destination"] == {"type": "number", "endpoint": "+" + CALLEE}
    assert callout["conferenceCallout"]["conferenceId"] == result.session["conferences"]["room"]
    assert {call.state for call in sim.calls.values()} == {"FINAL"}
    assert sorted(call.result for call in sim.calls.values()) == ["ANSWERED", "ANSWERED"]


async def test_callee_never_answers_caller_is_told() -> None:
    result, sim = await run({CALLEE: {"answer_after": None}})
    assert result.passed, result.failures
    assert result.virtual_seconds >= 60  # Sinch's own ring timeout, in virtual time
    assert result.session["state"] == "closing"
    assert requests(result) == [
        *OPENING,
        *DIALING,
        *RESUME_AND_SAY,
        "DELETE /calling/v1/conferences/id/{room}",
    ]
    # Quiet for 60 s while it rang: the engine asked the platform about its calls, and the room; what it
    # heard changed nothing the session did not know by the time it held the session's lock.
    assert [r for r in requests(result, reads=True) if r.startswith("GET")] == [
        "GET /calling/v1/calls/id/{caller}", "GET /calling/v1/calls/id/{callee}",
        "GET /calling/v1/conferences/id/{room}",
    ]
    callee = sim.calls[result.session["calls"]["callee"]]
    assert (callee.state, callee.result) == ("FINAL", "NOANSWER")
    steps = [(s["event"], s["to"]) for s in result.session["trace"] if s["to"] and s["to"] != s["from"]]
    assert ("participant.join_failed", "callee_unavailable") in steps or (
        "call.failed",
        "callee_unavailable",
    ) in steps


@pytest.mark.parametrize("script, outcome", [({"busy": True}, "BUSY"), ({"reject": True}, "BUSY")])
async def test_callee_busy_or_rejecting_caller_is_told(script: dict[str, Any], outcome: str) -> None:
    result, sim = await run({CALLEE: script})
    assert result.passed, result.failures
    assert result.session["state"] == "closing"
    assert sim.calls[result.session["calls"]["callee"]].result == outcome
    assert requests(result) == [
        *OPENING,
        *DIALING,
        *RESUME_AND_SAY,
        "DELETE /calling/v1/conferences/id/{room}",
    ]


async def test_caller_hangs_up_while_callee_rings_cancels_the_callout() -> None:
    result, sim = await run({CALLEE: {"answer_after": "30s"}}, {"hangup_after": "12s"})
    assert (result.session["state"], result.session["status"]) == ("abandoned", "ended")
    assert requests(result) == [*OPENING, *DIALING, "PATCH /calling/v1/calls/id/{callee}"]
    hangup = result.requests[-1]["body"]
    assert hangup["action"]["name"] == "hangup"
    assert {call.state for call in sim.calls.values()} == {"FINAL"}


async def test_caller_hangs_up_during_the_greeting() -> None:
    result, sim = await run({CALLEE: {"answer_after": "3s"}}, {"hangup_after": "2s"})
    assert (result.session["state"], result.session["status"]) == ("done", "ended")
    assert requests(result) == OPENING  # nobody was dialled
    assert len(sim.calls) == 1


async def test_the_same_flow_makes_the_same_decisions_on_both_platforms() -> None:
    scenario = parse_scenario("same", {"parties": {CALLEE: {"answer_after": None}}})
    decisions = {}
    for provider in ("infobip", "sinch"):
        async with running_stack(provider, BUNDLED, parties=scenario.parties) as stack:
            result = await play(stack, scenario)
        # The path and the commands, not the triggering event: Infobip reports a failed dial as
        # CALL_FAILED then PARTICIPANT_JOIN_FAILED, Sinch's DiCE maps to the two in the other order.
        decisions[provider] = (states_entered(result.session), result.actions())
    assert decisions["infobip"] == decisions["sinch"]
    assert decisions["sinch"][0] == [
        "answering",
        "opening_room",
        "greeting",
        "dialing",
        "callee_unavailable",
        "closing",
    ]


async def test_the_engine_ends_a_callout_at_the_flows_dial_timeout(tmp_path: Path) -> None:
    """Sinch lets a callout ring on past the flow's `timeout: 20s`: the engine hangs it up 2 s after
    it (a platform timeout of the same length would report first), the caller hears the apology, and
    Sinch's own report of that hang-up changes nothing."""
    flow = tmp_path / "short_dial.yaml"
    flow.write_text(BUNDLED.read_text().replace("timeout: 60s", "timeout: 20s"))
    scenario = parse_scenario("test", {"caller": {}, "parties": {CALLEE: {"answer_after": None}}})
    async with running_stack("sinch", flow, parties=scenario.parties) as stack:
        result = await play(stack, scenario)
        assert isinstance(stack.simulator, SinchSimulator)
        callee = stack.simulator.calls[result.session["calls"]["callee"]]
    assert result.passed, result.failures
    trace = result.session["trace"]
    dialled = next(s["at"] for s in trace if s["to"] == "dialing")
    gave_up = next(s for s in trace if s["to"] == "callee_unavailable")
    assert (gave_up["event"], round(gave_up["at"] - dialled, 1)) == ("participant.join_failed", 22.0)
    assert gave_up["commands"][0][:2] == ["hangup", "ok"]
    assert "PATCH /calling/v1/calls/id/{callee}" in requests(result)  # the callout hung up over REST
    assert (callee.state, result.session["state"]) == ("FINAL", "closing")
    echoes = [s for s in trace if s["note"] == "echo of a ring-timeout hang-up"]
    assert [s["event"] for s in echoes] == ["participant.join_failed", "call.failed"]  # Sinch's DiCE
