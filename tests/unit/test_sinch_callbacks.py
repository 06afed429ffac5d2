"""Sinch callbacks -> neutral events (bodies built by the simulator's own callback module, so the shapes
are the ones it sends), and callback authentication through the adapter's verify path."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from flowengine.errors import WebhookAuthError, WebhookError
from flowengine.flow.vocabulary import EVENTS, REASONS
from flowengine.providers.base import WebhookRequest
from flowengine.providers.sinch import SinchAdapter, SinchSettings, signing
from flowengine.providers.sinch.callbacks import (
    CALLOUT_ICE,
    CalloutTag,
    bridge_id,
    from_conference,
    parse_callback,
    split_bridge,
)
from flowengine.providers.sinch.replies import reply_for
from flowengine.runtime.binding import PLACED_BY
from flowengine.runtime.events import Event
from flowengine.simulator.parties import PartyScript
from flowengine.simulator.sinch import callbacks as wire
from flowengine.simulator.sinch.conference_dtmf import menu_result
from flowengine.simulator.sinch.model import SinchCall
from flowengine.testing import ManualClock

KEY, SECRET = "app-key", "BeIukql3pTKJ8RGL5zo0DA=="
NOW = 1_767_225_600.0
ROOM = "room-1-abc"
VECTOR_BODY = (
    b'{"event":"ace","callid":"822aa4b7-05b4-4d83-87c7-1f835ee0b6f6_257",'
    b'"timestamp":"2014-09-24T10:59:41Z","version":1}'
)
VECTOR_SIGNATURE = "Tg6fMyo8mj9pYfWQ9ssbx3Tc1BNC87IEygAfLbJqZb4="


def call(custom: str | None = None, **fields: Any) -> SinchCall:
    return SinchCall(
        id="call-1",
        remote="+447415784323",
        script=PartyScript(),
        direction="inbound",
        from_={"type": "number", "endpoint": "+447415784323"},
        to={"type": "did", "endpoint": "+4592457976"},
        custom=custom,
        started=NOW,
        **fields,
    )


def parse(body: dict[str, Any]) -> list[Event]:
    events = parse_callback(json.dumps(body).encode())
    assert all(e.name in EVENTS and (e.reason is None or e.reason in REASONS) for e in events)
    return events


def brief(events: list[Event]) -> list[tuple[Any, ...]]:
    return [(e.name, e.call_id, e.conference_id, e.reason) for e in events]


CONFERENCE_LEG = CalloutTag(ROOM).encode()


def test_ice_is_call_received_with_from_and_to() -> None:
    [event] = parse(wire.ice(call(), NOW, KEY, "https://calling.api.sinch.com"))
    assert (event.name, event.call_id, event.at) == ("call.received", "call-1", NOW)
    assert (event.data["from"], event.data["to"]) == ("+447415784323", "+4592457976")
    assert event.raw["event"] == "ice" and event.event_id


def test_the_ice_of_one_of_our_callouts_is_the_callouts_event_not_a_new_call() -> None:
    """Sinch's callout reference: placing a customCallout raises an ICE (to the callback URL, when the
    request inlines no ``ice``). Its ``custom`` carries our tag: it is the callout's own event, which names
    the call to the command that placed it, and is answered with the connection (``replies.reply_for``)."""
    tag = CalloutTag(key="s-1:3:0").encode()
    placed = call(tag)
    placed.to = {"type": "number", "endpoint": "+46700000001"}
    body = wire.ice(placed, NOW, KEY, "https://calling.api.sinch.com")
    [event] = parse_callback(json.dumps(body).encode())
    assert (event.name, event.call_id, event.data[PLACED_BY]) == (CALLOUT_ICE, "call-1", "s-1:3:0")
    assert event.name not in EVENTS  # no flow handles it, no session starts with it
    reply = reply_for(event)
    assert reply is not None and reply.build()["action"] == {
        "name": "connectPstn", "number": "+46700000001", "cli": "+447415784323"}


def test_ace_of_a_conference_leg_is_answered_and_joined() -> None:
    events = parse(wire.ace(call(CONFERENCE_LEG), NOW, KEY))
    assert brief(events) == [
        ("call.answered", "call-1", None, "answered"),
        ("participant.joined", "call-1", ROOM, None),
    ]
    assert len({e.dedupe_key() for e in events}) == 2  # one callback, two distinct events


def test_ace_of_a_plain_callout_and_of_a_bridge() -> None:
    assert brief(parse(wire.ace(call(CalloutTag().encode()), NOW, KEY))) == [
        ("call.answered", "call-1", None, "answered")
    ]
    # No tag of ours: the dialled side of a connectPstn bridge answered.
    assert brief(parse(wire.ace(call(), NOW, KEY))) == [
        ("call.answered", bridge_id("call-1"), None, "answered")
    ]
    assert split_bridge(bridge_id("call-1")) == ("call-1", True) and split_bridge("call-1") == (
        "call-1",
        False,
    )


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("CALLERHANGUP", "hangup"),
        ("CALLEEHANGUP", "hangup"),
        ("MANAGERHANGUP", "api_hangup"),
        ("TIMEOUT", "timeout"),
        ("GENERALERROR", "failed"),
    ],
)
def test_dice_answered_is_call_finished(reason: str, expected: str) -> None:
    body = wire.dice(
        call(CalloutTag().encode(), result="ANSWERED", reason=reason, answered_at=NOW), NOW + 30, KEY
    )
    [event] = parse(body)
    assert (event.name, event.reason, event.data["duration"]) == ("call.finished", expected, 30)


def test_dice_of_a_conference_leg_reports_it_left_too() -> None:
    kicked = call(CONFERENCE_LEG, result="ANSWERED", reason="MANAGERHANGUP")
    assert brief(parse(wire.dice(kicked, NOW, KEY))) == [
        ("participant.left", "call-1", ROOM, "kicked"),
        ("call.finished", "call-1", None, "api_hangup"),
    ]
    gone = call(CONFERENCE_LEG, result="ANSWERED", reason="CALLEEHANGUP")
    assert [e.reason for e in parse(wire.dice(gone, NOW, KEY))] == ["hangup", "hangup"]


@pytest.mark.parametrize(
    ("result", "reason", "expected"),
    [
        ("NOANSWER", "TIMEOUT", "no_answer"),
        ("BUSY", "N/A", "busy"),
        ("FAILED", "N/A", "failed"),
        ("N/A", "MANAGERHANGUP", "cancelled"),
        ("N/A", "USERNOTFOUND", "unreachable"),
        ("N/A", "BLOCKED", "rejected"),
    ],
)
def test_dice_of_a_conference_leg_that_never_came_up(result: str, reason: str, expected: str) -> None:
    events = parse(wire.dice(call(CONFERENCE_LEG, result=result, reason=reason), NOW, KEY))
    assert brief(events) == [
        ("participant.join_failed", "call-1", ROOM, expected),
        ("call.failed", "call-1", None, expected),
    ]


def test_dice_of_an_inbound_call_and_of_its_bridge() -> None:
    assert brief(parse(wire.dice(call(result="NOANSWER", reason="CALLERHANGUP"), NOW, KEY))) == [
        ("call.failed", "call-1", None, "no_answer")
    ]
    assert brief(parse(wire.dice(call(result="BUSY", reason="N/A"), NOW, KEY))) == [
        ("call.failed", "call-1", None, "busy"),
        ("call.failed", bridge_id("call-1"), None, "busy"),
    ]
    assert brief(parse(wire.dice(call(result="ANSWERED", reason="CALLEEHANGUP"), NOW, KEY))) == [
        ("call.finished", "call-1", None, "hangup"),
        ("call.finished", bridge_id("call-1"), None, "hangup"),
    ]


@pytest.mark.parametrize(
    ("menu", "digits", "reason"),
    [
        ({"menuId": "main", "type": "sequence", "value": "1234", "inputMethod": "dtmf"}, "1234", None),
        ({"menuId": "main", "type": "return", "value": "sales", "inputMethod": "dtmf"}, "sales", None),
        ({"menuId": "main", "type": "timeout", "value": "", "inputMethod": "dtmf"}, "", "timeout"),
        ({"menuId": "main", "type": "invalidinput", "value": "9", "inputMethod": "dtmf"}, "9", "error"),
        ({"menuId": "main", "type": "hangup", "value": "", "inputMethod": "dtmf"}, "", "hangup"),
    ],
)
def test_pie_is_dtmf_captured(menu: dict[str, str], digits: str, reason: str | None) -> None:
    [event] = parse(wire.pie(call(), NOW, KEY, menu))
    assert (event.name, event.call_id, event.digits, event.reason) == (
        "dtmf.captured",
        "call-1",
        digits,
        reason,
    )


def test_pie_of_keys_detected_in_a_conference_names_the_conference() -> None:
    """Sinch reports a participant's keys with the conference id as menuId; menus' PIEs name none."""
    [keys] = parse(wire.pie(call(), NOW, KEY, menu_result(ROOM, "5")))
    assert brief([keys]) == [("dtmf.captured", "call-1", ROOM, None)]
    assert (keys.digits, keys.data["menu"], keys.data["type"]) == ("5", ROOM, "sequence")
    assert from_conference(keys)
    menu = {"menuId": "main", "type": "sequence", "value": "5", "inputMethod": "dtmf"}
    [answered] = parse(wire.pie(call(CONFERENCE_LEG), NOW, KEY, menu))
    assert answered.conference_id is None and not from_conference(answered)


def test_a_recording_is_ready_when_its_file_is_available_at_the_notify_destination() -> None:
    """Sinch's recording page (Notification events): recording_finished says the recording stopped and
    carries no file; recording_available says the file is available, ``destination`` naming where it
    went. That one is recording.ready, its URL the destination."""
    assert parse(wire.notify(call(), "recording_finished")) == []
    stored = "https://calling.api.sinch.com/calling/v1/recording/20180101000000_key_call-1.mp3"
    [event] = parse(wire.notify(call(), "recording_available", stored))
    assert (event.name, event.call_id) == ("recording.ready", "call-1")
    assert event.data["type"] == "recording_available"
    assert event.data["urls"] == [stored] and event.data["destination"] == stored
    assert parse(wire.notify(call(), "callingerror")) == []


def test_unknown_events_are_acknowledged_and_malformed_bodies_refused() -> None:
    assert parse({"event": "something-new", "callid": "x"}) == []
    for body in (b"{nope", b"[1]", b'{"callid": "x"}', b'{"event": "ace"}'):
        with pytest.raises(WebhookError) as caught:
            parse_callback(body)
        assert caught.value.status == 400


def test_redelivery_is_a_duplicate() -> None:
    body = json.dumps(wire.ace(call(CONFERENCE_LEG), NOW, KEY)).encode()
    assert [e.dedupe_key() for e in parse_callback(body)] == [e.dedupe_key() for e in parse_callback(body)]


def test_tags_that_are_not_ours_are_ignored() -> None:
    assert CalloutTag.decode(None) is None and CalloutTag.decode("order=42") is None
    assert CalloutTag.decode('{"flowengine": 1}') is None and CalloutTag.decode("flowengine{") is None
    assert CalloutTag.decode(CalloutTag(ROOM).encode()) == CalloutTag(ROOM)


# -- verification ----------------------------------------------------------------------------------
VECTOR_TIME = datetime(2014, 9, 24, 10, 59, 41, tzinfo=UTC).timestamp()  # the vector's x-timestamp


def adapter(now: float = VECTOR_TIME, **overrides: Any) -> SinchAdapter:
    """An adapter whose clock reads ``now`` (by default the moment the reference vector was signed)."""
    settings = SinchSettings(application_key=KEY, application_secret=SECRET, **overrides)
    return SinchAdapter(settings, clock=ManualClock(now))


def request(
    body: bytes,
    authorization: str,
    path: str = "/sinch/callback/ace",
    timestamp: str = "2014-09-24T10:59:41Z",
) -> WebhookRequest:
    headers = {"Content-Type": "application/json", "X-Timestamp": timestamp, "Authorization": authorization}
    return WebhookRequest("POST", path, headers, body)


@pytest.mark.parametrize("scheme", ["Application", "application"])
def test_reference_vector_verifies(scheme: str) -> None:
    [event] = adapter().parse_webhook(request(VECTOR_BODY, f"{scheme} {KEY}:{VECTOR_SIGNATURE}"))
    assert (event.name, event.call_id) == (
        "call.answered",
        bridge_id("822aa4b7-05b4-4d83-87c7-1f835ee0b6f6_257"),
    )


@pytest.mark.parametrize(
    "tampered",
    [
        request(VECTOR_BODY + b" ", f"Application {KEY}:{VECTOR_SIGNATURE}"),  # body
        request(VECTOR_BODY, f"Application other-key:{VECTOR_SIGNATURE}"),  # key
        request(VECTOR_BODY, f"Application {KEY}:{VECTOR_SIGNATURE}", path="/sinch/callback"),  # path
        request(VECTOR_BODY, f"Application {KEY}:{VECTOR_SIGNATURE}", timestamp="2014-09-24T11:00:00Z"),
        request(VECTOR_BODY, f"Application {KEY}:"),
        request(VECTOR_BODY, ""),
        request(VECTOR_BODY, signing.basic_header(KEY, SECRET)),  # Basic when signatures are required
    ],
)
def test_tampered_or_missing_signatures_are_refused(tampered: WebhookRequest) -> None:
    with pytest.raises(WebhookAuthError) as caught:
        adapter().parse_webhook(tampered)
    assert caught.value.status == 401


def test_basic_mode() -> None:
    basic = adapter(callback_auth="basic")
    assert basic.parse_webhook(request(VECTOR_BODY, signing.basic_header(KEY, SECRET)))
    for wrong in (
        signing.basic_header(KEY, "wrong"),
        signing.basic_header("other", SECRET),
        f"Application {KEY}:{VECTOR_SIGNATURE}",
    ):
        with pytest.raises(WebhookAuthError):
            basic.parse_webhook(request(VECTOR_BODY, wrong))


@pytest.mark.parametrize("late", [-300.0, -1.0, 0.0, 299.0, 300.0])
def test_a_signed_callback_within_the_default_five_minutes_passes(late: float) -> None:
    signed = request(VECTOR_BODY, f"Application {KEY}:{VECTOR_SIGNATURE}")
    assert adapter(VECTOR_TIME + late).parse_webhook(signed)


@pytest.mark.parametrize("late", [-301.0, 301.0, 3600.0, 2 * 365 * 86400.0])
def test_a_stale_or_early_signed_callback_is_refused(late: float) -> None:
    """A well-signed callback replayed later than the window (or stamped ahead of it) is refused."""
    signed = request(VECTOR_BODY, f"Application {KEY}:{VECTOR_SIGNATURE}")
    with pytest.raises(WebhookAuthError) as caught:
        adapter(VECTOR_TIME + late).parse_webhook(signed)
    assert caught.value.status == 401


def test_the_window_is_a_setting() -> None:
    wide = adapter(VECTOR_TIME + 3600, callback_max_skew=7200)
    assert wide.parse_webhook(request(VECTOR_BODY, f"Application {KEY}:{VECTOR_SIGNATURE}"))
    assert wide.replay_window == 7200 and adapter(callback_auth="basic").replay_window is None


def test_authentication_comes_before_parsing() -> None:
    with pytest.raises(WebhookAuthError):
        adapter().parse_webhook(request(b"{nope", ""))


@pytest.mark.parametrize(("machine", "status", "reason"),
                         [(True, "machine", "machine"), (False, "human", "human")])
def test_ace_of_a_callout_with_machine_detection_says_who_answered(machine: bool, status: str,
                                                                   reason: str) -> None:
    leg = call(CalloutTag(key="s:1:0", amd=True).encode(), amd=True)
    leg.script = PartyScript(machine=machine)
    (answered,) = parse(wire.ace(leg, NOW, KEY))
    assert (answered.name, answered.reason) == ("call.answered", reason)
    assert answered.data["machine_detection"] == status and answered.data["placed_by"] == "s:1:0"


def test_an_unsure_detection_is_a_plain_answer_and_amd_without_our_flag_changes_nothing() -> None:
    body = wire.ace(call(CalloutTag(amd=True).encode()), NOW, KEY)
    body["amd"] = {"status": "notsure", "reason": "initialsilence", "duration": 4}
    (unsure,) = parse(body)
    assert unsure.reason == "answered" and unsure.data["machine_detection"] == "notsure"
    body = wire.ace(call(CalloutTag().encode()), NOW, KEY)
    body["amd"] = {"status": "machine", "reason": "beep", "duration": 4}
    (plain,) = parse(body)
    assert plain.reason == "answered"  # the dial did not ask: the flow hears a plain answer


def test_the_simulators_ace_carries_amd_only_when_it_was_asked_for() -> None:
    assert "amd" not in wire.ace(call(CalloutTag().encode()), NOW, KEY)
    assert wire.ace(call(CalloutTag(amd=True).encode(), amd=True), NOW, KEY)["amd"]["status"] == "human"
