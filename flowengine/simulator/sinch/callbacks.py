"""Sinch callback bodies (ICE, ACE, DiCE, PIE, Notify) with Sinch's field names: ``event`` is the
lower-case event name and the call id key is ``callid``."""

from __future__ import annotations

from typing import Any

from flowengine.simulator.parties import DETECTION_SECONDS
from flowengine.simulator.sinch.model import FREE, SinchCall, iso


def _common(event: str, call: SinchCall, now: float, application_key: str) -> dict[str, Any]:
    return {
        "event": event,
        "callid": call.id,
        "timestamp": iso(now),
        "version": 1,
        "custom": call.custom,
        "applicationKey": application_key,
    }


def ice(call: SinchCall, now: float, application_key: str, api_base_url: str) -> dict[str, Any]:
    """Incoming call: the reply must be SVAML."""
    return {
        **_common("ice", call, now, application_key),
        "callResourceUrl": f"{api_base_url}/calling/v1/calls/id/{call.id}",
        "userRate": FREE,
        "cli": call.cli,
        "to": call.to,
        "domain": call.domain,
        "originationType": call.domain,
        "duration": 0,
        "rdnis": "",
        "callHeaders": [],
    }


def ace(call: SinchCall, now: float, application_key: str) -> dict[str, Any]:
    """Answered call event; the reply may be SVAML (default: continue). With machine detection asked for
    (and only then, as on Sinch) it carries ``amd{status, reason, duration}``."""
    body = _common("ace", call, now, application_key)
    if call.amd:
        machine = call.script.machine
        body["amd"] = {"status": "machine" if machine else "human",
                       "reason": "longgreeting" if machine else "n/a", "duration": int(DETECTION_SECONDS)}
    return body


def dice(call: SinchCall, now: float, application_key: str) -> dict[str, Any]:
    """Disconnected call event; no reply expected."""
    return {
        **_common("dice", call, now, application_key),
        "reason": call.reason,
        "result": call.result,
        "debit": FREE,
        "userRate": FREE,
        "to": call.to,
        "duration": call.duration(now),
        "from": call.cli,
    }


def pie(call: SinchCall, now: float, application_key: str, menu_result: dict[str, Any]) -> dict[str, Any]:
    """Prompt input event: ``menuResult{menuId, type, value, inputMethod}``; the reply is SVAML."""
    return {**_common("pie", call, now, application_key), "menuResult": menu_result}


def notify(call: SinchCall, type_: str, destination: str | None = None) -> dict[str, Any]:
    """Notification; no reply expected. Sinch's recording page: ``recording_finished`` says a recording
    stopped, ``recording_available`` that its file is at ``destination`` (where the file went: the
    recording's destinationUrl, not a party's number)."""
    body: dict[str, Any] = {
        "event": "notify",
        "callid": call.id,
        "conferenceId": call.conference_id,
        "version": 1,
        "type": type_,
        "custom": call.custom,
    }
    if destination is not None:
        body["destination"] = destination
    return body
