"""The seed's conference management on Sinch, end to end: a moderator's keys mute, unmute, hold with
music, resume, list and remove a guest, then the conference is ended for everyone (kick all)."""

from __future__ import annotations

from pathlib import Path

from flowengine.scenarios.model import load_scenarios
from flowengine.scenarios.runner import play
from flowengine.scenarios.stack import running_stack
from flowengine.simulator.sinch.simulator import SinchSimulator

FLOW = Path(__file__).resolve().parents[2] / "flows" / "moderated_conference.yaml"


async def test_moderator_manages_the_guest_through_sinchs_conference_api() -> None:
    scenario = load_scenarios(FLOW)["moderator-works-the-keys"]
    async with running_stack("sinch", FLOW, parties=scenario.parties) as stack:
        result = await play(stack, scenario)
        assert isinstance(stack.simulator, SinchSimulator)
        calls = {call_id: (call.state, call.reason) for call_id, call in stack.simulator.calls.items()}
    assert result.passed, result.failures
    session = result.session
    room, guest = session["conferences"]["room"], session["calls"]["guest"]
    member = f"/calling/v1/conferences/id/{room}/{guest}"
    managed = [(r["method"], r["body"]) for r in result.requests if r["path"] == member]
    assert managed == [
        ("PATCH", {"command": "mute"}),
        ("PATCH", {"command": "unmute"}),
        ("PATCH", {"command": "onhold", "moh": "music2"}),
        ("PATCH", {"command": "resume"}),
        ("DELETE", None),  # kick the guest (key 5)
    ]
    info = [
        r
        for r in result.requests
        if r["method"] == "GET" and r["path"] == f"/calling/v1/conferences/id/{room}"
    ]
    assert len(info) == 1 and info[0]["status"] == 200  # conference info (key 9)
    assert [p["call_id"] for p in session["vars"]["participants"]["participants"]] == [
        session["calls"]["caller"],
        guest,
    ]
    assert (result.requests[-1]["method"], result.requests[-1]["path"]) == (
        "DELETE",
        f"/calling/v1/conferences/id/{room}",
    )  # kick all: the conference ends for everyone
    assert calls[guest] == ("FINAL", "MANAGERHANGUP")
    assert {state for state, _ in calls.values()} == {"FINAL"}
