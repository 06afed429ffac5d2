"""Infobip webhook bodies -> neutral events: the fields a flow reads (``event.data``, reasons, ids taken
from the properties when the envelope has none), timestamps in any zone, and the errors bad bodies get.

Shapes follow the wire reference (section 5, webhook events) and the official SDK's models."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from infobip_api_client.models.calls_conference_recording import CallsConferenceRecording

from flowengine.errors import WebhookError
from flowengine.providers.infobip.webhooks import finished_reason, parse_events
from flowengine.runtime.events import Event

BASE = "https://abc123.api.infobip.com"
AT = datetime(2024, 5, 2, 10, 15, 30, 250000, tzinfo=UTC).timestamp()


def body(kind: str, properties: Any = None, **envelope: Any) -> dict[str, Any]:
    payload = {"type": kind, "timestamp": "2024-05-02T10:15:30.250+0000", **envelope}
    if properties is not None:
        payload["properties"] = properties
    return payload


def parse(payload: Any) -> list[Event]:
    return parse_events(json.dumps(payload).encode(), recordings_base_url=BASE)


def one(payload: Any) -> Event:
    [event] = parse(payload)
    return event


# -- when ----------------------------------------------------------------------------------------------------
@pytest.fixture
def far_from_utc() -> Iterator[None]:
    """The machine's local zone is not UTC, so a timestamp read as local time would be hours off."""
    before = time.tzname
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "America/New_York")
        time.tzset()
        assert time.tzname != ("UTC", "UTC") and time.timezone != 0, before
        yield
    time.tzset()


@pytest.mark.parametrize("stamp", ["2024-05-02T10:15:30.250+0000", "2024-05-02T12:15:30.250+02:00",
                                   "2024-05-02T05:15:30.250-05:00", "2024-05-02T10:15:30.250"])
def test_a_timestamp_is_the_same_instant_in_any_zone_and_utc_without_one(
    far_from_utc: None, stamp: str
) -> None:
    event = one(body("CALL_ESTABLISHED", callId="call-1") | {"timestamp": stamp})
    assert event.at == pytest.approx(AT)


# -- ids: from the envelope, else from the properties; only non-empty strings count -------------------------
@pytest.mark.parametrize(("kind", "properties", "name"), [
    ("CALL_ESTABLISHED", {"call": {"id": "call-7", "state": "ESTABLISHED"}}, "call.answered"),
    ("CALL_FINISHED", {"callLog": {"callId": "call-7", "state": "FINISHED"}}, "call.finished"),
    ("CALL_FAILED", {"callLog": {"callId": "call-7", "state": "FAILED"}}, "call.failed"),
])
def test_the_call_id_comes_from_the_properties_when_the_envelope_has_none(
    kind: str, properties: dict[str, Any], name: str
) -> None:
    event = one(body(kind, properties))
    assert (event.name, event.call_id) == (name, "call-7")


def test_a_finished_conferences_id_comes_from_its_object_when_the_envelope_has_none() -> None:
    event = one(body("CONFERENCE_FINISHED", {"conference": {"id": "conf-7", "name": "room"}}))
    assert (event.name, event.conference_id) == ("conference.finished", "conf-7")


@pytest.mark.parametrize("call_id", ["", 42, ["call-1"]])
def test_an_id_that_is_not_a_non_empty_string_is_no_id(call_id: Any) -> None:
    needs = 'an Infobip CALL_ESTABLISHED event needs a "callId" or a "conferenceId"'
    with pytest.raises(WebhookError, match=needs):
        parse(body("CALL_ESTABLISHED", {"call": {"id": call_id}}, callId=call_id))


# -- what a flow reads ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("call", "caller"), [
    ({"from": "41792036727", "endpoint": {"type": "PHONE", "phoneNumber": "41000000000"}}, "41792036727"),
    ({"endpoint": {"type": "PHONE", "phoneNumber": "41792036727"}}, "41792036727"),
    ({"endpoint": {"type": "WEBRTC", "identity": "alice"}}, "alice"),
    ({"endpoint": {"type": "SIP", "username": "bob"}}, "bob"),
    ({"endpoint": {"type": "VIBER", "identifier": "carol"}}, "carol"),
    ({"endpoint": {"type": "PHONE", "phoneNumber": ""}}, None),
    ({}, None),
])
def test_the_caller_is_the_calls_from_else_its_endpoints_address(
    call: dict[str, Any], caller: str | None
) -> None:
    received = {"call": {"id": "call-1", "to": "4592457976", **call}}
    event = one(body("CALL_RECEIVED", received, callId="call-1"))
    assert event.data == {"from": caller, "to": "4592457976"}


@pytest.mark.parametrize("kind", ["CALL_FINISHED", "CALL_FAILED"])
def test_a_call_log_gives_its_error_code_hangup_source_and_duration(kind: str) -> None:
    log = {"callId": "call-1", "state": "BUSY", "duration": 42, "hangupSource": "PLATFORM",
           "errorCode": {"id": 10004, "name": "BUSY", "description": "busy"}}
    event = one(body(kind, {"callLog": log}, callId="call-1"))
    assert event.data == {"error_code": "BUSY", "hangup_source": "PLATFORM", "duration": 42}


@pytest.mark.parametrize(("code", "source", "reason"), [
    ("", "API", "api_hangup"), ("", "ENDPOINT", "hangup"), ("BUSY", "ENDPOINT", "busy"),
])
def test_an_empty_error_code_of_an_answered_call_is_a_normal_hang_up(
    code: str, source: str, reason: str
) -> None:
    """As reconciliation reads a call log whose ``errorCode.name`` is empty (``observe.logged``)."""
    assert finished_reason(code, source) == reason


@pytest.mark.parametrize(("code", "reason"), [
    (None, "hangup"), ("NORMAL_HANGUP", "hangup"), ({"id": 10000, "name": "NORMAL_HANGUP"}, "hangup"),
    ({"id": 50001, "name": "SERVICE_UNAVAILABLE"}, "failed"), ("REQUEST_TIMEOUT", "failed"),
    ("CANCELLED", "cancelled"),
])
def test_a_conference_finished_says_why_from_its_error_code(code: Any, reason: str) -> None:
    properties: dict[str, Any] = {"conference": {"id": "conf-1"}}
    if code is not None:
        properties["errorCode"] = code
    event = one(body("CONFERENCE_FINISHED", properties, conferenceId="conf-1"))
    name = code["name"] if isinstance(code, dict) else code
    assert (event.reason, event.data) == (reason, {"error_code": name})


@pytest.mark.parametrize("kind", ["SAY_FINISHED", "PLAY_FINISHED"])
def test_keys_pressed_during_a_say_or_play_reach_the_flow(kind: str) -> None:
    props = {"duration": 3200, "playedCompletely": False, "capturedDtmf": "42#"}
    event = one(body(kind, props, callId="call-1"))
    assert (event.reason, event.data) == ("stopped", {"duration_ms": 3200, "captured_dtmf": "42#"})


@pytest.mark.parametrize(("kind", "name", "reason"), [
    ("PARTICIPANT_JOIN_FAILED", "participant.join_failed", "busy"),
    ("PARTICIPANT_REMOVED", "participant.left", "kicked"),
])
def test_a_participant_event_gives_the_participants_state_and_the_platforms_words(
    kind: str, name: str, reason: str
) -> None:
    words = "Busy" if reason == "busy" else "Removed by API"
    props = {"participant": {"callId": "call-2", "state": "LEFT"}, "reason": words}
    event = one(body(kind, props, conferenceId="conf-1"))
    assert (event.name, event.call_id, event.conference_id) == (name, "call-2", "conf-1")
    assert event.reason == reason
    assert event.data == {"state": "LEFT", "detail": words}


def test_a_participant_event_without_a_call_id_of_its_own_is_about_the_envelopes_call() -> None:
    event = one(body("PARTICIPANT_JOINED", {"participant": {"state": "JOINED"},
                                            "conference": {"id": "conf-2"}}, callId="call-1"))
    assert (event.name, event.call_id, event.conference_id, event.reason) == (
        "participant.joined", "call-1", "conf-2", None)


# -- recordings ----------------------------------------------------------------------------------------------
FILES = [{"id": "f-1", "name": "a.wav", "fileFormat": "WAV", "location": "HOSTED"},
         {"id": "f-2", "name": "b.wav", "fileFormat": "WAV", "location": "HOSTED"}]


def test_a_conference_recording_gives_its_composed_files() -> None:
    recording = {"conferenceId": "conf-1", "conferenceName": "room", "composedFiles": FILES}
    assert CallsConferenceRecording.from_dict(recording) is not None
    event = one(body("CONFERENCE_RECORDING_READY", {"recording": recording}, conferenceId="conf-1"))
    urls = [f"{BASE}/calls/1/recordings/files/f-1", f"{BASE}/calls/1/recordings/files/f-2"]
    assert event.data == {"file_ids": ["f-1", "f-2"], "files": FILES, "urls": urls}


def test_a_recordings_files_win_over_a_bare_file_id() -> None:
    event = one(body("CALL_RECORDING_READY", {"fileId": "f-1", "files": FILES}, callId="call-1"))
    assert event.data["file_ids"] == ["f-1", "f-2"]


def test_recordings_in_a_list_body_get_their_urls_too() -> None:
    [event] = parse([body("CALL_RECORDING_READY", {"fileId": "f-9"}, callId="call-1")])
    assert event.data["urls"] == [f"{BASE}/calls/1/recordings/files/f-9"]


# -- errors of actions ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("props", "envelope", "data"), [
    ({"actionType": "PLAY", "errorDetails": "File not found"}, {"callId": "call-1", "conferenceId": "conf-1"},
     {"action": "play", "error": "File not found", "code": None}),  # a call's own action, in a conference
    ({"actionType": "SAY", "errorCode": "TTS_FAILED"}, {"conferenceId": "conf-1"},
     {"action": "conference_say", "error": "TTS_FAILED", "code": "TTS_FAILED"}),
    ({"actionType": "SEND_DTMF"}, {"conferenceId": "conf-1"},
     {"action": "send_dtmf", "error": "Infobip reported an error", "code": None}),
    ({}, {"callId": "call-1"}, {"action": "unknown", "error": "Infobip reported an error", "code": None}),
])
def test_an_error_names_the_action_and_says_what_went_wrong(
    props: dict[str, Any], envelope: dict[str, Any], data: dict[str, Any]
) -> None:
    event = one(body("ERROR", props, **envelope))
    assert (event.name, event.reason, event.data) == ("action.failed", "error", data)


# -- bad bodies: a 400 that says what is wrong ---------------------------------------------------------------
@pytest.mark.parametrize(("raw", "message"), [
    (b"{not json", "the Infobip event is not valid JSON"),
    (b"[1]", "an Infobip event must be a JSON object"),
    (b'{"callId": "c"}', 'an Infobip event needs a "type"'),
    (b'{"type": "CALL_FINISHED"}', 'an Infobip CALL_FINISHED event needs a "callId" or a "conferenceId"'),
])
def test_a_bad_body_is_refused_with_a_message_saying_why(raw: bytes, message: str) -> None:
    with pytest.raises(WebhookError) as caught:
        parse_events(raw)
    assert str(caught.value).startswith(message)
