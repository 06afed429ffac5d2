"""What Infobip posts to the webhook (the receive and event URLs alike), as JSON Schema 2020-12 for the
service's OpenAPI description (``flowengine.server.openapi``).

Shapes follow the wire reference (section 5: the ``CallsEvent`` envelope and each type's ``properties``)
and the official client's models (``Call``, ``CallLog``, ``CallsParticipant``, ``CallsConference``).
``webhooks.parse_events`` needs little: a JSON object (or a list of them) with a non-empty ``type`` and,
for a type it handles, a ``callId`` or a ``conferenceId`` (Infobip sends the one the event is about);
it reads a field of the wrong type as absent. So only that is required, and every other field says
what Infobip sends (optional fields may be ``null``, as Infobip leaves them). Types the parser has no
handler for are acknowledged with 200 and ignored: the last variant of ``InfobipEvent`` takes any other
``type``.
Names are component names; every ``$ref`` points into ``#/components/schemas``.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
_REF = "#/components/schemas/"


def _ref(name: str) -> Schema:
    return {"$ref": _REF + name}


def _opt(kind: str, description: str | None = None, **more: Any) -> Schema:
    schema: Schema = {"type": [kind, "null"], **more}
    if description:
        schema["description"] = description
    return schema


def _text(description: str | None = None) -> Schema:
    return _opt("string", description)


def _time(description: str) -> Schema:
    return _opt("string", f"{description} (ISO 8601, e.g. 2026-01-01T10:00:00.000+00:00).")


def _obj(properties: dict[str, Schema], description: str, required: tuple[str, ...] = ()) -> Schema:
    schema: Schema = {"type": "object", "description": description, "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


_STRINGS = {"type": ["object", "null"], "additionalProperties": {"type": "string"}}
_CALL_STATES = ["CALLING", "RINGING", "PRE_ESTABLISHED", "ESTABLISHED", "FINISHED", "FAILED", "CANCELLED",
                "NO_ANSWER", "BUSY"]
_DIRECTION = {"enum": ["INBOUND", "OUTBOUND", None]}
_PLATFORM = _obj({"applicationId": _text(), "entityId": _text()}, "Infobip's application and entity.")

SCHEMAS: dict[str, Schema] = {
    "InfobipEndpoint": _obj(
        {
            "type": {"enum": ["PHONE", "SIP", "WEBRTC", "VIBER", "WHATSAPP", "WEBSOCKET"]},
            "phoneNumber": _text(), "username": _text(), "sipTrunkId": _text(), "identity": _text(),
            "displayName": _text(), "identifier": _text(), "websocketEndpointConfigId": _text(),
            "customHeaders": _STRINGS,
        },
        "A call's endpoint; ``type`` says which fields it has. The caller's address is read from the "
        "first of phoneNumber, identity, username, identifier.",
    ),
    "InfobipErrorCode": {
        "description": "An errorCode: ``{id, name, description}`` in call logs, a plain name elsewhere.",
        "anyOf": [
            _obj({"id": _opt("integer"), "name": _text("E.g. NORMAL_HANGUP, NO_ANSWER, BUSY."),
                  "description": _text()}, "A structured error code."),
            {"type": ["string", "null"]},
        ],
    },
    "InfobipCall": _obj(
        {
            "id": {"type": "string"}, "endpoint": _ref("InfobipEndpoint"),
            "from": _text("Caller ID."), "to": _text("Callee ID: routes pick a flow by it."),
            "direction": _DIRECTION, "state": {"enum": [*_CALL_STATES, None]},
            "media": {"type": ["object", "null"]}, "startTime": _time("Start"),
            "answerTime": _time("Answer"), "endTime": _time("End"), "parentCallId": _text(),
            "ringDuration": _opt("integer", "Seconds."), "callsConfigurationId": _text(),
            "platform": _PLATFORM, "conferenceId": _text(), "dialogId": _text(), "customData": _STRINGS,
            "externalId": _text(),
        },
        "A call (Infobip's ``Call``).",
    ),
    "InfobipCallLog": _obj(
        {
            "callId": _text(), "endpoint": _ref("InfobipEndpoint"), "from": _text(), "to": _text(),
            "direction": _DIRECTION, "state": _text("The call's final state (a failure reason if no code)."),
            "startTime": _time("Start"), "answerTime": _time("Answer"), "endTime": _time("End"),
            "duration": _opt("integer", "Seconds established."), "ringDuration": _opt("integer"),
            "errorCode": _ref("InfobipErrorCode"),
            "hangupSource": {"enum": ["ENDPOINT", "API", "PLATFORM", None]},
            "conferenceIds": {"type": ["array", "null"], "items": {"type": "string"}},
            "callsConfigurationIds": {"type": ["array", "null"], "items": {"type": "string"}},
            "platform": _PLATFORM, "customData": _STRINGS, "externalId": _text(),
        },
        "How a call ended (Infobip's ``CallLog``).",
    ),
    "InfobipParticipant": _obj(
        {
            "callId": _text(), "endpoint": _ref("InfobipEndpoint"),
            "state": {"enum": ["JOINING", "JOINED", "LEFT", None]}, "joinTime": _time("Joined"),
            "leaveTime": _time("Left"), "media": {"type": ["object", "null"]},
            "role": {"type": ["object", "null"], "properties": {"type": _text("DEFAULT, ADVISOR, ...")}},
        },
        "A conference participant (Infobip's ``CallsParticipant``).",
    ),
    "InfobipConference": _obj(
        {
            "id": _text(), "name": _text(), "callsConfigurationId": _text(), "platform": _PLATFORM,
            "participants": {"type": ["array", "null"], "items": _ref("InfobipParticipant")},
        },
        "A conference (Infobip's ``CallsConference``).",
    ),
    "InfobipRecording": _obj(
        {
            "callId": _text(), "fileId": _text(),
            "files": {"type": ["array", "null"], "items": _obj({"id": _text()}, "A recorded file.")},
            "composedFiles": {"type": ["array", "null"], "items": _obj({"id": _text()}, "A composed file.")},
        },
        "A finished recording: its files' ids become download URLs in the ``recording.ready`` event.",
    ),
}

# Types of one properties shape (reference section 5), in the parser's order.
_VARIANTS: tuple[tuple[str, tuple[str, ...], Schema], ...] = (
    ("Call state", ("CALL_RECEIVED", "CALL_ESTABLISHED"), _obj(
        {"call": _ref("InfobipCall"), "apiBaseUrl": _text(), "sender": _text(), "resolvedCnam": _text()},
        "The call as it is now.")),
    ("Call ended", ("CALL_FINISHED", "CALL_FAILED"), _obj(
        {"callLog": _ref("InfobipCallLog")}, "How the call ended.")),
    ("Conference", ("CONFERENCE_CREATED", "CONFERENCE_FINISHED"), _obj(
        {"conference": _ref("InfobipConference"), "apiBaseUrl": _text(),
         "errorCode": _ref("InfobipErrorCode")}, "The conference.")),
    ("Participant", ("PARTICIPANT_JOINING", "PARTICIPANT_JOINED", "PARTICIPANT_JOIN_FAILED",
                     "PARTICIPANT_REMOVED"), _obj(
        {"participant": _ref("InfobipParticipant"),
         "reason": _text("Free text, on JOIN_FAILED and REMOVED.")}, "The participant.")),
    ("Media finished", ("SAY_FINISHED", "PLAY_FINISHED"), _obj(
        {"duration": _opt("integer", "Milliseconds played."), "playedCompletely": _opt("boolean"),
         "capturedDtmf": _text(), "customData": _STRINGS}, "A say or play ended.")),
    ("Keys", ("DTMF_CAPTURED",), _obj(
        {"dtmf": _text("The digits."), "timeout": _opt("boolean"), "customData": _STRINGS},
        "Digits captured.")),
    ("Recording", ("CALL_RECORDING_READY", "CONFERENCE_RECORDING_READY"), _obj(
        {"recording": _ref("InfobipRecording"), "fileId": _text(), "files": {"type": ["array", "null"]}},
        "A recording is ready (as ``recording``, or its fields inline).")),
    ("Machine detection", ("MACHINE_DETECTION_FINISHED", "MACHINE_DETECTION_FAILED"), _obj(
        {"detectionResult": {"enum": ["HUMAN", "MACHINE", None]}, "confidenceRating": _opt("number")},
        "Who answered a call dialled with machine detection (its answer, for the flow).")),
    ("Error", ("ERROR",), _obj(
        {"actionType": _text("PLAY, SAY, SEND_DTMF, CAPTURE_DTMF, ..."), "errorCode": _text(),
         "errorDetails": _text()}, "An accepted action failed later.")),
)
HANDLED = tuple(kind for _, kinds, _ in _VARIANTS for kind in kinds)  # a test holds it to HANDLERS


# A handled event names the call or conference it is about (``webhooks._addressed`` refuses it otherwise):
# Infobip sends ``callId`` (call events) or ``conferenceId`` (conference events) at the top.
_ADDRESSED = [{"required": [key], "properties": {key: {"type": "string", "minLength": 1}}}
              for key in ("callId", "conferenceId")]


def _envelope(type_schema: Schema, properties: Schema, title: str, *, handled: bool = True) -> Schema:
    return {
        "title": title,
        "type": "object",
        "required": ["type"],
        **({"anyOf": _ADDRESSED} if handled else {}),
        "properties": {
            "type": type_schema,
            "callId": _text("The call the event is about."),
            "conferenceId": _text("The conference the event is about."),
            "dialogId": _text(), "bulkId": _text(),
            "timestamp": _opt("string", "When it happened (ISO 8601); an event further than "
                              "`INFOBIP_WEBHOOK_MAX_SKEW` (default 300 s) from now is refused (401)."),
            "callsConfigurationId": _text(), "platform": _PLATFORM,
            "properties": properties,
        },
    }


SCHEMAS["InfobipEvent"] = {
    "description": "One Infobip Calls event (``CallsEvent``): ``type`` says what happened; ``properties`` "
    "depend on it. Events of other types (CALL_RINGING, CALL_MEDIA_CHANGED, ...: 65 in all) are "
    "acknowledged with 200 and ignored.",
    "anyOf": [
        *(_envelope({"enum": list(kinds)}, props, title) for title, kinds, props in _VARIANTS),
        _envelope({"type": "string", "minLength": 1, "not": {"enum": list(HANDLED)}},
                  {"type": ["object", "null"]}, "Any other type", handled=False),
    ],
}
SCHEMAS["InfobipWebhookBody"] = {
    "description": "An event, or a list of events (each handled in turn).",
    "oneOf": [_ref("InfobipEvent"), {"type": "array", "items": _ref("InfobipEvent")}],
}
