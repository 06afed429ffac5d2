"""Infobip webhook event bodies: the ``CallsEvent`` envelope (type, callId, conferenceId, timestamp,
callsConfigurationId, platform, properties) and each type's ``properties``. Infobip puts no event id in the
body, so neither do we."""

from __future__ import annotations

from typing import Any

from flowengine.simulator.infobip.model import InfobipCall, InfobipConference, Participant, error_code, iso


def envelope(
    type_: str,
    now: float,
    *,
    configuration: str,
    platform: dict[str, Any],
    properties: dict[str, Any],
    call_id: str | None = None,
    conference_id: str | None = None,
) -> dict[str, Any]:
    return {
        "type": type_,
        "callId": call_id,
        "conferenceId": conference_id,
        "timestamp": iso(now),
        "callsConfigurationId": configuration,
        "platform": platform,
        "properties": properties,
    }


def call_event(type_: str, call: InfobipCall, now: float, properties: dict[str, Any]) -> dict[str, Any]:
    return envelope(
        type_,
        now,
        configuration=call.calls_configuration_id,
        platform=call.platform,
        properties=properties,
        call_id=call.id,
        conference_id=call.conference_id,
    )


def call_state_event(type_: str, call: InfobipCall, now: float, api_base_url: str) -> dict[str, Any]:
    """CALL_RECEIVED, CALL_RINGING, CALL_ESTABLISHED: ``{call, apiBaseUrl, sender, resolvedCnam}``."""
    properties = {"call": call.to_json(), "apiBaseUrl": api_base_url, "sender": call.from_}
    return call_event(type_, call, now, properties)


def call_ended_event(call: InfobipCall, now: float) -> dict[str, Any]:
    """CALL_FINISHED for a call that was established, CALL_FAILED for one that never was."""
    type_ = "CALL_FINISHED" if call.answer_time is not None else "CALL_FAILED"
    return call_event(type_, call, now, {"callLog": call.log_json()})


def media_finished_event(
    kind: str,
    target: InfobipCall | InfobipConference,
    now: float,
    *,
    duration_ms: int,
    completely: bool,
    custom_data: dict[str, str] | None,
) -> dict[str, Any]:
    """SAY_FINISHED / PLAY_FINISHED for a call or a whole conference."""
    properties = {"duration": duration_ms, "playedCompletely": completely, "customData": custom_data}
    type_ = f"{kind}_FINISHED"
    if isinstance(target, InfobipCall):
        return call_event(type_, target, now, properties)
    return conference_event(type_, target, now, properties)


def error_event(
    target: InfobipCall | InfobipConference, now: float, action: str, code: str, source: str
) -> dict[str, Any]:
    """ERROR: an accepted action failed later. ``errorCode`` is a machine-readable string in Infobip's
    model; the value used here is the simulator's own (Infobip's list of codes is unconfirmed)."""
    properties = {
        "actionType": action,
        "errorCode": code,
        "errorDetails": f"File {source} could not be played.",
    }
    if isinstance(target, InfobipCall):
        return call_event("ERROR", target, now, properties)
    return conference_event("ERROR", target, now, properties)


def dtmf_event(
    call: InfobipCall, now: float, digits: str, timed_out: bool, custom: dict[str, str] | None
) -> dict[str, Any]:
    return call_event(
        "DTMF_CAPTURED", call, now, {"dtmf": digits, "timeout": timed_out, "customData": custom}
    )


def recording_ready_event(call: InfobipCall, now: float, file_id: str) -> dict[str, Any]:
    """CALL_RECORDING_READY with ``{recording: CallRecording}``."""
    started = call.recording_started or now
    recording = {
        "callId": call.id,
        "endpoint": call.endpoint,
        "direction": call.direction,
        "files": [
            {
                "id": file_id,
                "name": f"{file_id}.wav",
                "fileFormat": "WAV",
                "size": int((now - started) * 16000),
                "creationTime": iso(now),
                "duration": int(now - started),
                "startTime": iso(started),
                "endTime": iso(now),
                "location": "HOSTED",
            }
        ],
        "status": "SUCCESSFUL",
        "callsConfigurationId": call.calls_configuration_id,
        "platform": call.platform,
        "startTime": iso(started),
        "endTime": iso(now),
    }
    return call_event("CALL_RECORDING_READY", call, now, {"recording": recording})


def conference_event(
    type_: str,
    conference: InfobipConference,
    now: float,
    properties: dict[str, Any],
    call_id: str | None = None,
) -> dict[str, Any]:
    return envelope(
        type_,
        now,
        configuration=conference.calls_configuration_id,
        platform=conference.platform,
        properties=properties,
        call_id=call_id,
        conference_id=conference.id,
    )


def conference_created_event(conference: InfobipConference, now: float, api_base_url: str) -> dict[str, Any]:
    properties = {"conference": conference.to_json(), "apiBaseUrl": api_base_url}
    return conference_event("CONFERENCE_CREATED", conference, now, properties)


def conference_recording_ready_event(
    conference: InfobipConference, now: float, file_id: str
) -> dict[str, Any]:
    """CONFERENCE_RECORDING_READY: ``{recording}`` with the mixed file under ``composedFiles``."""
    started = conference.recording_started or now
    recording = {
        "conferenceId": conference.id,
        "conferenceName": conference.name,
        "composedFiles": [{
            "id": file_id, "name": f"{file_id}.wav", "fileFormat": "WAV",
            "size": int((now - started) * 16000),
            "creationTime": iso(now), "duration": int(now - started), "startTime": iso(started),
            "endTime": iso(now), "location": "HOSTED",
        }],
        "status": "SUCCESSFUL",
        "callsConfigurationId": conference.calls_configuration_id,
        "platform": conference.platform,
        "startTime": iso(started),
        "endTime": iso(now),
    }
    return conference_event("CONFERENCE_RECORDING_READY", conference, now, {"recording": recording})


def conference_finished_event(conference: InfobipConference, now: float) -> dict[str, Any]:
    properties = {"conference": conference.to_json(), "errorCode": error_code("NORMAL_HANGUP")}
    return conference_event("CONFERENCE_FINISHED", conference, now, properties)


def participant_event(
    type_: str, conference: InfobipConference, participant: Participant, now: float, reason: str | None = None
) -> dict[str, Any]:
    """PARTICIPANT_JOINING / JOINED: ``{participant}``; JOIN_FAILED / REMOVED add ``reason``."""
    properties: dict[str, Any] = {"participant": participant.to_json()}
    if reason is not None:
        properties["reason"] = reason
    return conference_event(type_, conference, now, properties, call_id=participant.call.id)
