"""Infobip webhook bodies -> neutral events.

Payloads follow the wire reference; their nested objects (call, callLog, participant, conference,
recording) are checked against the official SDK's models so they stay realistic.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from infobip_api_client.models.call import Call
from infobip_api_client.models.call_log import CallLog
from infobip_api_client.models.call_recording import CallRecording
from infobip_api_client.models.calls_conference import CallsConference
from infobip_api_client.models.calls_participant import CallsParticipant

from flowengine.errors import WebhookError
from flowengine.flow.vocabulary import EVENTS, REASONS
from flowengine.providers.infobip.webhooks import HANDLERS, parse_events
from flowengine.runtime.events import Event

TS = "2024-05-02T10:15:30.250+0000"
AT = datetime.fromisoformat(TS).timestamp()
CALLER = {"type": "PHONE", "phoneNumber": "41792036727"}
CALLEE = {"type": "PHONE", "phoneNumber": "447415784323"}
BASE = "https://abc123.api.infobip.com"


def envelope(kind: str, properties: dict[str, Any] | None = None, *, call_id: str | None = "call-1",
             conference_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": kind, "timestamp": TS, "callsConfigurationId": "cfg-1",
        "platform": {"applicationId": "app-1", "entityId": None},
    }
    if call_id is not None:
        body["callId"] = call_id
    if conference_id is not None:
        body["conferenceId"] = conference_id
    if properties is not None:
        body["properties"] = properties
    return body


def call(call_id: str = "call-1", state: str = "CALLING") -> dict[str, Any]:
    value = {
        "id": call_id, "endpoint": CALLER, "from": "41792036727", "to": "4592457976",
        "direction": "INBOUND", "state": state, "startTime": TS, "callsConfigurationId": "cfg-1",
        "platform": {"applicationId": "app-1"}, "customData": {}, "media": {"audio": {"muted": False}},
    }
    assert Call.from_dict(value) is not None
    return value


def call_log(state: str, error: str | None, source: str | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {
        "callId": "call-1", "endpoint": CALLEE, "from": "4592457976", "to": "447415784323",
        "direction": "OUTBOUND", "state": state, "startTime": TS, "endTime": TS, "duration": 42,
        "conferenceIds": ["conf-1"], "customData": {},
    }
    if error is not None:
        value["errorCode"] = {"id": 10000, "name": error, "description": error.replace("_", " ").lower()}
    if source is not None:
        value["hangupSource"] = source
    assert CallLog.from_dict(value) is not None
    return value


def participant(call_id: str = "call-2", state: str = "JOINED") -> dict[str, Any]:
    value = {"callId": call_id, "endpoint": CALLEE, "state": state, "joinTime": TS,
             "role": {"type": "DEFAULT"},
             "media": {"audio": {"muted": False, "userMuted": False, "deaf": False}}}
    assert CallsParticipant.from_dict(value) is not None
    return value


def parse(payload: Any) -> list[Event]:
    return parse_events(json.dumps(payload).encode(), recordings_base_url=BASE)


def one(payload: dict[str, Any]) -> Event:
    events = parse(payload)
    assert len(events) == 1
    event = events[0]
    assert event.name in EVENTS
    assert event.reason is None or event.reason in REASONS
    assert event.raw == payload
    assert event.event_id is None
    assert event.at == pytest.approx(AT)
    return event


def test_call_received() -> None:
    event = one(envelope("CALL_RECEIVED", {"call": call(), "apiBaseUrl": BASE, "sender": "41792036727"}))
    assert (event.name, event.call_id) == ("call.received", "call-1")
    assert event.data == {"from": "41792036727", "to": "4592457976"}


def test_call_received_takes_the_call_id_from_the_call_when_the_envelope_has_none() -> None:
    event = one(envelope("CALL_RECEIVED", {"call": call("call-9")}, call_id=None))
    assert event.call_id == "call-9"


def test_call_established_is_answered() -> None:
    event = one(envelope("CALL_ESTABLISHED", {"call": call(state="ESTABLISHED")}))
    assert (event.name, event.call_id, event.reason) == ("call.answered", "call-1", "answered")
    assert event.data == {}  # an event with nothing more to say has empty data, never None (``event.data.x``)


@pytest.mark.parametrize(("error", "source", "reason"), [
    ("NORMAL_HANGUP", "ENDPOINT", "hangup"),
    ("NORMAL_HANGUP", "API", "api_hangup"),
    ("NORMAL_HANGUP", "PLATFORM", "hangup"),
    (None, "API", "api_hangup"),
    (None, None, "hangup"),
    ("MACHINE_DETECTED", "API", "machine"),
    ("SERVICE_UNAVAILABLE", "PLATFORM", "failed"),
])
def test_call_finished_reason(error: str | None, source: str | None, reason: str) -> None:
    event = one(envelope("CALL_FINISHED", {"callLog": call_log("FINISHED", error, source)}))
    assert (event.name, event.call_id, event.reason) == ("call.finished", "call-1", reason)
    assert event.data["error_code"] == error
    assert event.data["hangup_source"] == source


@pytest.mark.parametrize(("error", "reason"), [
    ("NO_ANSWER", "no_answer"), ("BUSY", "busy"), ("REJECTED", "rejected"), ("CANCELLED", "cancelled"),
    ("DESTINATION_NOT_FOUND", "unreachable"), ("INVALID_DESTINATION", "unreachable"),
    ("DESTINATION_UNAVAILABLE", "unreachable"), ("FORBIDDEN", "failed"), ("SERVICE_UNAVAILABLE", "failed"),
    ("REQUEST_TIMEOUT", "failed"),
])
def test_call_failed_reason(error: str, reason: str) -> None:
    event = one(envelope("CALL_FAILED", {"callLog": call_log("FAILED", error, "PLATFORM")}))
    assert (event.name, event.reason) == ("call.failed", reason)


def test_call_failed_without_error_code_falls_back_on_the_state() -> None:
    event = one(envelope("CALL_FAILED", {"callLog": call_log("BUSY", None)}))
    assert event.reason == "busy"


def test_call_finished_takes_a_plain_string_error_code_too() -> None:
    log = call_log("FINISHED", None, "ENDPOINT") | {"errorCode": "NORMAL_HANGUP"}
    assert one(envelope("CALL_FINISHED", {"callLog": log})).reason == "hangup"


def conference(participants: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    value = {"id": "conf-1", "name": "room-s1", "participants": participants or [],
             "callsConfigurationId": "cfg-1"}
    assert CallsConference.from_dict(value) is not None
    return value


def test_conference_created_and_finished() -> None:
    created = one(envelope("CONFERENCE_CREATED", {"conference": conference(), "apiBaseUrl": BASE},
                           call_id=None, conference_id="conf-1"))
    assert (created.name, created.conference_id, created.call_id) == ("conference.created", "conf-1", None)
    assert created.data == {"name": "room-s1"}
    finished = one(envelope("CONFERENCE_FINISHED", {"conference": conference()}, call_id=None,
                            conference_id="conf-1"))
    assert (finished.name, finished.conference_id) == ("conference.finished", "conf-1")
    assert finished.reason == "hangup"


def test_conference_id_falls_back_on_the_conference_object() -> None:
    event = one(envelope("CONFERENCE_CREATED", {"conference": conference()}, call_id=None))
    assert event.conference_id == "conf-1"


@pytest.mark.parametrize(("kind", "state", "name"), [
    ("PARTICIPANT_JOINING", "JOINING", "participant.joining"),
    ("PARTICIPANT_JOINED", "JOINED", "participant.joined"),
])
def test_participant_joining_and_joined_use_the_participants_call_id(kind: str, state: str,
                                                                     name: str) -> None:
    # The envelope's callId may name another leg; the participant says whose event it is.
    event = one(envelope(kind, {"participant": participant("call-2", state)}, call_id="call-1",
                         conference_id="conf-1"))
    assert (event.name, event.call_id, event.conference_id) == (name, "call-2", "conf-1")
    assert event.reason is None


@pytest.mark.parametrize(("text", "reason"), [
    ("NO_ANSWER", "no_answer"), ("Call failed: busy", "busy"), ("The call was rejected", "rejected"),
    ("DESTINATION_NOT_FOUND", "unreachable"), ("no answer", "no_answer"), (None, "failed"),
    ("weird", "failed"),
])
def test_participant_join_failed(text: str | None, reason: str) -> None:
    props: dict[str, Any] = {"participant": participant("call-2", "LEFT")}
    if text is not None:
        props["reason"] = text
    event = one(envelope("PARTICIPANT_JOIN_FAILED", props, call_id=None, conference_id="conf-1"))
    assert (event.name, event.call_id, event.conference_id, event.reason) == (
        "participant.join_failed", "call-2", "conf-1", reason)


@pytest.mark.parametrize(("text", "reason"), [
    ("Removed by API", "kicked"), ("KICKED", "kicked"), ("NORMAL_HANGUP", "hangup"),
    ("Participant hung up", "hangup"), ("Call finished", "hangup"), (None, "hangup"),
])
def test_participant_removed_is_left(text: str | None, reason: str) -> None:
    props: dict[str, Any] = {"participant": participant("call-2", "LEFT")}
    if text is not None:
        props["reason"] = text
    event = one(envelope("PARTICIPANT_REMOVED", props, call_id=None, conference_id="conf-1"))
    assert (event.name, event.call_id, event.reason) == ("participant.left", "call-2", reason)


@pytest.mark.parametrize(("kind", "name"), [("SAY_FINISHED", "say.finished"),
                                           ("PLAY_FINISHED", "play.finished")])
@pytest.mark.parametrize(("completely", "reason"), [(True, "completed"), (False, "stopped"),
                                                    (None, "completed")])
def test_media_finished(kind: str, name: str, completely: bool | None, reason: str) -> None:
    props: dict[str, Any] = {"duration": 3200, "customData": {}}
    if completely is not None:
        props["playedCompletely"] = completely
    event = one(envelope(kind, props))
    assert (event.name, event.call_id, event.reason) == (name, "call-1", reason)
    assert event.data["duration_ms"] == 3200


def test_conference_play_finished_carries_the_conference() -> None:
    event = one(envelope("PLAY_FINISHED", {"playedCompletely": False}, call_id=None, conference_id="conf-1"))
    assert (event.call_id, event.conference_id, event.reason) == (None, "conf-1", "stopped")


@pytest.mark.parametrize(("props", "digits", "reason"), [
    ({"dtmf": "1234", "timeout": False}, "1234", None),
    ({"dtmf": "12", "timeout": True}, "12", None),
    ({"dtmf": "", "timeout": True}, "", "timeout"),
    ({"timeout": True}, "", "timeout"),
])
def test_dtmf_captured(props: dict[str, Any], digits: str, reason: str | None) -> None:
    event = one(envelope("DTMF_CAPTURED", props | {"customData": {}}))
    assert (event.name, event.call_id) == ("dtmf.captured", "call-1")
    assert (event.digits, event.reason) == (digits, reason)


def test_call_recording_ready() -> None:
    recording = {
        "callId": "call-1", "endpoint": CALLER, "direction": "INBOUND", "status": "SUCCESSFUL",
        "files": [
            {"id": "file-1", "name": "rec-1.wav", "fileFormat": "WAV", "size": 1024, "creationTime": TS,
             "duration": 12, "location": "HOSTED"},
            {"id": "file-2", "name": "rec-2.wav", "fileFormat": "WAV", "location": "HOSTED"},
        ],
        "callsConfigurationId": "cfg-1", "startTime": TS, "endTime": TS,
    }
    assert CallRecording.from_dict(recording) is not None
    event = one(envelope("CALL_RECORDING_READY", {"recording": recording}, call_id=None))
    assert (event.name, event.call_id) == ("recording.ready", "call-1")
    assert event.data["file_ids"] == ["file-1", "file-2"]
    assert event.data["urls"] == [f"{BASE}/calls/1/recordings/files/file-1",
                                  f"{BASE}/calls/1/recordings/files/file-2"]


@pytest.mark.parametrize("files", [5, "file-1", {"id": "file-1"}, None])
def test_recording_ready_whose_file_lists_are_not_lists_has_no_files(files: object) -> None:
    # Found by schemathesis: a number there was a TypeError, answered 500.
    payload = envelope("CALL_RECORDING_READY", {"recording": {"files": files, "composedFiles": files}})
    [event] = parse_events(json.dumps(payload).encode())
    assert (event.data["file_ids"], event.data["files"]) == ([], [])


def test_recording_ready_with_a_bare_file_id_and_no_base_url() -> None:
    payload = envelope("CALL_RECORDING_READY", {"fileId": "file-9"})
    [event] = parse_events(json.dumps(payload).encode())
    assert event.data["file_ids"] == ["file-9"]
    assert event.data["urls"] == []


@pytest.mark.parametrize(("action_type", "conference_id", "call_id", "action"), [
    ("PLAY", None, "call-1", "play"), ("SAY", None, "call-1", "say"),
    ("SEND_DTMF", None, "call-1", "send_dtmf"),
    ("CAPTURE_DTMF", None, "call-1", "capture_dtmf"), ("PLAY", "conf-1", None, "conference_play"),
    ("CAPTURE_SPEECH", None, "call-1", "capture_speech"),
])
def test_error_is_action_failed(action_type: str, conference_id: str | None, call_id: str | None,
                                action: str) -> None:
    props = {"actionType": action_type, "errorCode": "FILE_CANNOT_BE_PLAYED",
             "errorDetails": "File not found"}
    event = one(envelope("ERROR", props, call_id=call_id, conference_id=conference_id))
    assert (event.name, event.reason) == ("action.failed", "error")
    assert event.data == {"action": action, "error": "File not found", "code": "FILE_CANNOT_BE_PLAYED"}


@pytest.mark.parametrize("kind", ["CALL_RINGING", "CALL_PRE_ESTABLISHED",
                                  "MACHINE_MESSAGE_DETECTION_FINISHED",
                                  "PARTICIPANT_MEDIA_CHANGED", "SOMETHING_NEW_IN_2027"])
def test_unknown_or_unmapped_types_give_no_events(kind: str) -> None:
    assert parse(envelope(kind, {"call": call()})) == []


def test_every_mapped_type_is_a_real_infobip_event() -> None:
    reference = {
        "CALL_RECEIVED", "CALL_ESTABLISHED", "CALL_FINISHED", "CALL_FAILED", "CONFERENCE_CREATED",
        "CONFERENCE_FINISHED", "PARTICIPANT_JOINING", "PARTICIPANT_JOINED", "PARTICIPANT_JOIN_FAILED",
        "PARTICIPANT_REMOVED", "SAY_FINISHED", "PLAY_FINISHED", "DTMF_CAPTURED", "CALL_RECORDING_READY",
        "CONFERENCE_RECORDING_READY", "ERROR", "MACHINE_DETECTION_FINISHED", "MACHINE_DETECTION_FAILED",
    }
    assert set(HANDLERS) == reference


def test_a_list_of_events_gives_them_in_order() -> None:
    kinds = ["CALL_ESTABLISHED", "CALL_RINGING", "SAY_FINISHED"]
    events = parse([envelope(kind, {}) for kind in kinds])
    assert [e.name for e in events] == ["call.answered", "say.finished"]


def test_missing_properties_and_bad_timestamp_still_parse() -> None:
    finished = parse_events(json.dumps({"type": "CALL_FINISHED", "callId": "c"}).encode())
    assert [(e.name, e.call_id, e.reason, e.at) for e in finished] == [("call.finished", "c", "hangup", None)]
    joined = parse_events(json.dumps({"type": "PARTICIPANT_JOINED", "callId": "c", "conferenceId": "k",
                                      "timestamp": "yesterday", "properties": None}).encode())
    assert [(e.call_id, e.conference_id, e.at) for e in joined] == [("c", "k", None)]


def test_the_same_delivery_twice_has_the_same_dedupe_key() -> None:
    payload = envelope("PARTICIPANT_JOINED", {"participant": participant()}, conference_id="k")
    body = json.dumps(payload).encode()
    first, second = parse_events(body)[0], parse_events(body)[0]
    assert first.dedupe_key() == second.dedupe_key()


@pytest.mark.parametrize("body", [b"", b"{not json", b"\xff\xfe\x00", b"42", b'"CALL_RECEIVED"', b"[1]",
                                  b"{}", b'{"type": ""}', b'{"type": 7, "callId": "c"}',
                                  b'{"callId": "c", "properties": {}}'])
def test_malformed_bodies_are_400(body: bytes) -> None:
    with pytest.raises(WebhookError) as caught:
        parse_events(body)
    assert caught.value.status == 400


def test_a_call_dialled_with_machine_detection_is_answered_by_the_detection() -> None:
    custom = {"flowengineKey": "s:2:0", "flowengineAmd": "true"}
    dialled = {**call("call-7", "ESTABLISHED"), "customData": custom}
    assert parse(envelope("CALL_ESTABLISHED", {"call": dialled}, call_id="call-7")) == []
    for result, reason in (("HUMAN", "human"), ("MACHINE", "machine")):
        props = {"detectionResult": result, "confidenceRating": 0.87}
        [event] = parse(envelope("MACHINE_DETECTION_FINISHED", props, call_id="call-7"))
        assert (event.name, event.call_id, event.reason) == ("call.answered", "call-7", reason)
        assert event.data == {"machine_detection": result.lower(), "confidence": 0.87}
    [failed] = parse(envelope("MACHINE_DETECTION_FAILED", {}, call_id="call-7"))
    assert (failed.name, failed.reason) == ("call.answered", "answered")
    assert failed.data == {"machine_detection": "failed"}
    # Without the flag, the established call is the answer, as always.
    [plain] = parse(envelope("CALL_ESTABLISHED", {"call": call("call-8", "ESTABLISHED")}, call_id="call-8"))
    assert (plain.name, plain.reason) == ("call.answered", "answered")
