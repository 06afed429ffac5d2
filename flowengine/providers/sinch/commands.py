"""Sinch Calling API v1 requests (method, path, JSON body) and the neutral values they carry. Pure.

Callouts place calls; conferences are managed by id (Sinch creates one when the first call joins and
ends it when the last leaves); a call takes SVAML by PATCH (actions hangup, continue, park only) and
plays prompts on one of its legs. Moving a call into a conference, collecting digits or bridging
happen only in a callback's SVAML reply (``svaml.ReplyBuilder``), never here.
"""

from __future__ import annotations

import json
from typing import Literal

from flowengine.errors import ProviderError
from flowengine.providers.base import JSON
from flowengine.providers.sinch.callbacks import CalloutTag
from flowengine.providers.sinch.svaml import connect_pstn, continue_, svaml
from flowengine.providers.wire import Request, segment
from flowengine.runtime.ports import Endpoint, Music

CALLOUTS = "/calling/v1/callouts"
Leg = Literal["caller", "callee", "both"]
ParticipantCommand = Literal["mute", "unmute", "onhold", "resume"]


def _call(call_id: str, suffix: str = "") -> str:
    return f"/calling/v1/calls/id/{segment(call_id)}{suffix}"


def _conf(conference_id: str, suffix: str = "") -> str:
    return f"/calling/v1/conferences/id/{segment(conference_id)}{suffix}"


def number(address: str) -> str:
    """E.164 as Sinch wants it: flows write numbers without ``+`` (as Infobip does)."""
    digits = address.strip().replace(" ", "").replace("-", "")
    if digits.startswith("00"):
        digits = digits[2:]
    return digits if digits.startswith("+") else "+" + digits


def destination(to: Endpoint) -> JSON:
    if to.kind == "phone":
        return {"type": "number", "endpoint": number(to.address)}
    if to.kind == "sip":
        return {"type": "sip", "endpoint": to.address.removeprefix("sip:")}
    if to.kind in ("user", "webrtc"):
        return {"type": "username", "endpoint": to.address}
    raise ProviderError(f"Sinch cannot call endpoints of kind {to.kind!r}")


def _callout(method: str, spec: JSON) -> Request:
    return Request("POST", CALLOUTS, {"method": method, method: spec})


def _caller_id(cli: str | None) -> JSON:
    return {"cli": number(cli)} if cli else {}


# -- callouts --------------------------------------------------------------------------------------
def conference_callout(
    conference_id: str, to: Endpoint, cli: str | None, *, moh: Music | None = None,
    greeting: str | None = None, locale: str | None = None, dtmf: JSON | None = None, key: str | None = None,
) -> Request:
    """Dial ``to`` straight into the conference, with ACE and DiCE so the flow hears how it went; the
    tag in ``custom`` tells those callbacks which conference the call is for. ``dtmf`` is the
    participant's ``conferenceDtmfOptions``; with it we also ask for PIEs (whether detected keys need
    ``enablePie`` is unconfirmed: asking costs nothing)."""
    spec: JSON = {
        **_caller_id(cli), "destination": destination(to), "conferenceId": conference_id,
        "enableAce": True, "enableDice": True, "custom": CalloutTag(conference_id, key).encode(),
    }
    if dtmf is not None:
        spec["conferenceDtmfOptions"] = dtmf
        spec["enablePie"] = True
    if moh is not None:
        spec["mohClass"] = moh
    if greeting:
        spec["greeting"] = greeting
    if locale:
        spec["locale"] = locale
    return _callout("conferenceCallout", spec)


def custom_callout(
    to: Endpoint, cli: str | None, key: str | None = None, machine_detection: bool = False,
    dial_timeout: int = 60,
) -> Request:
    """A plain outbound call whose events (ACE, PIE, DiCE) reach the callback URL like any other. With
    ``machine_detection`` its inline ``ice`` SVAML connects the number with ``amd`` enabled (how Sinch's
    AMD docs set it up for callouts), and the tag says so: the ACE then reports who answered."""
    tag = CalloutTag(key=key, amd=machine_detection).encode()
    spec: JSON = {**_caller_id(cli), "destination": destination(to), "custom": tag}
    if machine_detection:
        if to.kind != "phone":
            raise ProviderError("Sinch detects answering machines on calls to phone numbers only")
        pstn = connect_pstn(number(to.address), number(cli) if cli else None, dial_timeout, amd=True)
        spec["ice"] = json.dumps(svaml([], pstn), separators=(",", ":"))
    return _callout("customCallout", spec)


def refuse_amd(asked: bool, what: str) -> None:
    """Sinch's answering machine detection is a ``connectPstn``'s: a call placed otherwise cannot ask."""
    if asked:
        raise ProviderError(f"Sinch detects answering machines on a dial of its own (a customCallout "
                            f"connecting the number), not on {what}")


def tts_callout(to: Endpoint, cli: str | None, text: str, locale: str) -> Request:
    """Call, speak ``text`` and hang up (a notification call), reporting only its DiCE."""
    spec: JSON = {
        **_caller_id(cli), "destination": destination(to), "text": text, "locale": locale,
        "enableDice": True, "custom": CalloutTag().encode(),
    }
    return _callout("ttsCallout", spec)


# -- calls -----------------------------------------------------------------------------------------
def get_call(call_id: str) -> Request:
    return Request("GET", _call(call_id))


def update_call(call_id: str, instructions: list[JSON], action: JSON) -> Request:
    """SVAML on a running call; Sinch accepts the actions hangup, continue and park here."""
    return Request("PATCH", _call(call_id), svaml(instructions, action))


def manage_leg(call_id: str, leg: Leg, instructions: list[JSON]) -> Request:
    """say / playFiles on one leg, alongside whatever the call is doing. The body is SVAML, and a SVAML
    object carries exactly one action (Sinch's SVAML reference): ``continue``, so the call carries on."""
    return Request("PATCH", _call(call_id, f"/leg/{leg}"), svaml(instructions, continue_()))


# -- conferences -----------------------------------------------------------------------------------
def conference_info(conference_id: str) -> Request:
    return Request("GET", _conf(conference_id))


def kick_all(conference_id: str) -> Request:
    return Request("DELETE", _conf(conference_id))


def manage_participant(
    conference_id: str, call_id: str, command: ParticipantCommand, moh: Music | None = None
) -> Request:
    body: JSON = {"command": command}
    if command == "onhold" and moh is not None:  # Sinch refuses moh with any other command
        body["moh"] = moh
    return Request("PATCH", _conf(conference_id, f"/{segment(call_id)}"), body)


def kick_participant(conference_id: str, call_id: str) -> Request:
    """Sinch disconnects the kicked participant's call (its DiCE says MANAGERHANGUP)."""
    return Request("DELETE", _conf(conference_id, f"/{segment(call_id)}"))
