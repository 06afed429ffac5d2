"""The seed article's scenario on Infobip through every branch, end to end: the engine and the Infobip
simulator as two real aiohttp servers on 127.0.0.1 in virtual time. Each branch is checked by the exact
API requests the platform received, how every call and the conference ended there, and the session's
final state as the store holds it."""

from __future__ import annotations

from typing import Any

import pytest

from flowengine.server.serving import serving

from .conftest import (
    CALLEE,
    CALLER_ID,
    CLOSE,
    DIALING,
    GREETING,
    JOINING,
    OPENING,
    RESUME_AND_SAY,
    SORRY,
    Relay,
    Run,
    call_in,
    engine,
    platform,
    run_seed,
    scenario,
)

TO_DIALING = [
    ("call.received", None, "answering"),
    ("call.answered", "answering", "opening_room"),
    ("participant.joined", "opening_room", "greeting"),
    ("say.finished", "greeting", "dialing"),
]
APOLOGISED = [
    ("say.finished", "callee_unavailable", "closing"),
]


def assert_ended(run: Run, state: str) -> None:
    assert (run.session["state"], run.session["status"]) == (state, "ended"), run.failures
    assert run.session["timers"] == {}  # a final state leaves nothing armed
    assert all(status < 300 for status in run.statuses())
    assert {event["status"] for event in run.webhooks} == {200}


async def test_callee_answers_then_hangs_up() -> None:
    run = await run_seed(scenario(callee={"answer_after": "3s", "hangup_after": "30s"}))
    assert run.wire() == OPENING + DIALING + RESUME_AND_SAY + CLOSE
    assert run.said() == [GREETING, JOINING]
    assert run.steps() == [
        *TO_DIALING,
        ("participant.joined", "dialing", "connected"),
        ("call.finished", "connected", "closing"),
    ]
    assert_ended(run, "closing")
    assert run.call("callee") == ("FINISHED", "NORMAL_HANGUP", "ENDPOINT")  # the callee hung up ...
    assert run.call("caller") == ("FINISHED", "NORMAL_HANGUP", "API")  # ... the engine ended the caller's
    assert run.room() == (True, {"caller": "LEFT", "callee": "LEFT"})
    dial = run.requests[len(OPENING) + 2]["body"]
    key = dial["callRequest"].pop("customData")["flowengineKey"]  # the engine's correlation key
    assert key.startswith(run.session["id"] + ":")
    assert dial == {"callRequest": {"endpoint": {"type": "PHONE", "phoneNumber": CALLEE},
                                    "connectTimeout": 60, "from": CALLER_ID}}


async def test_callee_answers_then_caller_hangs_up() -> None:
    run = await run_seed(scenario(caller={"hangup_after": "20s"}, callee={"answer_after": "3s"}))
    assert run.wire() == OPENING + DIALING + RESUME_AND_SAY + CLOSE
    assert run.steps()[-1] == ("call.finished", "connected", "closing")
    assert_ended(run, "closing")
    assert run.call("caller") == ("FINISHED", "NORMAL_HANGUP", "ENDPOINT")
    assert run.call("callee") == ("FINISHED", "NORMAL_HANGUP", "API")
    assert run.room() == (True, {"caller": "LEFT", "callee": "LEFT"})


async def test_callee_never_answers_the_60s_timeout_passes_in_virtual_time() -> None:
    run = await run_seed(scenario(callee={"answer_after": None}))
    assert run.wire() == OPENING + DIALING + RESUME_AND_SAY + CLOSE
    assert run.said() == [GREETING, SORRY]
    # The platform reports CALL_FAILED (NO_ANSWER) and then PARTICIPANT_JOIN_FAILED; the first moves on.
    assert run.steps() == [*TO_DIALING, ("call.failed", "dialing", "callee_unavailable"), *APOLOGISED]
    assert_ended(run, "closing")
    assert run.call("callee") == ("NO_ANSWER", "NO_ANSWER", "PLATFORM")
    assert run.call("caller") == ("FINISHED", "NORMAL_HANGUP", "API")
    assert run.room() == (True, {"caller": "LEFT"})  # the callee never joined
    (join_failed,) = [e["body"] for e in run.webhooks if e["body"]["type"] == "PARTICIPANT_JOIN_FAILED"]
    assert join_failed["properties"]["reason"] == "NO_ANSWER"
    dialled_at = run.at(len(OPENING) + 2)
    resumed_at = run.at(len(OPENING) + len(DIALING))
    assert resumed_at - dialled_at >= 60.0  # Infobip's connectTimeout, in virtual seconds
    assert run.virtual_seconds >= 60.0


@pytest.mark.parametrize(
    "callee, ended",
    [
        ({"busy": True}, ("BUSY", "BUSY", "ENDPOINT")),
        ({"reject": True, "answer_after": "4s"}, ("FAILED", "REJECTED", "ENDPOINT")),
        ({"unreachable": True}, ("FAILED", "DESTINATION_UNAVAILABLE", "PLATFORM")),
    ],
    ids=["busy", "rejects", "unreachable"],
)
async def test_callee_cannot_be_reached_caller_is_told(
    callee: dict[str, Any], ended: tuple[str, str, str]
) -> None:
    run = await run_seed(scenario(callee=callee))
    assert run.wire() == OPENING + DIALING + RESUME_AND_SAY + CLOSE
    assert run.said() == [GREETING, SORRY]
    assert run.steps() == [*TO_DIALING, ("call.failed", "dialing", "callee_unavailable"), *APOLOGISED]
    assert_ended(run, "closing")
    assert run.call("callee") == ended
    assert run.call("caller") == ("FINISHED", "NORMAL_HANGUP", "API")
    assert run.room() == (True, {"caller": "LEFT"})


async def test_join_failure_alone_ends_the_wait() -> None:
    """Infobip may drop or reorder events: with the callee's CALL_FAILED lost on the way, its
    PARTICIPANT_JOIN_FAILED is enough to stop the music, apologise and close the room."""
    case = scenario(callee={"answer_after": None})
    relay = Relay(route=lambda _, body: [] if body["type"] == "CALL_FAILED" else [0])
    async with platform(case.parties) as side, engine(side, "memory://") as running:
        relay.targets = [running.webhook_url]
        async with serving(relay.app()) as relay_url:
            side.simulator.webhook_url = relay_url
            run = await call_in(side, running.service, case)
    assert relay.lost == ["CALL_FAILED"]
    assert run.steps() == [
        *TO_DIALING, ("participant.join_failed", "dialing", "callee_unavailable"), *APOLOGISED
    ]
    assert run.wire() == OPENING + DIALING + RESUME_AND_SAY + CLOSE
    assert_ended(run, "closing")
    assert run.call("callee")[0] == "NO_ANSWER"


async def test_caller_hangs_up_while_the_callee_rings_cancels_the_dial() -> None:
    run = await run_seed(scenario(caller={"hangup_after": "12s"}, callee={"answer_after": "30s"}))
    assert run.wire() == OPENING + DIALING + ["POST /calls/1/calls/{callee}/hangup"]
    assert run.requests[-1]["body"] == {}  # no errorCode: an unanswered call is cancelled
    assert run.steps() == [*TO_DIALING, ("call.finished", "dialing", "abandoned")]
    assert_ended(run, "abandoned")
    assert run.call("caller") == ("FINISHED", "NORMAL_HANGUP", "ENDPOINT")
    assert run.call("callee") == ("CANCELLED", "CANCELLED", "API")
    assert run.room() == (True, {"caller": "LEFT"})


async def test_caller_hangs_up_during_the_greeting() -> None:
    run = await run_seed(scenario(caller={"hangup_after": "3s"}, callee={"answer_after": "3s"}))
    assert run.wire() == OPENING  # nobody was dialled
    assert run.steps() == [*TO_DIALING[:3], ("call.finished", "greeting", "done")]
    assert_ended(run, "done")
    assert list(run.session["calls"]) == ["caller"] and len(run.simulator.calls) == 1
    assert run.call("caller") == ("FINISHED", "NORMAL_HANGUP", "ENDPOINT")
    assert run.room() == (True, {"caller": "LEFT"})  # the platform closes the room once it is empty


async def test_answer_refused_as_gone_delivers_the_callers_hang_up() -> None:
    """The caller gives up before the engine answers: the answer gets 404, so the engine asks the
    platform, which shows the call has ended; the flow hears that (its call.finished handler ends the
    session) before the platform's own CALL_FAILED arrives, and nothing is left to hang up."""
    run = await run_seed(scenario(), simulator_options={"inbound_ring_timeout": 0.01})
    assert run.wire() == ["POST /calls/1/calls/{caller}/answer"]
    assert run.statuses() == [404]
    assert (run.session["state"], run.session["status"]) == ("done", "ended")
    assert [(s["event"], s["to"]) for s in run.session["trace"][:2]] == [
        ("call.received", "answering"), ("call.finished", "done"),
    ]
    assert run.call("caller") == ("NO_ANSWER", "NO_ANSWER", "PLATFORM")
    assert run.simulator.conferences == {}
    assert run.webhook_types() == ["CALL_RECEIVED", "CALL_FAILED"]
