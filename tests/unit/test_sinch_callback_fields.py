"""Sinch callbacks -> neutral events: what a flow reads of them (``event.data``, reasons for every result and
reason, digits of every menu result), the placing command's key that names a callout bound under a
stand-in, event ids that keep one callback's events apart and a redelivery a duplicate, timestamps in any
zone, and the errors bad bodies get. Shapes follow the Calling API reference (callback events table)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from flowengine.errors import WebhookAuthError, WebhookError
from flowengine.providers.base import WebhookRequest
from flowengine.providers.sinch import SinchAdapter, SinchSettings, signing
from flowengine.providers.sinch.callbacks import CalloutTag, bridge_id, parse_callback
from flowengine.runtime.binding import PLACED_BY
from flowengine.runtime.events import Event
from flowengine.testing import ManualClock

ROOM, KEY = "room-1", "s-1:4:0"  # the conference a callout dials into; the key of the command placing it
STAMP = "2026-01-01T12:00:00Z"
AT = datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp()


def callback(event: str, custom: str | None = None, **fields: Any) -> dict[str, Any]:
    body = {"event": event, "callid": "call-1", "timestamp": STAMP, "version": 1, "applicationKey": "k",
            **fields}
    if custom is not None:
        body["custom"] = custom
    return body


def parse(body: dict[str, Any]) -> list[Event]:
    return parse_callback(json.dumps(body).encode())


def names(events: list[Event]) -> list[tuple[str, str | None, str | None]]:
    return [(e.name, e.call_id, e.reason) for e in events]


# -- reasons ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("result", "reason", "expected"), [
    ("ANSWERED", "N/A", "hangup"),  # an answered call that ended for no reason Sinch names
    ("ANSWERED", "CANCEL", "hangup"),
    ("N/A", "GENERALERROR", "failed"),  # a call that never came up, for a reason with no neutral name
    ("N/A", "N/A", "failed"),
])
def test_a_dice_whose_reason_has_no_neutral_name_gets_the_default(
    result: str, reason: str, expected: str
) -> None:
    [event] = parse(callback("dice", CalloutTag().encode(), result=result, reason=reason))
    assert event.reason == expected


def test_a_dice_missing_result_and_reason_reads_them_as_not_applicable() -> None:
    [event] = parse(callback("dice", CalloutTag().encode(), duration=0))
    assert names([event]) == [("call.failed", "call-1", "failed")]
    assert event.data == {"result": "N/A", "detail": "N/A", "duration": 0}


# -- event data ----------------------------------------------------------------------------------------------
def test_an_ice_gives_the_caller_the_number_called_and_the_domain() -> None:
    body = callback("ice", cli="+447415784323", to={"type": "did", "endpoint": "+4592457976"}, domain="pstn")
    [event] = parse(body)
    assert event.data == {"from": "+447415784323", "to": "+4592457976", "domain": "pstn"}


@pytest.mark.parametrize(("custom", "call_id"), [(CalloutTag().encode(), "call-1"),
                                                 (None, bridge_id("call-1"))])
def test_an_ace_gives_what_answering_machine_detection_found(custom: str | None, call_id: str) -> None:
    amd = {"status": "machine", "reason": "longgreeting", "duration": 3}
    [event] = parse(callback("ace", custom, amd=amd))
    assert (event.name, event.call_id, event.data) == ("call.answered", call_id, {"amd": "machine"})


@pytest.mark.parametrize(("custom", "result", "reason", "expected"), [
    (CalloutTag(ROOM).encode(), "ANSWERED", "CALLEEHANGUP",
     [("participant.left", "call-1", "hangup"), ("call.finished", "call-1", "hangup")]),
    (CalloutTag(ROOM).encode(), "BUSY", "N/A",
     [("participant.join_failed", "call-1", "busy"), ("call.failed", "call-1", "busy")]),
    (None, "ANSWERED", "CALLEEHANGUP",
     [("call.finished", "call-1", "hangup"), ("call.finished", bridge_id("call-1"), "hangup")]),
    (None, "NOANSWER", "TIMEOUT",
     [("call.failed", "call-1", "no_answer"), ("call.failed", bridge_id("call-1"), "no_answer")]),
])
def test_every_event_of_a_dice_carries_its_result_reason_and_duration(
    custom: str | None, result: str, reason: str, expected: list[tuple[str, str, str]]
) -> None:
    events = parse(callback("dice", custom, result=result, reason=reason, duration=12))
    assert names(events) == expected
    assert [e.data for e in events] == [{"result": result, "detail": reason, "duration": 12}] * len(expected)
    # one callback, two events about the same kind of thing: still two distinct deliveries
    assert len({e.dedupe_key() for e in events}) == len(events)


@pytest.mark.parametrize(("menu", "digits", "reason"), [
    ({"menuId": "main", "type": "sequence", "inputMethod": "dtmf"}, "", None),  # no value: no digits
    ({"menuId": "main", "type": "timeout", "value": "12", "inputMethod": "dtmf"}, "", "timeout"),
    ({"menuId": "main", "type": "hangup", "value": "12", "inputMethod": "dtmf"}, "", "hangup"),
    ({"menuId": "main", "value": "7", "inputMethod": "voice"}, "7", "error"),  # no type: an error
])
def test_a_pie_gives_the_keys_only_for_a_result_that_has_them(
    menu: dict[str, str], digits: str, reason: str | None
) -> None:
    [event] = parse(callback("pie", menuResult=menu))
    assert (event.name, event.digits, event.reason) == ("dtmf.captured", digits, reason)
    assert event.data == {"menu": "main", "type": menu.get("type", "error"), "input": menu["inputMethod"]}


@pytest.mark.parametrize(("destination", "urls"), [
    ("https://files.example/r.mp3", ["https://files.example/r.mp3"]), ("+4592457976", []), (None, []),
])
def test_a_recording_notification_links_only_a_destination_that_is_a_url(
    destination: str | None, urls: list[str]
) -> None:
    # (Sinch's recording_available names where the file went; recording_finished raises nothing.)
    body = callback("notify", type="recording_available", conferenceId=ROOM)
    if destination is not None:
        body["destination"] = destination
    [event] = parse(body)
    assert parse({**body, "type": "recording_finished"}) == []
    data = event.data
    assert (data["urls"], data["destination"], data["conference_id"]) == (urls, destination, ROOM)


# -- the placing command's key -------------------------------------------------------------------------
def test_a_tag_round_trips_its_conference_and_key() -> None:
    for tag in (CalloutTag(ROOM, KEY), CalloutTag(None, KEY), CalloutTag(ROOM), CalloutTag()):
        assert CalloutTag.decode(tag.encode()) == tag


@pytest.mark.parametrize("mark", ['{"conference": "", "key": ""}', '{"conference": 5, "key": 7}',
                                  '{"conference": ["room"], "key": {"k": 1}}'])
def test_a_tag_field_that_is_not_a_non_empty_string_is_absent(mark: str) -> None:
    assert CalloutTag.decode('{"flowengine": ' + mark + "}") == CalloutTag(None, None)


def test_events_about_a_callout_carry_the_key_of_the_command_that_placed_it() -> None:
    """So a session that bound the callout under a stand-in id learns its real id (``binding.adopt``)."""
    answered, joined = parse(callback("ace", CalloutTag(ROOM, KEY).encode(), amd={"status": "human"}))
    assert (answered.name, answered.data) == ("call.answered", {"amd": "human", PLACED_BY: KEY})
    assert (joined.conference_id, joined.data) == (ROOM, {PLACED_BY: KEY})
    # an event about another call (a bridged party) is not about the callout: no key
    own, bridged = parse(callback("dice", None, result="BUSY", reason="N/A"))
    assert PLACED_BY not in own.data and PLACED_BY not in bridged.data


# -- identity of deliveries ----------------------------------------------------------------------------
def test_different_callbacks_are_different_deliveries_and_key_order_does_not_matter() -> None:
    menu = {"menuId": "main", "type": "sequence", "inputMethod": "dtmf"}
    first = callback("pie", menuResult=menu | {"value": "1"})
    second = callback("pie", menuResult=menu | {"value": "2"})
    assert parse(first)[0].dedupe_key() != parse(second)[0].dedupe_key()
    reordered = dict(reversed(list(first.items())))
    assert json.dumps(reordered) != json.dumps(first)
    assert parse(reordered)[0].dedupe_key() == parse(first)[0].dedupe_key()


# -- when ----------------------------------------------------------------------------------------------------
@pytest.fixture
def far_from_utc() -> Iterator[None]:
    """The machine's local zone is not UTC, so a timestamp read as local time would be hours off."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "Asia/Tokyo")
        time.tzset()
        assert time.timezone != 0
        yield
    time.tzset()


@pytest.mark.parametrize("stamp", [STAMP, "2026-01-01T12:00:00+00:00", "2026-01-01T21:00:00+09:00",
                                   "2026-01-01T07:00:00-05:00", "2026-01-01T12:00:00"])
def test_a_timestamp_is_the_same_instant_in_any_zone_and_utc_without_one(
    far_from_utc: None, stamp: str
) -> None:
    [event] = parse(callback("ace", CalloutTag().encode()) | {"timestamp": stamp})
    assert event.at == AT


# -- bad bodies ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "message"), [
    (b"{nope", "the Sinch callback is not valid JSON"),
    (b"[1]", "a Sinch callback must be a JSON object"),
    (b'{"callid": "x"}', 'a Sinch callback needs an "event"'),
    (b'{"event": "", "callid": "x"}', 'a Sinch callback needs an "event"'),
    (b'{"event": 7, "callid": "x"}', 'a Sinch callback needs an "event"'),
    (b'{"event": "ace", "callid": 42}', 'a Sinch ace callback needs a "callid"'),
    (b'{"event": "ace", "callid": ""}', 'a Sinch ace callback needs a "callid"'),
])
def test_a_bad_body_is_refused_with_a_message_saying_why(body: bytes, message: str) -> None:
    with pytest.raises(WebhookError) as caught:
        parse_callback(body)
    assert caught.value.status == 400 and str(caught.value).startswith(message)


def test_the_newer_spelling_call_id_is_read_too() -> None:
    [event] = parse_callback(b'{"event": "ace", "callId": "call-9"}')
    assert event.call_id == bridge_id("call-9")


@pytest.mark.parametrize(("mode", "authorization", "message"), [
    ("signed", None, "missing or unreadable Sinch callback credentials"),
    ("signed", signing.basic_header("key", "c2VjcmV0"), "Sinch callbacks must be signed here"),
    ("basic", signing.basic_header("key", "wrong"), "wrong Sinch callback signature or credentials"),
])
def test_a_refused_callback_is_told_why(mode: str, authorization: str | None, message: str) -> None:
    settings = SinchSettings(application_key="key", application_secret="c2VjcmV0", callback_auth=mode)
    adapter = SinchAdapter(settings, clock=ManualClock(AT))
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    with pytest.raises(WebhookAuthError) as caught:
        adapter.parse_webhook(WebhookRequest("POST", "/sinch/callback", headers, b'{"event": "ace"}'))
    assert (caught.value.status, str(caught.value)) == (401, message)
