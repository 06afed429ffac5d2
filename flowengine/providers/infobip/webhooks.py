"""Infobip Calls webhook bodies -> neutral events.

One parser serves every URL (the 2022 article's receive/event pair included): the ``type`` field says
what happened. Types no flow can react to (CALL_RINGING, ...) give no events: the service acknowledges
them, so Infobip does not retry. A call dialled with machine detection (``AMD_FIELD`` in its customData)
is answered when the detection ends: its CALL_ESTABLISHED gives nothing, its MACHINE_DETECTION_FINISHED
``call.answered`` with ``reason`` human or machine (FAILED: ``answered``). Infobip bodies carry no
delivery id, so ``event_id`` stays None and the engine dedupes on the event's ``digest``, a hash of the
body's bytes (the events of a body holding a list keep the hash of their parsed item).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from flowengine.errors import WebhookError
from flowengine.providers.base import JSON
from flowengine.providers.infobip.commands import AMD_FIELD
from flowengine.providers.intake import load_json
from flowengine.runtime.events import Event, body_digest
from flowengine.runtime.values import immutable

# Infobip errorCode names of calls that never came up -> neutral reasons; anything else is "failed".
_FAILURE_REASONS = {
    "NO_ANSWER": "no_answer",
    "BUSY": "busy",
    "REJECTED": "rejected",
    "CANCELLED": "cancelled",
    "DESTINATION_NOT_FOUND": "unreachable",
    "INVALID_DESTINATION": "unreachable",
    "DESTINATION_UNAVAILABLE": "unreachable",
    "MACHINE_DETECTED": "machine",
}
# Words in a free-text participant ``reason`` that mean the call itself ended.
_HANGUP_WORDS = ("HANGUP", "HANG_UP", "HUNG_UP", "FINISHED", "DISCONNECT", "TERMINATED", "ENDED")
_KICK_WORDS = ("KICK", "REMOVE", "MOVE", "API")
# Infobip action types (ERROR events) -> neutral action names.
_ACTIONS = {"PLAY": "play", "SAY": "say", "SEND_DTMF": "send_dtmf", "CAPTURE_DTMF": "capture_dtmf"}
_RECORDING_FILE_PATH = "/calls/1/recordings/files/"
_DETECTED = {"HUMAN": "human", "MACHINE": "machine"}  # MACHINE_DETECTION_FINISHED's detectionResult


def failure_reason(code: str | None) -> str:
    return _FAILURE_REASONS.get(code or "", "failed")


def finished_reason(code: str | None, hangup_source: str | None) -> str:
    """Why an established call ended: who hung up, or what broke."""
    if code in (None, "", "NORMAL_HANGUP"):
        return "api_hangup" if hangup_source == "API" else "hangup"
    return failure_reason(code)


def _normalised(text: str) -> str:
    return re.sub(r"[^A-Z]+", "_", text.upper()).strip("_")


def reason_from_text(text: str | None) -> str:
    """A neutral failure reason from a free-text ``reason`` ("NO_ANSWER", "Busy", "no answer")."""
    words = _normalised(text or "")
    for code, reason in _FAILURE_REASONS.items():
        if code in words:
            return reason
    return "failed"


def left_reason(text: str | None) -> str:
    """``kicked`` when a participant was removed by a command, else ``hangup`` (its call ended).

    Infobip's ``reason`` is free text whose values are unconfirmed: words of a call ending win, then
    words of a removal (DELETE, or a move to another conference); with neither, the call ended."""
    words = _normalised(text or "")
    if any(word in words for word in _HANGUP_WORDS):
        return "hangup"
    return "kicked" if any(word in words for word in _KICK_WORDS) else "hangup"


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _obj(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _code(value: Any) -> str | None:
    """An ``errorCode`` is ``{id, name, description}`` in call logs, a plain string elsewhere."""
    if isinstance(value, dict):
        return _str(value.get("name"))
    return _str(value)


def _address(endpoint: Any) -> str | None:
    ep = _obj(endpoint)
    for key in ("phoneNumber", "identity", "username", "identifier"):
        if _str(ep.get(key)):
            return str(ep[key])
    return None


@immutable  # one per webhook event
class Envelope:
    type: str
    call_id: str | None
    conference_id: str | None
    at: float | None
    props: JSON
    raw: JSON
    recordings_base_url: str | None = None
    digest: str | None = None

    def event(
        self, name: str, *, call_id: str | None = None, conference_id: str | None = None,
        reason: str | None = None, digits: str | None = None, data: JSON | None = None,
    ) -> Event:
        """The event ``name`` this envelope brings, about the envelope's call and conference unless others
        are given. Made positionally: keywords cost more, on every webhook."""
        return Event(name, call_id or self.call_id, conference_id or self.conference_id, None, None, reason,
                     digits, {} if data is None else data, self.raw, None, self.at, self.digest)


Handler = Callable[[Envelope], list[Event]]


def _call_received(env: Envelope) -> list[Event]:
    call = _obj(env.props.get("call"))
    data = {
        "from": _str(call.get("from")) or _address(call.get("endpoint")),
        "to": _str(call.get("to")),
    }
    return [env.event("call.received", call_id=env.call_id or _str(call.get("id")), data=data)]


def _call_answered(env: Envelope) -> list[Event]:
    call = _obj(env.props.get("call"))
    if _obj(call.get("customData")).get(AMD_FIELD):
        return []  # dialled with machine detection: its answer is the detection's result, still to come
    call_id = env.call_id or _str(call.get("id"))
    return [env.event("call.answered", call_id=call_id, reason="answered")]


def _machine_detected(env: Envelope) -> list[Event]:
    """The answer of a call dialled with machine detection: who answered, as ``reason``."""
    result = _str(env.props.get("detectionResult")) or _str(
        _obj(env.props.get("machineDetection")).get("detectionResult"))
    reason = _DETECTED.get((result or "").upper(), "answered")
    confidence = env.props.get("confidenceRating")
    data = {"machine_detection": (result or "unknown").lower(), "confidence": confidence}
    return [env.event("call.answered", reason=reason, data=data)]


def _machine_detection_failed(env: Envelope) -> list[Event]:
    return [env.event("call.answered", reason="answered", data={"machine_detection": "failed"})]


def _call_log(env: Envelope) -> tuple[JSON, str | None, JSON]:
    log = _obj(env.props.get("callLog"))
    code = _code(log.get("errorCode"))
    source = _str(log.get("hangupSource"))
    data = {"error_code": code, "hangup_source": source, "duration": log.get("duration")}
    return log, code, data


def _call_finished(env: Envelope) -> list[Event]:
    log, code, data = _call_log(env)
    reason = finished_reason(code, data["hangup_source"])
    call_id = env.call_id or _str(log.get("callId"))
    return [env.event("call.finished", call_id=call_id, reason=reason, data=data)]


def _call_failed(env: Envelope) -> list[Event]:
    log, code, data = _call_log(env)
    reason = failure_reason(code or _str(log.get("state")))
    call_id = env.call_id or _str(log.get("callId"))
    return [env.event("call.failed", call_id=call_id, reason=reason, data=data)]


def _conference_id(env: Envelope) -> str | None:
    return env.conference_id or _str(_obj(env.props.get("conference")).get("id"))


def _conference_created(env: Envelope) -> list[Event]:
    name = _str(_obj(env.props.get("conference")).get("name"))
    return [env.event("conference.created", conference_id=_conference_id(env), data={"name": name})]


def _conference_finished(env: Envelope) -> list[Event]:
    code = _code(env.props.get("errorCode"))
    reason = "hangup" if code in (None, "NORMAL_HANGUP") else failure_reason(code)
    return [env.event("conference.finished", conference_id=_conference_id(env), reason=reason,
                      data={"error_code": code})]


def _participant(name: str, reason: Callable[[str | None], str] | None = None) -> Handler:
    def handle(env: Envelope) -> list[Event]:
        participant = _obj(env.props.get("participant"))
        text = _str(env.props.get("reason"))
        return [env.event(
            name,
            call_id=_str(participant.get("callId")) or env.call_id,
            conference_id=_conference_id(env),
            reason=reason(text) if reason else None,
            data={"state": _str(participant.get("state")), "detail": text},
        )]

    return handle


def _media_finished(name: str) -> Handler:
    def handle(env: Envelope) -> list[Event]:
        completed = env.props.get("playedCompletely") is not False
        dtmf = _str(env.props.get("capturedDtmf"))
        data = {"duration_ms": env.props.get("duration"), "captured_dtmf": dtmf}
        return [env.event(name, reason="completed" if completed else "stopped", data=data)]

    return handle


def _dtmf_captured(env: Envelope) -> list[Event]:
    digits = _str(env.props.get("dtmf")) or ""
    timed_out = env.props.get("timeout") is True and not digits
    return [env.event("dtmf.captured", digits=digits, reason="timeout" if timed_out else None)]


def _recording_ready(env: Envelope) -> list[Event]:
    recording = _obj(env.props.get("recording")) or env.props
    files = [_obj(f) for key in ("files", "composedFiles") for f in _list(recording.get(key))]
    ids = [str(f["id"]) for f in files if _str(f.get("id"))]
    if not ids and _str(recording.get("fileId")):
        ids = [str(recording["fileId"])]
    base = env.recordings_base_url
    urls = [f"{base}{_RECORDING_FILE_PATH}{file_id}" for file_id in ids] if base else []
    call_id = env.call_id or _str(recording.get("callId"))
    data = {"file_ids": ids, "urls": urls, "files": files}
    return [env.event("recording.ready", call_id=call_id, data=data)]


def _error(env: Envelope) -> list[Event]:
    action_type = _str(env.props.get("actionType")) or "UNKNOWN"
    action = _ACTIONS.get(action_type, action_type.lower())
    if env.call_id is None and env.conference_id and action in ("play", "say"):
        action = f"conference_{action}"
    code = _str(env.props.get("errorCode"))
    error = _str(env.props.get("errorDetails")) or code or "Infobip reported an error"
    return [env.event("action.failed", reason="error", data={"action": action, "error": error, "code": code})]


HANDLERS: Mapping[str, Handler] = {
    "CALL_RECEIVED": _call_received,
    "CALL_ESTABLISHED": _call_answered,
    "MACHINE_DETECTION_FINISHED": _machine_detected,
    "MACHINE_DETECTION_FAILED": _machine_detection_failed,
    "CALL_FINISHED": _call_finished,
    "CALL_FAILED": _call_failed,
    "CONFERENCE_CREATED": _conference_created,
    "CONFERENCE_FINISHED": _conference_finished,
    "PARTICIPANT_JOINING": _participant("participant.joining"),
    "PARTICIPANT_JOINED": _participant("participant.joined"),
    "PARTICIPANT_JOIN_FAILED": _participant("participant.join_failed", reason_from_text),
    "PARTICIPANT_REMOVED": _participant("participant.left", left_reason),
    "SAY_FINISHED": _media_finished("say.finished"),
    "PLAY_FINISHED": _media_finished("play.finished"),
    "DTMF_CAPTURED": _dtmf_captured,
    "CALL_RECORDING_READY": _recording_ready,
    "CONFERENCE_RECORDING_READY": _recording_ready,
    "ERROR": _error,
}


def _envelope(payload: Any, recordings_base_url: str | None, digest: str | None = None) -> Envelope:
    if not isinstance(payload, dict):
        raise WebhookError("an Infobip event must be a JSON object")
    kind = payload.get("type")
    if not isinstance(kind, str) or not kind:
        raise WebhookError('an Infobip event needs a "type"')
    call_id, conference_id = _str(payload.get("callId")), _str(payload.get("conferenceId"))
    return Envelope(  # type, call_id, conference_id, at, props, raw, recordings_base_url, digest
        kind, call_id, conference_id, _epoch(payload.get("timestamp")),
        _obj(payload.get("properties")), payload, recordings_base_url, digest,
    )


def parse_events(body: bytes, *, recordings_base_url: str | None = None) -> list[Event]:
    """Neutral events in one webhook body (an event object, or a list of them). ``recordings_base_url``
    (the API base URL) turns recording file ids into download URLs."""
    payload = load_json(body, "the Infobip event")
    if isinstance(payload, list):
        envelopes = [_envelope(item, recordings_base_url) for item in payload]
    else:
        envelopes = [_envelope(payload, recordings_base_url, body_digest(body))]
    events: list[Event] = []
    for env in envelopes:
        handler = HANDLERS.get(env.type)
        if handler is not None:
            events.extend(_addressed(env.type, handler(env)))
    return events


def _addressed(kind: str, events: list[Event]) -> list[Event]:
    """``events``, each of which names the call or conference it is about (else nothing could act on it)."""
    for event in events:
        if event.call_id is None and event.conference_id is None:
            raise WebhookError(f'an Infobip {kind} event needs a "callId" or a "conferenceId"')
    return events
