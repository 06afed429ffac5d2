"""Infobip calls and conferences as the simulator holds them, and their JSON (Call, CallLog, Conference,
Participant) exactly as the Calls API returns them. Field names follow the official SDK models
(``infobip_api_client.models.call``, ``call_log``, ``calls_conference``, ``calls_participant``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flowengine.simulator.legs import Leg

# Call states (CallState) and the ones that mean the call is over.
CALLING, RINGING, ESTABLISHED = "CALLING", "RINGING", "ESTABLISHED"
FINISHED, FAILED, CANCELLED, NO_ANSWER, BUSY = "FINISHED", "FAILED", "CANCELLED", "NO_ANSWER", "BUSY"
ENDED_STATES = frozenset({FINISHED, FAILED, CANCELLED, NO_ANSWER, BUSY})

# Participant states.
JOINING, JOINED, LEFT = "JOINING", "JOINED", "LEFT"

# Hangup error codes (CallsErrorCode). Only NORMAL_HANGUP's id (10000) and description are confirmed by
# Infobip's published examples; the other ids and descriptions are the simulator's own (match on name).
ERROR_CODES: dict[str, tuple[int, str]] = {
    "NORMAL_HANGUP": (10000, "The call has ended with hangup initiated by caller, callee or API"),
    "MACHINE_DETECTED": (10001, "The call was hung up because a machine was detected."),
    "NO_ANSWER": (10002, "The destination did not answer before the connect timeout."),
    "BUSY": (10003, "The destination is busy."),
    "CANCELLED": (10004, "The call was cancelled before it was answered."),
    "REJECTED": (10005, "The destination rejected the call."),
    "FORBIDDEN": (10006, "The call is not allowed."),
    "DESTINATION_NOT_FOUND": (10007, "The destination was not found."),
    "DESTINATION_UNAVAILABLE": (10008, "The destination is unavailable."),
    "INVALID_DESTINATION": (10009, "The destination is invalid."),
    "INVALID_REQUEST": (10010, "The request was invalid."),
    "REQUEST_TIMEOUT": (10011, "The request timed out."),
    "SERVICE_UNAVAILABLE": (10012, "The service is unavailable."),
}


def iso(ts: float | None) -> str | None:
    """Infobip's timestamp format, e.g. ``2026-01-01T00:00:00.000+00:00``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def error_code(name: str) -> dict[str, Any]:
    code_id, description = ERROR_CODES[name]
    return {"id": code_id, "name": name, "description": description}


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    """Infobip leaves unset fields out of its JSON."""
    return {k: v for k, v in data.items() if v is not None}


@dataclass(eq=False)
class Playback:
    """A say or play in progress on a call or a conference."""

    kind: str  # "SAY" or "PLAY"
    started: float
    custom_data: dict[str, str] | None
    task: asyncio.Task[Any] | None = None


@dataclass(eq=False, kw_only=True)
class InfobipCall(Leg):
    endpoint: dict[str, Any]
    from_: str
    to: str
    direction: str
    state: str
    calls_configuration_id: str
    platform: dict[str, Any]
    start_time: float
    answer_time: float | None = None
    end_time: float | None = None
    ring_start: float | None = None
    connect_timeout: float = 60.0
    max_duration: int = 28800
    custom_data: dict[str, str] | None = None
    parent_call_id: str | None = None
    external_id: str | None = None
    machine_detection: float | None = None  # dialled with machineDetection: seconds it listens for
    detection_result: str | None = None  # HUMAN | MACHINE once detected
    conference_id: str | None = None
    conference_ids: list[str] = field(default_factory=list)
    muted: bool = False
    deaf: bool = False
    recording: bool = False
    recording_started: float | None = None
    error_code: str | None = None
    hangup_source: str | None = None
    playback: Playback | None = field(default=None, repr=False)
    capture: asyncio.Task[Any] | None = field(default=None, repr=False)
    ring_timer: asyncio.Task[Any] | None = field(default=None, repr=False)

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES

    def media_json(self) -> dict[str, Any]:
        return {
            "audio": {"muted": self.muted, "userMuted": False, "deaf": self.deaf},
            "video": {"camera": False, "screenShare": False},
        }

    def to_json(self) -> dict[str, Any]:
        """The ``Call`` object."""
        return _compact(
            {
                "id": self.id,
                "endpoint": self.endpoint,
                "from": self.from_,
                "to": self.to,
                "direction": self.direction,
                "state": self.state,
                "media": self.media_json(),
                "startTime": iso(self.start_time),
                "answerTime": iso(self.answer_time),
                "endTime": iso(self.end_time),
                "parentCallId": self.parent_call_id,
                "ringDuration": self._ring_duration(),
                "callsConfigurationId": self.calls_configuration_id,
                "platform": self.platform,
                "conferenceId": self.conference_id,
                "customData": self.custom_data,
                "externalId": self.external_id,
                "machineDetection": ({"detectionResult": self.detection_result}
                                     if self.detection_result else None),
            }
        )

    def log_json(self) -> dict[str, Any]:
        """The ``CallLog`` object carried by CALL_FINISHED and CALL_FAILED."""
        duration = int(self.end_time - self.answer_time) if self.answer_time and self.end_time else 0
        return _compact(
            {
                "callId": self.id,
                "endpoint": self.endpoint,
                "from": self.from_,
                "to": self.to,
                "direction": self.direction,
                "state": self.state,
                "startTime": iso(self.start_time),
                "answerTime": iso(self.answer_time),
                "endTime": iso(self.end_time),
                "parentCallId": self.parent_call_id,
                "ringDuration": self._ring_duration(),
                "callsConfigurationIds": [self.calls_configuration_id],
                "platform": self.platform,
                "conferenceIds": list(self.conference_ids),
                "duration": duration,
                "hasCameraVideo": False,
                "hasScreenshareVideo": False,
                "errorCode": error_code(self.error_code) if self.error_code else None,
                "customData": self.custom_data,
                "hangupSource": self.hangup_source,
                "externalId": self.external_id,
            }
        )

    def _ring_duration(self) -> int | None:
        if self.ring_start is None:
            return None
        until = self.answer_time or self.end_time
        return int(until - self.ring_start) if until is not None else None


@dataclass(eq=False, kw_only=True)
class Participant:
    call: InfobipCall
    state: str = JOINING
    join_time: float | None = None
    leave_time: float | None = None
    role: str = "DEFAULT"
    muted: bool = False
    deaf: bool = False

    def to_json(self) -> dict[str, Any]:
        return _compact(
            {
                "callId": self.call.id,
                "endpoint": self.call.endpoint,
                "state": self.state,
                "joinTime": iso(self.join_time),
                "leaveTime": iso(self.leave_time),
                "media": {
                    "audio": {"muted": self.muted, "userMuted": False, "deaf": self.deaf},
                    "video": {"camera": False, "screenShare": False},
                },
                "role": {"type": self.role},
            }
        )


@dataclass(eq=False, kw_only=True)
class InfobipConference:
    id: str
    name: str
    calls_configuration_id: str
    platform: dict[str, Any]
    created_at: float
    max_duration: int = 28800
    participants: dict[str, Participant] = field(default_factory=dict)
    finished: bool = False
    recording: bool = False
    recording_started: float | None = None
    playback: Playback | None = field(default=None, repr=False)

    def active(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.state != LEFT]

    def to_json(self) -> dict[str, Any]:
        """The ``Conference`` object: current participants (those that left are in the conference log)."""
        return _compact(
            {
                "id": self.id,
                "name": self.name,
                "participants": [p.to_json() for p in self.active()],
                "callsConfigurationId": self.calls_configuration_id,
                "platform": self.platform,
            }
        )
