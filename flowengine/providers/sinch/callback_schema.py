"""What Sinch posts to the callback URL (ICE, ACE, DiCE, PIE, Notify) and the SVAML the service answers,
as JSON Schema 2020-12 for the service's OpenAPI description (``flowengine.server.openapi``).

Fields follow the wire reference (section 5 for callbacks, section 6 for SVAML). ``callbacks.read_callback``
needs a JSON object with a non-empty ``event`` and, for the five events it handles, a ``callid`` (or the
newer spelling ``callId``); it reads ``event`` in any case and any other field of the wrong type as absent.
So only that is required; other events are acknowledged with 200 and ignored (the last variant).
Names are component names; every ``$ref`` points into ``#/components/schemas``.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
_REF = "#/components/schemas/"


def _ref(name: str) -> Schema:
    return {"$ref": _REF + name}


def _text(description: str | None = None) -> Schema:
    schema: Schema = {"type": ["string", "null"]}
    if description:
        schema["description"] = description
    return schema


_SECONDS: Schema = {"type": ["number", "null"], "description": "Seconds."}
_MONEY: Schema = {
    "type": ["object", "null"], "properties": {"currencyId": _text(), "amount": {"type": "number"}},
}
_COMMON: dict[str, Schema] = {
    "callid": {"type": "string", "minLength": 1, "description": "The call (Sinch's spelling)."},
    "callId": {"type": "string", "minLength": 1, "description": "The call, as newer docs spell it."},
    "timestamp": _text("When it happened (ISO 8601, UTC)."),
    "version": {"type": ["integer", "null"]},
    "custom": _text("What the callout carried: flowengine's tag marks its own calls and conferences."),
    "applicationKey": _text(),
}

SCHEMAS: dict[str, Schema] = {
    "SinchIdentity": {
        "type": ["object", "null"],
        "description": "A party: ``{type: number|username|sip, endpoint}``.",
        "properties": {"type": _text("number, username or sip."), "endpoint": _text()},
    },
}

_EVENTS: tuple[tuple[str, str, dict[str, Schema]], ...] = (
    ("ice", "Incoming call: the answer is SVAML.", {
        "cli": _text("Caller ID."), "to": _ref("SinchIdentity"), "domain": _text("pstn, mxp, ..."),
        "originationType": _text(), "callResourceUrl": _text(), "userRate": _MONEY, "duration": _SECONDS,
        "rdnis": _text(), "callHeaders": {"type": ["array", "null"]},
    }),
    ("ace", "Answered call: the answer may be SVAML (default: continue).", {
        "amd": {"type": ["object", "null"], "properties": {"status": _text("human or machine."),
                                                            "reason": _text(), "duration": _SECONDS}},
    }),
    ("dice", "Disconnected call: no SVAML.", {
        "result": {"enum": ["N/A", "ANSWERED", "BUSY", "NOANSWER", "FAILED", None]},
        "reason": _text("N/A, TIMEOUT, CALLERHANGUP, CALLEEHANGUP, BLOCKED, MANAGERHANGUP, NOCREDITPARTNER, "
                        "GENERALERROR, CANCEL, USERNOTFOUND or CALLBACKERROR."),
        "duration": _SECONDS,
        "debit": _MONEY, "userRate": _MONEY, "to": _ref("SinchIdentity"), "from": _text(),
    }),
    ("pie", "A menu's result, or keys detected in a conference: the answer is SVAML.", {
        "menuResult": {
            "type": ["object", "null"],
            "properties": {
                "menuId": _text("The menu; a conference id for keys detected in that conference."),
                "type": _text("error, return, sequence, timeout, hangup or invalidinput."),
                "value": _text("The digits or the option's value."),
                "inputMethod": _text("dtmf or voice."),
            },
        },
    }),
    ("notify", "A notification (recording_finished, recording_available, ...): no SVAML.", {
        "type": _text(), "conferenceId": _text(), "destination": _text("Where the recording went."),
    }),
)
HANDLED = tuple(name for name, _, _ in _EVENTS)  # a test holds it to callbacks.HANDLERS


def any_case(*names: str) -> str:
    """A pattern matching any of ``names`` in any case (JSON Schema patterns take no flags)."""
    spelled = ("".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in name) for name in names)
    return f"^({'|'.join(spelled)})$"


def _callback(name: str, description: str, fields: dict[str, Schema]) -> Schema:
    return {
        "title": name.upper(),
        "description": description,
        "type": "object",
        "required": ["event"],
        "anyOf": [{"required": ["callid"]}, {"required": ["callId"]}],
        "properties": {
            "event": {"type": "string", "pattern": any_case(name), "examples": [name]}, **_COMMON, **fields,
        },
    }


SCHEMAS["SinchCallback"] = {
    "description": "One Sinch callback; ``event`` says which (read in any case). Other events are "
    "acknowledged with 200 and ignored.",
    "anyOf": [
        *(_callback(*event) for event in _EVENTS),
        {
            "title": "Any other event",
            "type": "object",
            "required": ["event"],
            "properties": {
                "event": {"type": "string", "minLength": 1, "not": {"pattern": any_case(*HANDLED)}},
                **_COMMON,
            },
        },
    ],
}
SCHEMAS["Svaml"] = {
    "type": "object",
    "description": "SVAML: instructions then exactly one action (the answer to an ICE, ACE or PIE).",
    "required": ["action"],
    "properties": {
        "instructions": {
            "type": "array",
            "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
            "description": "playFiles, say, sendDtmf, setCookie, answer, startRecording, stopRecording.",
        },
        "action": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}},
            "description": "hangup, continue, connectPstn, connectConf, connectSip, runMenu, park, ...",
        },
    },
}
