"""Infobip conferences: the seed article's two-party scenario end to end (answered and unanswered),
participant management, conference media and the connect endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from flowengine.runtime.clock import VirtualClock
from flowengine.simulator import InfobipSimulator, PartyBook, PartyScript
from flowengine.simulator.testing import Harness, harness

AUTH = {"Authorization": "App secret"}
CALLER, DID = "447415784323", "4592457976"
CALLEE, NEVER, BUSY = "447000000010", "447000000011", "447000000012"
BOOK = PartyBook(
    {
        CALLEE: PartyScript(answer_after=2, hangup_after=20),
        NEVER: PartyScript(answer_after=None),
        BUSY: PartyScript(busy=True),
    }
)
H = Harness[InfobipSimulator]
# The seed article's scenario when the second party answers, then hangs up, then the caller hangs up.
ANSWERED_SEQUENCE = [
    *("CALL_RECEIVED", "CALL_ESTABLISHED", "CONFERENCE_CREATED", "PARTICIPANT_JOINING", "PARTICIPANT_JOINED"),
    "SAY_FINISHED",
    *("CALL_RINGING", "CALL_ESTABLISHED", "PARTICIPANT_JOINING", "PARTICIPANT_JOINED"),  # the callee
    *("PLAY_FINISHED", "SAY_FINISHED"),
    *("CALL_FINISHED", "PARTICIPANT_REMOVED"),  # the callee hangs up
    *("CALL_FINISHED", "PARTICIPANT_REMOVED", "CONFERENCE_FINISHED"),  # then the caller
]


def make(clock: VirtualClock, url: str) -> InfobipSimulator:
    return InfobipSimulator(clock, webhook_url=url, api_key="secret", parties=BOOK)


@pytest.fixture
async def h() -> AsyncIterator[H]:
    async with harness(make, headers=AUTH) as running:
        yield running


async def ok(h: H, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    got_status, got = await h.client.request(method, path, body if body is not None else {})
    assert got_status == status, got
    return got


async def caller_in_room(h: H) -> tuple[str, str]:
    """The seed's first half: answer the caller, create a conference, put the caller in it."""
    caller = await h.sim.place_inbound_call(from_=CALLER, to=DID)
    await h.wait_events("CALL_RECEIVED")
    await ok(h, "POST", f"/calls/1/calls/{caller}/answer")
    conference = await ok(
        h, "POST", "/calls/1/conferences", {"name": "Example conference", "callsConfigurationId": "cfg"}, 201
    )
    room = conference["id"]
    joined = await ok(h, "PUT", f"/calls/1/conferences/{room}/call/{caller}")
    assert [(p["callId"], p["state"]) for p in joined["participants"]] == [(caller, "JOINED")]
    await h.wait_events("PARTICIPANT_JOINED")
    return caller, room


def new_call(number: str, timeout: int = 60) -> dict[str, Any]:
    return {
        "callRequest": {
            "endpoint": {"type": "PHONE", "phoneNumber": number},
            "from": DID,
            "connectTimeout": timeout,
        },
        "connectOnEarlyMedia": False,
    }


async def test_seed_scenario_callee_answers(h: H) -> None:
    caller, room = await caller_in_room(h)
    await ok(
        h,
        "POST",
        f"/calls/1/calls/{caller}/say",
        {"text": "Please wait and enjoy the sounds of nature.", "language": "en"},
    )
    await h.wait_events("SAY_FINISHED")
    await ok(
        h,
        "POST",
        f"/calls/1/calls/{caller}/play",
        {"loopCount": 3, "content": {"type": "FILE", "fileId": "a8b4"}},
    )
    added = await ok(h, "POST", f"/calls/1/conferences/{room}/call", new_call(CALLEE))
    callee = added["call"]["id"]
    assert (added["call"]["state"], added["conference"]["id"]) == ("CALLING", room)
    await h.until(lambda: any(b["callId"] == callee for b in h.bodies("PARTICIPANT_JOINED")))
    await ok(h, "POST", f"/calls/1/conferences/{room}/stop-play")
    await h.wait_events("PLAY_FINISHED")
    await ok(
        h,
        "POST",
        f"/calls/1/calls/{caller}/say",
        {"text": "Another caller is joining the call now.", "language": "en"},
    )
    await h.until(lambda: h.sim.calls[callee].state == "FINISHED")  # the callee hangs up 20 s after answering
    await ok(h, "POST", f"/calls/1/calls/{caller}/hangup")
    await h.wait_events("CONFERENCE_FINISHED")
    assert h.names() == ANSWERED_SEQUENCE
    assert [b["callId"] for b in h.bodies("PARTICIPANT_REMOVED")] == [callee, caller]
    assert [b["properties"]["callLog"]["hangupSource"] for b in h.bodies("CALL_FINISHED")] == [
        "ENDPOINT",
        "API",
    ]
    assert h.bodies("PLAY_FINISHED")[0]["properties"]["playedCompletely"] is False
    joined = h.bodies("PARTICIPANT_JOINED")[1]
    assert (joined["conferenceId"], joined["properties"]["participant"]["state"]) == (room, "JOINED")
    assert h.bodies("CALL_ESTABLISHED")[1]["conferenceId"] == room
    assert (await h.client.request("GET", f"/calls/1/conferences/{room}"))[0] == 404
    assert h.sim.conferences[room].finished


@pytest.mark.parametrize(("number", "reason", "delay"), [(NEVER, "NO_ANSWER", 60.0), (BUSY, "BUSY", 0.2)])
async def test_seed_scenario_callee_does_not_join(h: H, number: str, reason: str, delay: float) -> None:
    caller, room = await caller_in_room(h)
    await ok(
        h,
        "POST",
        f"/calls/1/calls/{caller}/play",
        {"loopCount": 100, "content": {"type": "FILE", "fileId": "a8b4"}},
    )
    dialled_at = h.clock.now()
    callee = (await ok(h, "POST", f"/calls/1/conferences/{room}/call", new_call(number)))["call"]["id"]
    await h.wait_events("PARTICIPANT_JOIN_FAILED")
    failed = h.bodies("PARTICIPANT_JOIN_FAILED")[0]
    assert (failed["callId"], failed["conferenceId"], failed["properties"]["reason"]) == (
        callee,
        room,
        reason,
    )
    assert failed["properties"]["participant"]["callId"] == callee
    assert h.clock.now() - dialled_at == pytest.approx(delay + h.sim.webhooks.delay)
    await ok(h, "POST", f"/calls/1/conferences/{room}/stop-play")
    await ok(
        h,
        "POST",
        f"/calls/1/calls/{caller}/say",
        {"text": "The other party could not join.", "language": "en"},
    )
    await h.wait_events("SAY_FINISHED")
    hung = await ok(h, "POST", f"/calls/1/conferences/{room}/hangup")
    assert hung["participants"] == []
    await h.wait_events("CONFERENCE_FINISHED")
    tail = h.names()[h.names().index("PARTICIPANT_JOIN_FAILED") - 1 :]
    assert tail == [
        "CALL_FAILED",
        "PARTICIPANT_JOIN_FAILED",
        "PLAY_FINISHED",
        "SAY_FINISHED",
        "CALL_FINISHED",
        "PARTICIPANT_REMOVED",
        "CONFERENCE_FINISHED",
    ]
    assert h.sim.calls[caller].state == "FINISHED"


async def test_remove_mute_and_deafen_participants(h: H) -> None:
    caller, room = await caller_in_room(h)
    await ok(h, "PATCH", f"/calls/1/conferences/{room}/call/{caller}", {"muted": True})
    await ok(h, "PATCH", f"/calls/1/conferences/{room}", {"deaf": True})
    audio = (await ok(h, "GET", f"/calls/1/conferences/{room}"))["participants"][0]["media"]["audio"]
    assert (audio["muted"], audio["deaf"]) == (True, True)
    status, body = await h.client.request(
        "PATCH", f"/calls/1/conferences/{room}/call/{caller}", {"muted": "yes"}
    )
    assert status == 400 and body["requestError"]["serviceException"]["validationErrors"] == {
        "muted": ["must be a boolean"]
    }
    await ok(h, "DELETE", f"/calls/1/conferences/{room}/call/{caller}")
    await h.wait_events("CONFERENCE_FINISHED")
    assert h.names()[-2:] == ["PARTICIPANT_REMOVED", "CONFERENCE_FINISHED"]
    assert h.bodies("PARTICIPANT_REMOVED")[0]["properties"]["reason"] == "REMOVED"
    assert h.sim.calls[caller].state == "ESTABLISHED" and h.sim.calls[caller].conference_id is None
    assert (await h.client.request("DELETE", f"/calls/1/conferences/{room}/call/{caller}"))[0] == 404


async def test_conference_errors(h: H) -> None:
    status, body = await h.client.request("POST", "/calls/1/conferences", {"name": "x"})
    assert (status, body["requestError"]["serviceException"]["validationErrors"]) == (
        400,
        {"callsConfigurationId": ["must not be null"]},
    )
    room = (await ok(h, "POST", "/calls/1/conferences", {"callsConfigurationId": "cfg"}, 201))["id"]
    status, body = await h.client.request(
        "POST", f"/calls/1/conferences/{room}/call", new_call(CALLEE, timeout=90)
    )
    assert (status, body["requestError"]["serviceException"]["validationErrors"]) == (
        400,
        {"callRequest.connectTimeout": ["must be less than or equal to 60"]},
    )
    status, body = await h.client.request("POST", f"/calls/1/conferences/{room}/call", {})
    assert body["requestError"]["serviceException"]["validationErrors"] == {
        "callRequest": ["must not be null"]
    }
    ringing = await h.sim.place_inbound_call(from_=CALLER, to=DID)
    status, body = await h.client.request("PUT", f"/calls/1/conferences/{room}/call/{ringing}", {})
    assert status == 400 and "only ESTABLISHED" in body["requestError"]["serviceException"]["text"]
    assert (await h.client.request("PUT", f"/calls/1/conferences/nope/call/{ringing}", {}))[0] == 404
    assert (await h.client.request("PUT", f"/calls/1/conferences/{room}/call/nope", {}))[0] == 404


async def test_conference_say_reports_for_the_conference(h: H) -> None:
    _, room = await caller_in_room(h)
    await ok(h, "POST", f"/calls/1/conferences/{room}/say", {"text": "Welcome both", "language": "en-gb"})
    await h.wait_events("SAY_FINISHED")
    said = h.bodies("SAY_FINISHED")[0]
    assert (said["callId"], said["conferenceId"], said["properties"]["duration"]) == (None, room, 840)


async def test_connect_endpoints(h: H) -> None:
    first = await h.sim.place_inbound_call(from_=CALLER, to=DID)
    second = await h.sim.place_inbound_call(from_="447999", to=DID)
    for call_id in (first, second):
        await ok(h, "POST", f"/calls/1/calls/{call_id}/answer")
    conference = await ok(
        h, "POST", "/calls/1/connect", {"callIds": [first, second], "conferenceRequest": {"name": "pair"}}
    )
    assert conference["name"] == "pair"
    assert sorted(p["callId"] for p in conference["participants"]) == sorted([first, second])
    status, body = await h.client.request("POST", "/calls/1/connect", {"callIds": [first]})
    assert (status, body["requestError"]["serviceException"]["validationErrors"]) == (
        400,
        {"callIds": ["size must be at least 2"]},
    )
    third = await h.sim.place_inbound_call(from_="447888", to=DID)
    await ok(h, "POST", f"/calls/1/calls/{third}/answer")
    both = await ok(h, "POST", f"/calls/1/calls/{third}/connect", new_call(CALLEE))
    assert both["call"]["parentCallId"] == third and both["conference"]["participants"][0]["callId"] == third
    await h.until(lambda: any(b["callId"] == both["call"]["id"] for b in h.bodies("PARTICIPANT_JOINED")))
