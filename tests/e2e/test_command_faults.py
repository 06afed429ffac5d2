"""Platform faults against each create-or-act-once command, engine and simulator as real HTTP servers on
127.0.0.1: the answer lost after the platform carried the command out (the connection dropped, or a 500),
a 500 before it did anything, a 429 with Retry-After, an answer slower than the deadline. The platform's
own state (its control API) must show every call, conference and participant exactly once, and the
bundled flow must still end as it should. Idempotent commands are simply sent again."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from flowengine.scenarios.model import parse_scenario
from flowengine.scenarios.runner import ScenarioResult, play
from flowengine.scenarios.stack import running_stack
from flowengine.simulator.base import Faults

BUNDLED = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"
CALLEE = "447415784323"
QUICK = {"command_deadline": 0.3}  # a slow answer (0.6 s, real time) misses it
SCENARIO = {"caller": {"hangup_after": "60s"},
            "parties": {CALLEE: {"answer_after": "3s", "hangup_after": "30s"}},
            "expect": {"state": "closing", "status": "ended"}}
# Which request each command is, on the Infobip wire.
INFOBIP = {
    "answer": r"^POST /calls/1/calls/[^/]+/answer$",
    "conference_create": r"^POST /calls/1/conferences$",
    "conference_join": r"^PUT /calls/1/conferences/[^/]+/call/[^/]+$",
    "conference_dial": r"^POST /calls/1/conferences/[^/]+/call$",
    "say": r"^POST /calls/1/calls/[^/]+/say$",
}
# mode -> (faults, whether the platform carried the first request out)
MODES: dict[str, tuple[dict[str, Any], bool]] = {
    "answer-lost": ({"lost_rate": 1.0}, True),
    "answer-lost-as-500": ({"lost_rate": 1.0, "lost_as": 500}, True),
    "slow-answer": ({"slow_rate": 1.0, "slow_seconds": 0.6}, True),
    "500-before-acting": ({"error_rate": 1.0, "error_status": 500}, False),
    "429-retry-after": ({"throttle_rate": 1.0, "retry_after": 2}, False),
}


@dataclass
class Run:
    result: ScenarioResult
    calls: dict[str, Any]  # the simulator's control API: every call it holds
    conferences: dict[str, Any]
    requests: list[dict[str, Any]]

    def sent(self, pattern: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if re.search(pattern, f"{r['method']} {r['path']}")]

    @property
    def commands(self) -> list[tuple[str, str, Any]]:
        return [tuple(c) for step in self.result.session["trace"] for c in step["commands"]]


async def run(provider: str, faults: Faults, *, flow: Path = BUNDLED, scenario: dict[str, Any] | None = None,
              simulator: dict[str, Any] | None = None) -> Run:
    played = parse_scenario("faults", scenario or SCENARIO)
    async with running_stack(provider, flow, parties=played.parties, settings=QUICK,
                             simulator_options=simulator) as stack:
        stack.simulator.faults = faults
        result = await play(stack, played)
        async with aiohttp.ClientSession() as http:
            control = f"{stack.simulator_url}/_simulator/"

            async def get(what: str) -> Any:
                async with http.get(control + what) as response:
                    return await response.json()

            return Run(result, await get("calls"), await get("conferences"), await get("requests"))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("command", INFOBIP)
async def test_infobip_create_or_act_once_command_under_a_fault_is_done_exactly_once(
    command: str, mode: str
) -> None:
    fault, carried_out = MODES[mode]
    done = await run("infobip", Faults(match=INFOBIP[command], times=1, seed=1, **fault))
    assert done.result.passed, done.result.failures
    faulted = [r for r in done.requests if r["fault"]]
    assert len(faulted) == 1 and re.search(INFOBIP[command], f"{faulted[0]['method']} {faulted[0]['path']}")
    sent = done.sent(INFOBIP[command])
    expected = 1 if carried_out else 2  # found by asking, or sent once more after a refusal
    if command == "say":
        expected = 2 if not carried_out and mode == "429-retry-after" else 1  # greeting + joining
        expected += 1  # the second say of the flow ("Another caller is joining")
    assert len(sent) == expected, [(r["method"], r["path"], r["status"], r["fault"]) for r in sent]
    # The platform holds exactly the caller's and the callee's calls and the one room, once each.
    assert len(done.calls) == 2 and len(done.conferences) == 1
    (room,) = done.conferences.values()
    session = done.result.session
    assert sorted(session["calls"].values()) == sorted(done.calls)
    assert list(session["conferences"].values()) == [room["id"]]
    asked = [r for r in done.requests if r["method"] == "GET"]
    if carried_out and command != "say":
        assert asked, "an unknown outcome is settled by asking the platform"
    if command == "say" and carried_out:
        # at most once: counted as done, not said twice, and the trace says the outcome was unknown
        assert ("say", "ok", "outcome unknown: not sent again") in done.commands


async def test_infobip_plain_dial_whose_answer_is_lost_is_found_by_its_key(tmp_path: Path) -> None:
    flow = tmp_path / "dialler.yaml"
    flow.write_text("""
flow: dialler
version: 1
initial: answering
states:
  answering:
    entry: [{answer: {call: caller}}]
    on: {call.answered: calling}
    after: {10s: done}
  calling:
    entry: [{dial: {to: "447415784323", from: "4592457976", timeout: 30s, as: callee}}]
    on: {call.answered: {target: done, when: "event.call == 'callee'"}}
    after: {40s: done}
  done:
    type: final
    entry: [{hangup: {call: caller}}]
""")
    scenario = {**SCENARIO, "expect": {"state": "done", "status": "ended"}}
    done = await run("infobip", Faults(match=r"^POST /calls/1/calls$", times=1, lost_rate=1.0), flow=flow,
                     scenario=scenario)
    assert done.result.passed, done.result.failures
    assert len(done.sent(r"^POST /calls/1/calls$")) == 1  # never placed twice
    assert next(r["path"] for r in done.requests if r["method"] == "GET") == "/calls/1/calls"  # the list
    assert len(done.calls) == 2  # the caller and the one callee
    assert sorted(done.result.session["calls"].values()) == sorted(done.calls)


async def test_infobip_create_refused_five_times_is_asked_about_and_sent_a_sixth_time() -> None:
    # Each 500 leaves the outcome unknown: the platform is asked, shows nothing was done, and the answer
    # goes out once more, as many times as one request is tried (RetryPolicy.attempts).
    done = await run("infobip", Faults(match=INFOBIP["answer"], times=5, error_rate=1.0, error_status=500))
    assert done.result.passed, done.result.failures
    assert [r["status"] for r in done.sent(INFOBIP["answer"])] == [500] * 5 + [200]
    assert len([r for r in done.requests if r["method"] == "GET"]) >= 5  # asked after each refusal


async def test_infobip_idempotent_commands_are_sent_again_after_5xx() -> None:
    hold = r"^PATCH /calls/1/conferences/[^/]+/call/[^/]+$"
    done = await run("infobip", Faults(match=hold, times=2, error_rate=1.0, error_status=500))
    assert done.result.passed, done.result.failures
    statuses = [r["status"] for r in done.sent(hold)]
    assert statuses[:3] == [500, 500, 200]  # hold: two 500s, then through (resume's PATCH follows)
    assert not [r for r in done.requests if r["method"] == "GET"]  # nothing to ask: simply resent


@pytest.mark.parametrize("mode", ["answer-lost", "slow-answer"])
async def test_infobip_hold_music_with_an_unknown_outcome_is_not_started_twice(mode: str) -> None:
    # The hold's participant update may be resent (idempotent); its music would start over if it were.
    music = r"^POST /calls/1/calls/[^/]+/play$"
    done = await run("infobip", Faults(match=music, times=1, **MODES[mode][0]))
    assert done.result.passed, done.result.failures
    assert len(done.sent(music)) == 1
    assert ("hold", "ok", None) in done.commands


@pytest.mark.parametrize("mode", ["answer-lost", "slow-answer", "500-before-acting"])
async def test_sinch_callout_with_an_unknown_outcome_is_never_placed_twice(mode: str) -> None:
    """Sinch cannot be asked about a callout (it lists no calls): it is never placed again; the callee is
    bound under a stand-in id that the callout's first callback (its `custom` carries the key) replaces.
    Placed after all: the callee answers and the call goes on as usual. Never placed: the engine's ring
    timeout moves the flow on, as for a callee who does not answer."""
    fault, carried_out = MODES[mode]
    patient = {**SCENARIO, "caller": {"hangup_after": "90s"}}  # waits past the dial's 60 s timeout
    callouts = Faults(match=r"^POST /calling/v1/callouts$", times=1, **fault)
    done = await run("sinch", callouts, scenario=patient)
    assert done.result.passed, done.result.failures
    assert len(done.sent(r"^POST /calling/v1/callouts$")) == 1
    assert len(done.calls) == (2 if carried_out else 1)
    session = done.result.session
    assert ("conference_dial", "ok") in [c[:2] for c in done.commands]
    states = [step["to"] for step in session["trace"] if step["to"]]
    if carried_out:
        assert sorted(session["calls"].values()) == sorted(done.calls)  # the callee named by its ACE
        assert "connected" in states
    else:
        assert session["calls"]["callee"].startswith("placed:")  # never named: never placed
        assert "callee_unavailable" in states and "connected" not in states


async def test_sinch_callout_named_after_the_flow_gave_up_on_it_is_hung_up() -> None:
    # Placed, its answer lost, and answered only at 75 s (this network lets it ring 120 s): the flow gave
    # up at its 60 s timeout (the engine's ring timeout, on the stand-in); the ACE that finally names the
    # call gets it hung up.
    late = {**SCENARIO, "caller": {"hangup_after": "120s"},
            "parties": {CALLEE: {"answer_after": "75s", "hangup_after": "30s"}}}
    done = await run("sinch", Faults(match=r"^POST /calling/v1/callouts$", times=1, lost_rate=1.0),
                     scenario=late, simulator={"callout_ring_timeout": 120.0})
    assert done.result.passed, done.result.failures
    assert len(done.sent(r"^POST /calling/v1/callouts$")) == 1
    states = [step["to"] for step in done.result.session["trace"] if step["to"]]
    assert "callee_unavailable" in states and "connected" not in states
    callee = next(c for c in done.calls.values() if c["to"]["endpoint"].endswith(CALLEE))
    # Answered, then hung up by the engine at once (not left in a room nobody is in, in silence).
    assert (callee["status"], callee["result"], callee["reason"]) == ("FINAL", "ANSWERED", "MANAGERHANGUP")
    assert callee["duration"] <= 1, callee


async def test_sinch_callout_throttled_is_sent_again_once() -> None:
    done = await run("sinch", Faults(match=r"^POST /calling/v1/callouts$", times=1, throttle_rate=1.0))
    assert done.result.passed, done.result.failures
    assert [r["status"] for r in done.sent(r"^POST /calling/v1/callouts$")] == [429, 200]
    assert len(done.calls) == 2


AGAIN = """
flow: again
version: 1
initial: answering
states:
  answering:
    entry: [{answer: {call: caller}}, {answer: {call: caller}}]   # the second: answered already
    on: {call.answered: opening}
    after: {10s: done}
  opening:
    entry:
      - conference_create: {name: "room-{{ session.id }}", as: room}
      - conference_join: {conference: room, call: caller}
    on: {participant.joined: {target: joined, when: "event.call == 'caller'"}}
    after: {15s: done}
  joined:
    entry: [{conference_join: {conference: room, call: caller}}]   # in that conference already
    after: {1s: closing}
  closing:
    entry: [{conference_hangup: {conference: room}}, {hangup: {call: caller}}]   # the room's end ended it
    on: {call.finished: done}
    after: {5s: done}
  done:
    type: final
    entry: [{hangup: {call: caller}}]   # ended, as the session knows by now: nothing to do, not sent
"""


@pytest.mark.parametrize("provider", ["infobip", "sinch"])
async def test_already_so_answers_are_success_and_the_session_goes_on(provider: str, tmp_path: Path) -> None:
    flow = tmp_path / "again.yaml"
    # Sinch takes a join only in a callback's reply, and no callback about the caller takes one once it
    # is in the room: validate (and serve) refuse the second join there. Its "already so" on Sinch is the
    # adapter's test (a join outside a reply, of a call already in that conference).
    again = AGAIN if provider == "infobip" else AGAIN.replace(
        "entry: [{conference_join: {conference: room, call: caller}}]   # in that conference already\n", "")
    flow.write_text(again)
    scenario = {"caller": {"hangup_after": "60s"}, "expect": {"state": "done", "status": "ended"}}
    done = await run(provider, Faults(), flow=flow, scenario=scenario)
    assert done.result.passed, done.result.failures
    joins = [("conference_join", "ok")] * (2 if provider == "infobip" else 1)
    assert [c[:2] for c in done.commands] == [
        ("answer", "ok"), ("answer", "ok"), ("conference_create", "ok"), *joins,
        ("conference_hangup", "ok"), ("hangup", "ok"), ("hangup", "ok")]
    assert done.commands[-2][2] == "already so"
    assert done.commands[-1][2] == 'nothing to do: call "caller" has already ended'
    if provider == "infobip":  # the platform did refuse them: 400, 400, 404
        refused = [(r["method"], r["path"].rsplit("/", 1)[-1], r["status"]) for r in done.requests
                   if r["status"] >= 400]
        assert [status for *_, status in refused] == [400, 400, 404]
