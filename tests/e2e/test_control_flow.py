"""Failure semantics and control flow end to end, on both simulated platforms: the example flows under
flows/examples/ played by engine and simulator as two real aiohttp servers on 127.0.0.1 (virtual time).

- ring-all: one agent busy, one answers, one still ringing. Hanging up the busy leg is nothing to do
  (never sent), the ringing one is hung up, and the agent who answered stays up until the caller leaves.
- IVR: the menu re-prompts through ``always`` up to three times, then gives up.
- transfer: the caller hangs up on hold while the supervisor rings; the clean-up hangs up both agents'
  legs (and nothing the caller's hang-up already ended), so no leg is left up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowengine.scenarios.model import load_scenarios
from flowengine.scenarios.runner import ScenarioResult, play, states_entered
from flowengine.scenarios.stack import running_stack
from flowengine.simulator.base import Simulator

EXAMPLES = Path(__file__).resolve().parents[2] / "flows" / "examples"
PROVIDERS = ["infobip", "sinch"]


async def run(flow: str, scenario: str, provider: str) -> tuple[ScenarioResult, Simulator]:
    path = EXAMPLES / flow
    case = load_scenarios(path)[scenario]
    async with running_stack(provider, path, parties=case.parties) as stack:
        result = await play(stack, case)
        return result, stack.simulator


def life(simulator: Simulator, result: ScenarioResult, role: str) -> tuple[float | None, float | None]:
    """(answered, ended) of the role's call on the platform, in seconds after the inbound call came."""
    call: Any = simulator.calls[result.session["calls"][role]]  # type: ignore[attr-defined]
    answered = getattr(call, "answer_time", None) or getattr(call, "answered_at", None)
    ended = getattr(call, "end_time", None) or getattr(call, "ended_at", None)
    return (None if answered is None else answered - result.started_at,
            None if ended is None else ended - result.started_at)


def hangups_sent(result: ScenarioResult) -> list[str]:
    """The roles whose calls the engine hung up over the API (Infobip's POST …/hangup, Sinch's PATCH of
    the call with a hangup action)."""
    roles = {call_id: role for role, call_id in result.session["calls"].items()}
    sent = []
    for request in result.requests:
        path, body = request["path"], request["body"] if isinstance(request["body"], dict) else {}
        if path.endswith("/hangup") and "/calls/" in path and "/conferences/" not in path:
            sent.append(roles.get(path.split("/")[-2], "?"))
        elif request["method"] == "PATCH" and (body.get("action") or {}).get("name") == "hangup":
            sent.append(roles.get(path.rstrip("/").split("/")[-1], "?"))
    return sent


def commands(result: ScenarioResult) -> list[tuple[str, str, str | None]]:
    return [tuple(c) for step in result.session["trace"] for c in step["commands"]]  # type: ignore[misc]


def events(result: ScenarioResult) -> list[str]:
    return [step["event"] for step in result.session["trace"]]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_ring_all_keeps_the_agent_who_answered_when_another_was_busy(provider: str) -> None:
    result, sim = await run("ring_all.yaml", "one-busy-one-answers", provider)
    assert result.passed, result.failures
    assert (result.session["state"], result.session["status"]) == ("closing", "ended")
    assert "action.failed" not in events(result)
    # The busy leg is over: hanging it up is nothing to do, and nothing is sent. The leg still ringing
    # is hung up; the agent who answered is spared by its `if`.
    connected = next(s for s in result.session["trace"] if s["to"] == "connected")
    assert [tuple(c) for c in connected["commands"]] == [
        ("set", "ok", None),
        ("hangup", "ok", 'nothing to do: call "a1" has already ended'),
        ("hangup", "skipped", "if event.call != 'a2': false"),
        ("hangup", "ok", None),
    ]
    assert hangups_sent(result)[0] == "a3"
    assert "a1" not in hangups_sent(result) and "a2" not in hangups_sent(result)
    # The agent who answered talked to the caller until the caller hung up (60 s after the answer).
    answered, ended = life(sim, result, "a2")
    assert answered is not None and answered == pytest.approx(5.2, abs=0.5)
    assert ended is not None and ended >= 60.0
    assert life(sim, result, "a1")[0] is None and life(sim, result, "a3")[0] is None  # never answered
    assert not sim.live_calls()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_ring_all_tells_the_caller_once_every_leg_has_failed(provider: str) -> None:
    result, sim = await run("ring_all.yaml", "nobody-answers", provider)
    assert result.passed, result.failures
    assert states_entered(result.session)[-2:] == ["nobody", "closing"]
    always = [s for s in result.session["trace"] if s["event"] == "always"]
    assert [(s["from"], s["to"]) for s in always] == [("ringing", "nobody")]
    assert sorted(result.session["vars"]["failed"]) == ["a1", "a2", "a3"]
    assert not sim.live_calls()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_ivr_reprompts_three_times_through_always(provider: str) -> None:
    result, sim = await run("ivr_retry.yaml", "three-misses", provider)
    assert result.passed, result.failures
    always = [(s["from"], s["to"]) for s in result.session["trace"] if s["event"] == "always"]
    assert always == [("retry", "menu"), ("retry", "menu"), ("retry", "goodbye")]
    assert result.session["vars"]["attempts"] == 3
    # Three prompts reached the platform: Infobip's capture requests, Sinch's menus in callback replies.
    if provider == "infobip":
        captures = [r for r in result.requests if r["path"].endswith("/capture/dtmf")]
        assert len(captures) == 3
        assert {r["body"]["timeout"] for r in captures} == {5000}
    else:
        replies = [w.get("reply") or {} for w in result.webhooks]
        menus = [r for r in replies if r.get("action", {}).get("name") == "runMenu"]
        assert len(menus) == 3
    assert hangups_sent(result) == ["caller"]
    assert not sim.live_calls()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_ivr_counted_loop_ends_when_the_right_key_comes(provider: str) -> None:
    result, _ = await run("ivr_retry.yaml", "right-on-the-third-try", provider)
    assert result.passed, result.failures
    assert result.session["vars"]["attempts"] == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_transfer_cleanup_after_the_caller_left_leaves_no_leg_up(provider: str) -> None:
    result, sim = await run("transfer.yaml", "caller-leaves-during-the-transfer", provider)
    assert result.passed, result.failures
    assert (result.session["state"], result.session["status"]) == ("cleanup", "ended")
    assert "action.failed" not in events(result)
    cleanup = result.session["trace"][-1] if result.session["trace"][-1]["to"] == "cleanup" else next(
        s for s in result.session["trace"] if s["to"] == "cleanup")
    assert [tuple(c) for c in cleanup["commands"]] == [
        ("hangup", "ok", None),  # the supervisor, still ringing
        ("hangup", "ok", None),  # the agent, still in the room
        ("hangup", "ok", 'nothing to do: call "caller" has already ended'),
        ("conference_hangup", "ok", "already so" if provider == "infobip" else None),
    ]
    assert sorted(hangups_sent(result)) == ["agent", "supervisor"]
    hung_up_at = cleanup["at"] - result.started_at
    for role in ("agent", "supervisor"):
        assert life(sim, result, role)[1] == pytest.approx(hung_up_at, abs=0.5), role
    assert life(sim, result, "supervisor")[0] is None
    assert not sim.live_calls()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_transfer_cleanup_before_anyone_else_was_dialled(provider: str) -> None:
    result, sim = await run("transfer.yaml", "caller-leaves-before-the-agent-answers", provider)
    assert result.passed, result.failures
    assert ("hangup", "ok", 'nothing to do: call role "supervisor" was never bound') in commands(result)
    assert hangups_sent(result) == ["agent"]
    assert not sim.live_calls()


# -- hunt group: agents in turn, 20 s each, then voicemail ------------------------------------------------
def dial_times(result: ScenarioResult) -> list[float]:
    """When each agent's leg was dialled (seconds after the inbound call): the hunting state's entries."""
    return [s["at"] - result.started_at for s in result.session["trace"] if s["to"] == "hunting"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_hunt_group_moves_on_after_each_20_s_timeout_and_leaves_no_leg_up(provider: str) -> None:
    # Agent 1 never answers: its 20 s timeout holds on both platforms (on Sinch the engine hangs the
    # callout up: Sinch would let it ring); agent 2 answers 3 s into its turn; agent 3 is never dialled.
    result, sim = await run("hunt_group.yaml", "second-agent-answers", provider)
    assert result.passed, result.failures
    first, second = dial_times(result)
    assert second - first == pytest.approx(20.0, abs=2.5), (first, second)
    assert life(sim, result, "agent")[0] == pytest.approx(second + 3.0, abs=0.5)  # agent 2, answered
    assert len(sim.calls) == 3  # the caller and two agents: nobody rang twice, agent 3 never
    assert not sim.live_calls()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_hunt_group_ends_in_voicemail_with_every_leg_over(provider: str) -> None:
    result, sim = await run("hunt_group.yaml", "nobody-then-voicemail", provider)
    assert result.passed, result.failures
    assert len(dial_times(result)) == 3
    recorded = [c for step in result.session["trace"] for c in step["commands"] if c[0] == "record"]
    assert recorded and recorded[0][1] == "ok"
    assert len(sim.calls) == 4 and not sim.live_calls()
