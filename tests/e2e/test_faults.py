"""Platform trouble in the middle of a call: injected 503s are retried by the adapter (with backoff on
virtual time) and the caller never notices; a command that keeps failing ends the session cleanly."""

from __future__ import annotations

from pathlib import Path

from flowengine.scenarios.model import parse_scenario
from flowengine.scenarios.runner import play
from flowengine.scenarios.stack import running_stack
from flowengine.simulator.base import Faults

BUNDLED = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"


async def test_a_third_of_requests_failing_with_503_is_ridden_out() -> None:
    scenario = parse_scenario(
        "flaky",
        {
            "caller": {"hangup_after": "45s"},
            "parties": {"447415784323": {"answer_after": "3s"}},
            "expect": {"state": "closing", "status": "ended"},
        },
    )
    async with running_stack("infobip", BUNDLED, parties=scenario.parties) as stack:
        stack.simulator.faults = Faults(error_rate=0.3, seed=3)
        result = await play(stack, scenario)
    assert result.passed, result.failures
    statuses = [r["status"] for r in result.requests]
    assert statuses.count(503) >= 2  # trouble did happen...
    commands = [c for step in result.session["trace"] for c in step["commands"]]
    assert commands and all(status == "ok" for _, status, _ in commands)  # ...and every command got through
    answered = [r for r in result.requests if r["path"].endswith("/answer")]
    assert [r["status"] for r in answered][-1] == 200


async def test_a_command_that_keeps_failing_ends_the_session_cleanly() -> None:
    scenario = parse_scenario("down", {"parties": {"447415784323": {"answer_after": "3s"}}})
    async with running_stack("infobip", BUNDLED, parties=scenario.parties) as stack:
        await stack.simulator.place_inbound_call("447700900001", "4592457976")
        await stack.clock.sleep(5)  # answered, in the conference, greeting under way
        stack.simulator.faults = Faults(error_rate=1.0)  # then the platform goes down for good...
        await stack.clock.sleep(40)  # longer than a command's budget twice over: retries cannot ride it out
        stack.simulator.faults = Faults()  # ...and comes back
        await stack.clock.sleep(30)
        (record,) = await stack.service.store.list_sessions()
        requests = [(r.method, r.path.rsplit("/", 1)[-1], r.status) for r in stack.simulator.requests]
    assert (record.state, record.status) == ("failed", "failed")
    failed_step = next(s for s in record.data["trace"] if s["event"] == "action.failed")
    assert failed_step["note"].startswith("unhandled action.failed")
    # The clean-up tried to hang up what the session owned; with the platform still down, it could not.
    assert ("POST", "hangup", 503) in requests
    assert failed_step["commands"][0][:2] == ["hangup", "error"]
