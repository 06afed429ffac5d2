"""The Sinch simulator over real HTTP on loopback: auth both ways, callouts, ICE/ACE/PIE replies obeyed,
DiCE results, conference management, call updates and the error body."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from flowengine.providers.sinch import signing
from flowengine.runtime.clock import VirtualClock
from flowengine.simulator import PartyBook, PartyScript, SinchSimulator
from flowengine.simulator.testing import Harness, Received, harness

KEY, SECRET = "app-key", "BeIukql3pTKJ8RGL5zo0DA=="
CALLER, DID = "+447415784323", "+4592457976"
CALLEE, NEVER, BUSY, PRESSES = "+46700000001", "+46700000002", "+46700000003", "+46700000004"
BOOK = PartyBook(
    {
        CALLEE: PartyScript(answer_after=2, hangup_after=10),
        NEVER: PartyScript(answer_after=None),
        BUSY: PartyScript(busy=True),
        CALLER: PartyScript(hangup_after=30, press=((1.0, "1"),)),
    }
)
H = Harness[SinchSimulator]
Reply = dict[str, Any] | tuple[int, Any] | Callable[[dict[str, Any]], Any] | None


class Replies:
    """The app side: SVAML (or (status, body)) to answer each callback event with."""

    def __init__(self) -> None:
        self.by_event: dict[str, Reply] = {}

    async def __call__(self, got: Received) -> tuple[int, Any]:
        reply = self.by_event.get(got.body["event"])
        if callable(reply):
            reply = reply(got.body)
        return reply if isinstance(reply, tuple) else (200, reply)


def svaml(action: dict[str, Any], *instructions: dict[str, Any]) -> dict[str, Any]:
    return {"instructions": list(instructions), "action": action}


CONF = svaml(
    {"name": "connectConf", "conferenceId": "room", "moh": "music1"},
    {"name": "say", "text": "Hold on", "locale": "en-US"},
)


def make(clock: VirtualClock, url: str) -> SinchSimulator:
    return SinchSimulator(
        clock, callback_url=url, application_key=KEY, application_secret=SECRET, parties=BOOK
    )


@pytest.fixture
async def replies() -> Replies:
    return Replies()


@pytest.fixture
async def h(replies: Replies) -> AsyncIterator[H]:
    async with harness(
        make,
        responder=replies,
        headers={"Authorization": signing.basic_header(KEY, SECRET)},
        webhook_path="/sinch/callback",
    ) as running:
        yield running


def conference_callout(number: str, **extra: Any) -> dict[str, Any]:
    spec = {
        "destination": {"type": "number", "endpoint": number},
        "conferenceId": "room",
        "cli": DID,
        **extra,
    }
    return {"method": "conferenceCallout", "conferenceCallout": spec}


async def callout(h: H, body: dict[str, Any]) -> str:
    status, got = await h.client.request("POST", "/calling/v1/callouts", body)
    assert status == 200 and set(got) == {"callId"}, got
    return str(got["callId"])


def sinch_error(status: int, code: int, message: str, got: tuple[int, Any]) -> None:
    """``got`` is (HTTP status, body) and must be Sinch's error answer."""
    assert got[0] == status
    body = got[1]
    assert body["reference"] and {k: body[k] for k in ("status", "errorCode", "message")} == {
        "status": status,
        "errorCode": code,
        "message": message,
    }


async def test_request_authentication(h: H) -> None:
    body = await h.client.request("GET", "/calling/v1/calls/id/x", headers={"Authorization": ""})
    sinch_error(403, 40301, "Invalid authorization scheme.", body)
    body = await h.client.request(
        "GET", "/calling/v1/calls/id/x", headers={"Authorization": signing.basic_header(KEY, "bad")}
    )
    sinch_error(401, 40108, "Invalid credentials or signature.", body)
    raw = b'{"method":"ttsCallout","ttsCallout":{"destination":{"type":"number","endpoint":"+4670"}}}'
    signed = signing.signed_headers(
        KEY,
        SECRET,
        method="POST",
        path="/calling/v1/callouts",
        body=raw,
        content_type="application/json; charset=UTF-8",
        timestamp="2026-01-01T00:00:00Z",
    )
    assert (await h.client.request("POST", "/calling/v1/callouts", raw=raw, headers=signed))[0] == 200
    assert (await h.client.request("POST", "/calling/v1/callouts", raw=raw + b" ", headers=signed))[0] == 401


async def test_callbacks_are_signed(h: H, replies: Replies) -> None:
    replies.by_event["ice"] = CONF
    await h.sim.place_inbound_call(CALLER, DID)
    await h.wait_events("ice")
    got = h.hook.received[0]
    assert got.headers["Authorization"].startswith(f"Application {KEY}:")
    assert signing.verify(
        got.headers,
        application_key=KEY,
        application_secret=SECRET,
        method="POST",
        path="/sinch/callback",
        body=got.raw,
        allow_basic=False,
    )


async def test_ice_connect_conf_then_caller_hangs_up(h: H, replies: Replies) -> None:
    replies.by_event["ice"] = CONF
    call_id = await h.sim.place_inbound_call(CALLER, DID)
    await h.until(lambda: "room" in h.sim.conferences)
    ice = h.bodies("ice")[0]
    assert (ice["callid"], ice["cli"], ice["to"], ice["applicationKey"]) == (
        call_id,
        CALLER,
        {"type": "did", "endpoint": DID},
        KEY,
    )
    assert ice["callResourceUrl"] == f"{h.base_url}/calling/v1/calls/id/{call_id}"
    assert h.elapsed() == pytest.approx(0.05 + 7 * 0.07)  # the say takes its time before connectConf
    status, info = await h.client.request("GET", "/calling/v1/conferences/id/room")
    assert (status, info) == (
        200,
        {"participants": [{"cli": CALLER, "id": call_id, "duration": 0, "muted": False, "onhold": False}]},
    )
    await h.wait_events("dice")
    dice = h.bodies("dice")[0]
    assert (dice["result"], dice["reason"], dice["duration"], dice["from"]) == (
        "ANSWERED",
        "CALLERHANGUP",
        30,
        CALLER,
    )
    assert h.names() == ["ice", "dice"]
    assert (await h.client.request("GET", "/calling/v1/conferences/id/room"))[0] == 404
    status, call = await h.client.request("GET", f"/calling/v1/calls/id/{call_id}")
    assert (call["status"], call["result"], call["reason"], call["duration"]) == (
        "FINAL",
        "ANSWERED",
        "CALLERHANGUP",
        30,
    )


@pytest.mark.parametrize(
    "reply",
    [
        None,
        (500, {"oops": 1}),
        svaml({"name": "continue"}),
        {"instructions": [], "action": {"name": "connectConf"}},
        "not svaml",
    ],
)
async def test_ice_without_usable_svaml_drops_the_call(h: H, replies: Replies, reply: Reply) -> None:
    replies.by_event["ice"] = reply
    call_id = await h.sim.place_inbound_call(CALLER, DID)
    await h.wait_events("dice")
    dice = h.bodies("dice")[0]
    assert (dice["callid"], dice["result"], dice["reason"]) == (call_id, "FAILED", "CALLBACKERROR")
    assert h.sim.calls[call_id].status == "FINAL"


async def test_conference_callout_ace_then_joins_and_dice(h: H, replies: Replies) -> None:
    call_id = await callout(h, conference_callout(CALLEE, enableAce=True, enableDice=True, mohClass="music2"))
    await h.until(lambda: "room" in h.sim.conferences)
    assert h.names() == ["ace"] and h.elapsed() == pytest.approx(2.05)
    status, info = await h.client.request("GET", "/calling/v1/conferences/id/room")
    assert status == 200 and info["participants"][0]["cli"] == CALLEE and h.sim.calls[call_id].moh == "music2"
    await h.wait_events("dice")
    dice = h.bodies("dice")[0]
    assert (dice["result"], dice["reason"], dice["to"]) == (
        "ANSWERED",
        "CALLEEHANGUP",
        {"type": "number", "endpoint": CALLEE},
    )


@pytest.mark.parametrize(
    ("number", "result", "reason", "at"), [(NEVER, "NOANSWER", "TIMEOUT", 60.05), (BUSY, "BUSY", "N/A", 0.25)]
)
async def test_conference_callout_not_answered(
    h: H, number: str, result: str, reason: str, at: float
) -> None:
    await callout(h, conference_callout(number, enableAce=True, enableDice=True))
    await h.wait_events("dice")
    assert h.names() == ["dice"] and h.elapsed() == pytest.approx(at)
    assert (h.bodies("dice")[0]["result"], h.bodies("dice")[0]["reason"]) == (result, reason)


async def test_no_callbacks_unless_enabled(h: H) -> None:
    call_id = await callout(h, conference_callout(NEVER))
    await h.until(lambda: h.sim.calls[call_id].status == "FINAL")
    assert h.sim.events == [] and h.sim.calls[call_id].result == "NOANSWER"


async def test_ace_reply_is_obeyed(h: H, replies: Replies) -> None:
    replies.by_event["ace"] = svaml({"name": "hangup"}, {"name": "say", "text": "Bye", "locale": "en-US"})
    call_id = await callout(h, conference_callout(CALLEE, enableAce=True, enableDice=True))
    await h.wait_events("dice")
    assert "room" not in h.sim.conferences
    assert (h.sim.calls[call_id].reason, h.bodies("dice")[0]["duration"]) == ("MANAGERHANGUP", 0)


async def test_tts_callout_speaks_then_hangs_up(h: H) -> None:
    text = "Your code is 1234"
    await callout(
        h,
        {
            "method": "ttsCallout",
            "ttsCallout": {
                "destination": {"type": "number", "endpoint": NEVER.replace("2", "9")},
                "text": text,
                "enableDice": True,
                "locale": "en-US",
            },
        },
    )
    await h.wait_events("dice")
    assert h.elapsed() == pytest.approx(2.0 + len(text) * 0.07 + 0.05)
    assert (h.bodies("dice")[0]["result"], h.bodies("dice")[0]["reason"]) == ("ANSWERED", "MANAGERHANGUP")


async def test_run_menu_collects_the_party_digits_and_pie_reply_is_obeyed(h: H, replies: Replies) -> None:
    menu = {
        "name": "runMenu",
        "mainMenu": "main",
        "menus": [
            {
                "id": "main",
                "mainPrompt": "#tts[Press 1 for sales, 2 for more]",
                "options": [{"dtmf": "1", "action": "return(sales)"}, {"dtmf": "2", "action": "menu(more)"}],
            },
            {"id": "more", "mainPrompt": "#tts[Enter your number]", "maxDigits": 4},
        ],
    }
    replies.by_event["ice"] = svaml(menu)
    replies.by_event["pie"] = svaml({"name": "hangup"}, {"name": "say", "text": "Thanks", "locale": "en-US"})
    await h.sim.place_inbound_call(CALLER, DID)
    await h.wait_events("dice")
    assert h.names() == ["ice", "pie", "dice"]
    assert h.bodies("pie")[0]["menuResult"] == {
        "menuId": "main",
        "type": "return",
        "value": "sales",
        "inputMethod": "dtmf",
    }
    assert h.bodies("dice")[0]["reason"] == "MANAGERHANGUP"


async def test_run_menu_timeout(h: H, replies: Replies) -> None:
    menu = {
        "name": "runMenu",
        "menus": [{"id": "main", "mainPrompt": "beep", "maxDigits": 2, "timeoutMills": 3000, "repeats": 1}],
    }
    replies.by_event["ice"] = svaml(menu)
    replies.by_event["pie"] = svaml({"name": "continue"})
    await h.sim.place_inbound_call(CALLER, DID, PartyScript())
    await h.wait_events("pie")
    assert h.bodies("pie")[0]["menuResult"] == {
        "menuId": "main",
        "type": "timeout",
        "value": "",
        "inputMethod": "dtmf",
    }
    assert h.elapsed() == pytest.approx(0.05 + 2 * (5.0 + 3.0) + 0.05)


async def test_connect_pstn_bridges_a_scripted_party(h: H, replies: Replies) -> None:
    replies.by_event["ice"] = svaml({"name": "connectPstn", "number": CALLEE, "cli": DID})
    call_id = await h.sim.place_inbound_call(CALLER, DID)
    await h.wait_events("dice")
    assert h.names() == ["ice", "ace", "dice"]
    assert (h.sim.calls[call_id].result, h.sim.calls[call_id].reason) == ("ANSWERED", "CALLEEHANGUP")
    replies.by_event["ice"] = svaml({"name": "connectPstn", "number": BUSY})
    await h.sim.place_inbound_call(CALLER, DID)
    await h.until(lambda: len(h.bodies("dice")) == 2)
    assert h.bodies("dice")[1]["result"] == "BUSY"


async def test_a_pie_reply_may_bridge_with_connect_pstn(h: H, replies: Replies) -> None:
    """Sinch's SVAML reference, actions table: connectPstn is allowed in the reply to an ICE and to a PIE.
    A menu's result can therefore be answered by bridging the caller to who they chose."""
    menu = {"name": "runMenu", "menus": [{"id": "main", "mainPrompt": "#tts[Press 1]", "maxDigits": 1}]}
    replies.by_event["ice"] = svaml(menu)
    replies.by_event["pie"] = svaml({"name": "connectPstn", "number": CALLEE, "cli": DID})
    call_id = await h.sim.place_inbound_call(CALLER, DID)
    await h.wait_events("dice")
    assert h.names() == ["ice", "pie", "ace", "dice"]
    assert h.bodies("pie")[0]["menuResult"]["value"] == "1"
    call = h.sim.calls[call_id]
    assert (call.result, call.reason, call.bridge is not None) == ("ANSWERED", "CALLEEHANGUP", True)


async def test_recording_notifications_name_where_the_file_went(h: H, replies: Replies) -> None:
    """Sinch's recording page (Notification events): recording_finished when the recording stops, then
    recording_available whose ``destination`` is where the file is: the destinationUrl with a generated
    ``yyyyMMddHHmmss_applicationKey_callId.format`` name when it names no file; never a party's number."""
    start = {"name": "startRecording", "options": {"destinationUrl": "s3://bucket/calls/", "format": "wav"}}
    replies.by_event["ice"] = svaml({"name": "park"}, {"name": "answer"}, start)
    call_id = await h.sim.place_inbound_call(CALLER, DID)
    await h.wait_events("ice")
    stop = svaml({"name": "hangup"}, {"name": "stopRecording"})
    assert (await h.client.request("PATCH", f"/calling/v1/calls/id/{call_id}", stop))[0] == 200
    await h.until(lambda: len(h.bodies("notify")) == 2)
    finished, available = h.bodies("notify")
    assert (finished["type"], "destination" in finished) == ("recording_finished", False)
    assert available["type"] == "recording_available"
    assert re.fullmatch(rf"s3://bucket/calls/\d{{14}}_{KEY}_{call_id}\.wav", available["destination"])
    assert CALLER not in json.dumps(h.bodies("notify"))


async def test_patch_call_replaces_park(h: H, replies: Replies) -> None:
    replies.by_event["ice"] = svaml({"name": "park", "introPrompt": "#tts[Please hold]", "maxDuration": 600})
    call_id = await h.sim.place_inbound_call(CALLER, DID, PartyScript())
    await h.until(lambda: h.sim.calls[call_id].answered)
    path = f"/calling/v1/calls/id/{call_id}"
    body = await h.client.request("PATCH", path, svaml({"name": "connectConf", "conferenceId": "x"}))
    sinch_error(400, 40003, "Invalid SVAML: action 'connectConf' is not allowed in a update response", body)
    assert await h.client.request(
        "PATCH", path, svaml({"name": "hangup"}, {"name": "say", "text": "Bye", "locale": "en"})
    ) == (200, None)
    await h.wait_events("dice")
    assert h.bodies("dice")[0]["reason"] == "MANAGERHANGUP" and h.elapsed() < 1.0
    body = await h.client.request("PATCH", path, svaml({"name": "hangup"}))
    sinch_error(404, 40400, f"Call {call_id} has ended.", body)


async def test_manage_leg(h: H, replies: Replies) -> None:
    replies.by_event["ice"] = CONF
    call_id = await h.sim.place_inbound_call(CALLER, DID)
    await h.until(lambda: "room" in h.sim.conferences)
    body = {"instructions": [{"name": "say", "text": "Hi", "locale": "en"}], "action": {"name": "continue"}}
    assert await h.client.request("PATCH", f"/calling/v1/calls/id/{call_id}/leg/caller", body) == (200, None)
    # Sinch's SVAML reference: a SVAML object carries exactly one action, a leg's update too.
    no_action = {"instructions": body["instructions"]}
    error = await h.client.request("PATCH", f"/calling/v1/calls/id/{call_id}/leg/caller", no_action)
    sinch_error(400, 40003, "Invalid SVAML: SVAML needs exactly one action with a name", error)
    error = await h.client.request("PATCH", f"/calling/v1/calls/id/{call_id}/leg/nobody", body)
    sinch_error(400, 40001, "Illegal parameter callLeg: must be caller, callee or both", error)


async def test_manage_and_kick_participants(h: H, replies: Replies) -> None:
    replies.by_event["ice"] = CONF
    first = await h.sim.place_inbound_call(CALLER, DID)
    second = await callout(h, conference_callout(CALLEE.replace("1", "5"), enableDice=True))
    await h.until(lambda: "room" in h.sim.conferences and len(h.sim.conferences["room"].members) == 2)
    base = "/calling/v1/conferences/id/room"
    assert await h.client.request("PATCH", f"{base}/{first}", {"command": "mute"}) == (200, None)
    assert await h.client.request("PATCH", f"{base}/{second}", {"command": "onhold", "moh": "music3"}) == (
        200,
        None,
    )
    participants = (await h.client.request("GET", base))[1]["participants"]
    assert [(p["id"], p["muted"], p["onhold"]) for p in participants] == [
        (first, True, False),
        (second, False, True),
    ]
    for bad, code, message in [
        ({}, 40002, "Missing parameter: command"),
        ({"command": "shout"}, 40001, "Illegal parameter command: must be mute, unmute, onhold or resume"),
        (
            {"command": "mute", "moh": "music1"},
            40001,
            "Illegal parameter moh: ring, music1, music2 or music3, with onhold only",
        ),
    ]:
        error = await h.client.request("PATCH", f"{base}/{first}", bad)
        sinch_error(400, code, message, error)
    assert (await h.client.request("PATCH", f"{base}/nope", {"command": "mute"}))[0] == 404
    assert await h.client.request("DELETE", f"{base}/{second}") == (200, None)
    await h.wait_events("dice")
    assert h.bodies("dice")[0]["reason"] == "MANAGERHANGUP"
    assert await h.client.request("DELETE", base) == (204, None)
    await h.until(lambda: len(h.bodies("dice")) == 2)
    assert (await h.client.request("GET", base))[0] == 404


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({}, 40002, "Missing parameter: method"),
        (
            {"method": "smsCallout"},
            40001,
            "Illegal parameter method: must be one of ttsCallout, conferenceCallout, customCallout",
        ),
        ({"method": "ttsCallout"}, 40002, "Missing parameter: ttsCallout"),
        ({"method": "ttsCallout", "ttsCallout": {}}, 40002, "Missing parameter: ttsCallout.destination"),
        (
            {"method": "ttsCallout", "ttsCallout": {"destination": {"type": "fax", "endpoint": "1"}}},
            40001,
            "Illegal parameter ttsCallout.destination.type: must be number, username or sip",
        ),
        (
            conference_callout(CALLEE, conferenceId=None),
            40002,
            "Missing parameter: conferenceCallout.conferenceId",
        ),
        (
            conference_callout(CALLEE, conferenceId="x" * 65),
            40001,
            "Illegal parameter conferenceCallout.conferenceId: 1 to 64 characters",
        ),
        ([], 40003, "Request body must be a JSON object."),
    ],
)
async def test_callout_validation(h: H, body: Any, code: int, message: str) -> None:
    error = await h.client.request("POST", "/calling/v1/callouts", body)
    sinch_error(400, code, message, error)
    assert h.sim.calls == {}


async def test_malformed_json_and_unknown_call(h: H) -> None:
    error = await h.client.request("POST", "/calling/v1/callouts", raw=b"{nope")
    sinch_error(400, 40003, "Request body is not valid JSON.", error)
    error = await h.client.request("GET", "/calling/v1/calls/id/nope")
    sinch_error(404, 40400, "Call nope not found.", error)


async def test_custom_callout_obeys_inline_ice_and_ace(h: H) -> None:
    """Sinch's callout reference: a customCallout's SVAML for each event may be given inline; the ICE's
    connects the call (connectPstn), the ACE's serves it once answered. No callback is sent for them."""
    ice = json.dumps({"action": {"name": "connectPstn", "number": CALLEE, "cli": DID}})
    ace = '{"instructions":[{"name":"say","text":"Hello","locale":"en-US"}],"action":{"name":"hangup"}}'
    call_id = await callout(h, {"method": "customCallout", "customCallout": {"ice": ice, "ace": ace}})
    await h.wait_events("dice")
    assert h.names() == ["dice"] and h.sim.calls[call_id].reason == "MANAGERHANGUP"
    assert h.elapsed() == pytest.approx(2.0 + 5 * 0.07 + 0.05)


CUSTOM = {"cli": DID, "destination": {"type": "number", "endpoint": CALLEE}, "custom": "tag-1"}


async def test_a_custom_callout_without_inline_ice_sends_its_ice_to_the_callback(
    h: H, replies: Replies
) -> None:
    """Sinch's callout reference (Custom callout): "It all starts with the server placing the call which
    generates an Incoming Call Event"; without inline ``ice`` it goes to the callback URL, and its SVAML
    must connect the call with connectPstn. The ICE is about the callout: its id, ``custom``, ``to``."""
    replies.by_event["ice"] = svaml({"name": "connectPstn", "number": CALLEE, "cli": DID})
    call_id = await callout(h, {"method": "customCallout", "customCallout": CUSTOM})
    await h.wait_events("dice")
    assert h.names() == ["ice", "ace", "dice"]
    [ice] = h.bodies("ice")
    assert (ice["callid"], ice["custom"], ice["to"], ice["cli"]) == (
        call_id, "tag-1", {"type": "number", "endpoint": CALLEE}, DID)
    assert h.sim.calls[call_id].result == "ANSWERED"


@pytest.mark.parametrize("reply", [svaml({"name": "park"}), None, svaml({"name": "hangup"})])
async def test_a_custom_callout_whose_ice_is_not_connected_is_dropped(
    h: H, replies: Replies, reply: Reply
) -> None:
    """Only connectPstn is allowed in the reply to a callout's ICE (Sinch's callout reference)."""
    replies.by_event["ice"] = reply
    call_id = await callout(h, {"method": "customCallout", "customCallout": CUSTOM})
    await h.wait_events("dice")
    assert h.names() == ["ice", "dice"]
    assert (h.bodies("dice")[0]["result"], h.bodies("dice")[0]["reason"]) == ("FAILED", "CALLBACKERROR")
    assert not h.sim.calls[call_id].answered
