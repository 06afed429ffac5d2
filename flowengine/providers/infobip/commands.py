"""Neutral actions -> Infobip Calls API requests (method, path, JSON body). Pure functions.

Bodies follow today's API (``infobip-api-python-client`` 6.0.0 models), not the 2022 article: calls and
conferences bind to ``callsConfigurationId``; adding an existing call to a conference is a PUT.
"""

from __future__ import annotations

import math
from urllib.parse import urlencode

from flowengine.errors import ProviderError
from flowengine.providers.base import JSON
from flowengine.providers.infobip.capabilities import MAX_CONNECT_TIMEOUT
from flowengine.providers.wire import Request, segment
from flowengine.runtime.ports import Endpoint, Media

KEY_FIELD = "flowengineKey"  # the correlation key in a dialled call's customData (a string map)
# In the customData of a call dialled with machine detection: its CALL_ESTABLISHED is not yet the answer
# the flow hears; MACHINE_DETECTION_FINISHED (or _FAILED) is, with who answered (``webhooks.py``).
AMD_FIELD = "flowengineAmd"
PAGE_SIZE = 100  # Infobip's largest page
_HANGUP_CODES = {"hangup": "NORMAL_HANGUP", "busy": "BUSY", "rejected": "REJECTED"}


def _call(call_id: str, suffix: str = "") -> str:
    return f"/calls/1/calls/{segment(call_id)}{suffix}"


def _conf(conference_id: str, suffix: str = "") -> str:
    return f"/calls/1/conferences/{segment(conference_id)}{suffix}"


def _member(conference_id: str, call_id: str) -> str:
    return _conf(conference_id, f"/call/{segment(call_id)}")


def connect_timeout(seconds: float) -> int:
    """Whole seconds, at least 1 and at most Infobip's 60."""
    return max(1, min(MAX_CONNECT_TIMEOUT, math.ceil(seconds)))


def endpoint(to: Endpoint, sip_trunk_id: str | None = None) -> JSON:
    if to.kind == "phone":
        # Infobip numbers are digits in international format, without the "+".
        return {"type": "PHONE", "phoneNumber": to.address.strip().lstrip("+").replace(" ", "")}
    if to.kind in ("webrtc", "user"):
        return {"type": "WEBRTC", "identity": to.address}
    if to.kind == "sip":
        if not sip_trunk_id:
            raise ProviderError("dialling SIP on Infobip needs a SIP trunk id (INFOBIP_SIP_TRUNK_ID)")
        username = to.address.removeprefix("sip:").split("@", 1)[0]
        return {"type": "SIP", "username": username, "sipTrunkId": sip_trunk_id}
    raise ProviderError(f"Infobip cannot dial endpoints of kind {to.kind!r}")


def play_content(media: Media) -> JSON:
    if media.file_id:
        return {"type": "FILE", "fileId": media.file_id}
    if media.url:
        return {"type": "URL", "fileUrl": media.url}
    raise ProviderError("play needs a file_id or a url")


def _say_body(text: str, language: str, voice: str | None, loop: int) -> JSON:
    body: JSON = {"text": text, "language": language.lower(), "loopCount": max(1, loop)}
    if voice:
        body["preferences"] = {"voiceGender": voice.upper()}
    return body


def _call_request(
    to: Endpoint, from_: str | None, timeout: float, sip_trunk_id: str | None, key: str | None,
    machine_detection: bool = False,
) -> JSON:
    request: JSON = {"endpoint": endpoint(to, sip_trunk_id), "connectTimeout": connect_timeout(timeout)}
    if from_:
        request["from"] = from_
    custom = {KEY_FIELD: key} if key else {}
    if machine_detection:
        request["machineDetection"] = {"enabled": True}
        custom[AMD_FIELD] = "true"
    if custom:
        request["customData"] = custom
    return request


# -- calls ---------------------------------------------------------------------------------------
def answer(call_id: str) -> Request:
    return Request("POST", _call(call_id, "/answer"), {})


def hangup_code(reason: str | None, established: bool) -> str | None:
    """The hangup ``errorCode`` for the flow's ``reason``, if it fits the call's state: NORMAL_HANGUP only
    ends an established call, BUSY and REJECTED only one not yet established (Infobip's hangup
    reference). A reason that does not fit gives none: the call is hung up plainly."""
    code = _HANGUP_CODES.get(reason or "")
    return code if code is not None and (code == "NORMAL_HANGUP") == established else None


def hangup(call_id: str, error_code: str | None) -> Request:
    body: JSON = {"errorCode": error_code} if error_code else {}
    return Request("POST", _call(call_id, "/hangup"), body)


def say(call_id: str, text: str, language: str, voice: str | None, loop: int) -> Request:
    return Request("POST", _call(call_id, "/say"), _say_body(text, language, voice, loop))


def play(call_id: str, media: Media, loop: int) -> Request:
    body = {"content": play_content(media), "loopCount": max(1, loop)}
    return Request("POST", _call(call_id, "/play"), body)


def stop_play(call_id: str) -> Request:
    return Request("POST", _call(call_id, "/stop-play"), {})


def record(call_id: str, max_duration: float | None, beep: bool) -> Request:
    recording: JSON = {"recordingType": "AUDIO"}
    if beep:
        recording["beep"] = True
    if max_duration is not None:
        recording["maxDuration"] = max(1, math.ceil(max_duration))
    return Request("POST", _call(call_id, "/start-recording"), {"recording": recording})


def stop_record(call_id: str) -> Request:
    return Request("POST", _call(call_id, "/stop-recording"))


def capture_dtmf(
    call_id: str, max_digits: int, timeout: float, terminator: str | None, prompt: str | None, language: str
) -> Request:
    body: JSON = {"maxLength": max(1, max_digits), "timeout": max(1, round(timeout * 1000))}
    if terminator:
        body["terminator"] = terminator
    if prompt:
        body["playContent"] = {"type": "TEXT", "text": prompt, "language": language.lower()}
    return Request("POST", _call(call_id, "/capture/dtmf"), body)


def send_dtmf(call_id: str, digits: str) -> Request:
    return Request("POST", _call(call_id, "/send-dtmf"), {"dtmf": digits})


def dial(
    to: Endpoint, from_: str | None, timeout: float, connect_call_id: str | None, *,
    calls_configuration_id: str, sip_trunk_id: str | None = None, key: str | None = None,
    machine_detection: bool = False,
) -> Request:
    """A new outbound call; with ``connect_call_id``, one bridged to that call once answered (the
    connected call inherits the existing call's configuration: that request has no configuration id).
    ``key`` goes into the call's ``customData``, where a reconcile finds it; ``machine_detection`` asks
    for ``machineDetection`` (the answer then says who answered)."""
    call_request = _call_request(to, from_, timeout, sip_trunk_id, key, machine_detection)
    if connect_call_id is not None:
        return Request("POST", _call(connect_call_id, "/connect"), {"callRequest": call_request})
    return Request("POST", "/calls/1/calls", {**call_request, "callsConfigurationId": calls_configuration_id})


# -- conferences ---------------------------------------------------------------------------------
def conference_create(name: str | None, *, calls_configuration_id: str) -> Request:
    body: JSON = {"callsConfigurationId": calls_configuration_id}
    if name:
        body["name"] = name
    return Request("POST", "/calls/1/conferences", body)


def conference_join(conference_id: str, call_id: str) -> Request:
    return Request("PUT", _member(conference_id, call_id), {})


def conference_dial(
    conference_id: str, to: Endpoint, from_: str | None, timeout: float, *, sip_trunk_id: str | None = None,
    key: str | None = None, machine_detection: bool = False,
) -> Request:
    # The add-new-call model has no callsConfigurationId: the call belongs to the conference's.
    body = {"callRequest": _call_request(to, from_, timeout, sip_trunk_id, key, machine_detection)}
    return Request("POST", _conf(conference_id, "/call"), body)


def conference_say(conference_id: str, text: str, language: str) -> Request:
    return Request("POST", _conf(conference_id, "/say"), {"text": text, "language": language.lower()})


def conference_play(conference_id: str, media: Media, loop: int) -> Request:
    body = {"content": play_content(media), "loopCount": max(1, loop)}
    return Request("POST", _conf(conference_id, "/play"), body)


def conference_stop_play(conference_id: str) -> Request:
    return Request("POST", _conf(conference_id, "/stop-play"))


def conference_record(conference_id: str) -> Request:
    return Request("POST", _conf(conference_id, "/start-recording"), {"recordingType": "AUDIO"})


def conference_stop_record(conference_id: str) -> Request:
    return Request("POST", _conf(conference_id, "/stop-recording"))


def conference_hangup(conference_id: str) -> Request:
    return Request("POST", _conf(conference_id, "/hangup"))


def conference_info(conference_id: str) -> Request:
    return Request("GET", _conf(conference_id))


# -- queries (reconciliation) --------------------------------------------------------------------
def get_call(call_id: str) -> Request:
    return Request("GET", _call(call_id))


def list_calls(page: int, *, history: bool = False, **filters: str) -> Request:
    """GET /calls (live calls) or /calls/history (ended ones), filtered as the API allows (``direction``,
    ``conferenceId``, ``to``, ...); ``customData`` is no filter, so the caller pages through."""
    query = urlencode({**filters, "page": page, "size": PAGE_SIZE})
    return Request("GET", f"/calls/1/calls{'/history' if history else ''}?{query}")


def list_conferences(name: str, page: int = 0) -> Request:
    query = urlencode({"name": name, "page": page, "size": PAGE_SIZE})
    return Request("GET", f"/calls/1/conferences?{query}")


def update_participant(conference_id: str, call_id: str, *, muted: bool | None = None,
                       deaf: bool | None = None) -> Request:
    """mute/unmute (``muted``) and deafen/undeafen (``deaf``)."""
    body: JSON = {}
    if muted is not None:
        body["muted"] = muted
    if deaf is not None:
        body["deaf"] = deaf
    return Request("PATCH", _member(conference_id, call_id), body)


def kick(conference_id: str, call_id: str) -> Request:
    """Remove the participant; Infobip keeps the call itself up (the adapter's kick hangs it up next)."""
    return Request("DELETE", _member(conference_id, call_id))

