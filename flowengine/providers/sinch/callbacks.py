"""Sinch callbacks (ICE, ACE, DiCE, PIE, Notify) -> neutral events, and their authentication.

``event`` names the callback and ``callid`` the call. Sinch has no delivery id, so each event gets one
made of a hash of the payload and the event name: a redelivered callback is a duplicate, while the two
events of one callback (an ACE for a conference leg) stay distinct.

Calls we place carry a ``CalloutTag`` in ``custom``, which every callback about them brings back: that
is how an ACE or DiCE knows the call is a conference leg, and which conference. An ACE without our tag
can only be the dialled leg of a ``connectPstn`` bridge (inbound calls get no ACE otherwise); the
bridged party is addressed as ``bridge_id(callid)``, since Sinch gives it no call id of its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flowengine.errors import WebhookAuthError, WebhookError
from flowengine.providers.base import JSON, WebhookRequest, lower_headers
from flowengine.providers.intake import load_json
from flowengine.providers.sinch import signing
from flowengine.providers.sinch.config import SinchSettings
from flowengine.providers.sinch.svaml import MENU_ID
from flowengine.runtime.binding import PLACED_BY
from flowengine.runtime.events import Event

BRIDGE_SUFFIX = "~callee"
# Sinch's callout reference: placing a customCallout raises an ICE asking how to connect it (unless the
# request inlines that SVAML). It becomes this engine-internal event, which no flow handles: it names
# the callout to its session (PLACED_BY) and its reply connects the call (the adapter's channel).
CALLOUT_ICE = "callout"
_TAG_KEY = "flowengine"
# DiCE of a call that never came up: result (or, for N/A, reason) -> neutral reason.
_FAILED_RESULTS = {"NOANSWER": "no_answer", "BUSY": "busy", "FAILED": "failed"}
_FAILED_REASONS = {
    "TIMEOUT": "no_answer", "CANCEL": "cancelled", "MANAGERHANGUP": "cancelled", "CALLERHANGUP": "cancelled",
    "BLOCKED": "rejected", "USERNOTFOUND": "unreachable",
}
# DiCE of an answered call: who or what ended it.
_FINISHED_REASONS = {
    "CALLERHANGUP": "hangup", "CALLEEHANGUP": "hangup", "MANAGERHANGUP": "api_hangup", "TIMEOUT": "timeout",
    "GENERALERROR": "failed", "CALLBACKERROR": "failed", "NOCREDITPARTNER": "failed",
}
# Reasons of a failed DiCE that mean the inbound call itself went wrong, not a bridged dial.
_OWN_FAILURES = frozenset({"CALLERHANGUP", "CALLBACKERROR"})
_MENU_REASONS = {"timeout": "timeout", "hangup": "hangup", "error": "error", "invalidinput": "error"}
# An ACE's amd.status (machine, human, notsure, hangup) -> the answer's reason; the rest say "answered".
_DETECTED = {"machine": "machine", "human": "human"}
# Sinch's recording page: recording_finished says a recording stopped (no file yet), recording_available
# that its file is stored at ``destination``; only that one is a ready recording.
_RECORDING_READY = "recording_available"


def failed_reason(result: str, why: str) -> str:
    """Why a call that never came up ended: its ``result``, or for N/A its ``reason``."""
    return _FAILED_RESULTS.get(result) or _FAILED_REASONS.get(why, "failed")


def finished_reason(why: str) -> str:
    """Why an answered call ended."""
    return _FINISHED_REASONS.get(why, "hangup")


def bridge_id(call_id: str) -> str:
    return call_id + BRIDGE_SUFFIX


def split_bridge(call_id: str) -> tuple[str, bool]:
    """(Sinch's call id, whether ``call_id`` names the bridged party of that call)."""
    if call_id.endswith(BRIDGE_SUFFIX):
        return call_id.removesuffix(BRIDGE_SUFFIX), True
    return call_id, False


@dataclass(frozen=True, slots=True)
class CalloutTag:
    """What a callout we place carries in ``custom``: the conference it dials into, if any, and the
    correlation key of the command that placed it (so a callout whose answer was lost is still known)."""

    conference_id: str | None = None
    key: str | None = None
    amd: bool = False  # placed with answering machine detection: its ACE says who answered

    def encode(self) -> str:
        mark: dict[str, Any] = {"conference": self.conference_id} if self.conference_id else {}
        if self.key:
            mark["key"] = self.key
        if self.amd:
            mark["amd"] = True
        return json.dumps({_TAG_KEY: mark}, separators=(",", ":"))

    @classmethod
    def decode(cls, custom: Any) -> CalloutTag | None:
        """The tag in a callback's ``custom``; None when the call is not one of our callouts."""
        if not isinstance(custom, str) or _TAG_KEY not in custom:
            return None
        try:  # the caller's own text when the call is not ours: held to the same limits as a body
            mark = load_json(custom.encode("utf-8", "surrogatepass"), "custom").get(_TAG_KEY)
        except (WebhookError, AttributeError):
            return None
        if not isinstance(mark, dict):
            return None
        conference, key = mark.get("conference"), mark.get("key")
        return cls(conference if isinstance(conference, str) and conference else None,
                   key if isinstance(key, str) and key else None, mark.get("amd") is True)


# -- authentication --------------------------------------------------------------------------------
def verify(request: WebhookRequest, settings: SinchSettings, now: float | None = None) -> None:
    """Raise ``WebhookAuthError`` unless the callback carries the credentials ``settings`` asks for:
    a signature (``Application key:signature``, any case, with ``x-timestamp``) or Basic key:secret."""
    credentials = signing.parse_authorization(lower_headers(request.headers).get("authorization"))
    if credentials is None:
        raise WebhookAuthError("missing or unreadable Sinch callback credentials")
    wanted = "application" if settings.callback_auth == "signed" else "basic"
    if credentials.scheme != wanted:
        raise WebhookAuthError(f"Sinch callbacks must be {settings.callback_auth} here")
    ok = signing.verify(
        request.headers, application_key=settings.application_key,
        application_secret=settings.application_secret, method=request.method, path=request.path,
        body=request.body, allow_basic=wanted == "basic", max_skew=settings.callback_max_skew, now=now,
    )
    if not ok:
        raise WebhookAuthError("wrong Sinch callback signature or credentials")


# -- parsing ---------------------------------------------------------------------------------------
def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _obj(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class Callback:
    kind: str  # ice | ace | dice | pie | notify
    call_id: str
    tag: CalloutTag | None
    payload: JSON
    digest: str

    def event(self, name: str, **fields: Any) -> Event:
        fields.setdefault("call_id", self.call_id)
        if self.tag is not None and self.tag.key and fields["call_id"] == self.call_id:
            # What placed the call: names it to a session that bound it before Sinch named it.
            fields["data"] = {**fields.get("data", {}), PLACED_BY: self.tag.key}
        suffix = f":{fields['call_id']}" if fields["call_id"] != self.call_id else ""
        return Event(name=name, raw=self.payload, at=_epoch(self.payload.get("timestamp")),
                     event_id=f"sinch:{self.digest}:{name}{suffix}", **fields)

    @property
    def conference_id(self) -> str | None:
        return self.tag.conference_id if self.tag else None


def _ice(cb: Callback) -> list[Event]:
    """An inbound call, or the ICE Sinch raises for a customCallout of ours (its ``custom`` carries our
    tag): that one is the callout's own event, never a new session (``CALLOUT_ICE``)."""
    data = {"from": _str(cb.payload.get("cli")), "to": _str(_obj(cb.payload.get("to")).get("endpoint")),
            "domain": _str(cb.payload.get("domain"))}
    return [cb.event(CALLOUT_ICE if cb.tag is not None else "call.received", data=data)]


def _ace(cb: Callback) -> list[Event]:
    amd = _obj(cb.payload.get("amd"))
    data = {"amd": _str(amd.get("status"))}
    if cb.tag is None:  # the dialled party of a connectPstn bridge answered
        return [cb.event("call.answered", call_id=bridge_id(cb.call_id), reason="answered", data=data)]
    reason = "answered"
    if cb.tag.amd:  # placed with machine detection: who answered is the answer's reason
        status = (data["amd"] or "").lower()
        reason = _DETECTED.get(status, "answered")
        data = {**data, "machine_detection": status or "unknown", "amd_reason": _str(amd.get("reason"))}
    events = [cb.event("call.answered", reason=reason, data=data)]
    if cb.conference_id:
        events.append(cb.event("participant.joined", conference_id=cb.conference_id))
    return events


def _dice(cb: Callback) -> list[Event]:
    result = str(cb.payload.get("result") or "N/A").upper()
    why = str(cb.payload.get("reason") or "N/A").upper()
    data = {"result": result, "detail": why, "duration": cb.payload.get("duration")}
    conference = cb.conference_id
    events: list[Event] = []
    if result == "ANSWERED":
        if conference:
            left = "kicked" if why == "MANAGERHANGUP" else "hangup"
            events.append(cb.event("participant.left", conference_id=conference, reason=left, data=data))
        events.append(cb.event("call.finished", reason=finished_reason(why), data=data))
        if cb.tag is None and why == "CALLEEHANGUP":  # the bridged party hung up
            bridged = bridge_id(cb.call_id)
            events.append(cb.event("call.finished", call_id=bridged, reason="hangup", data=data))
        return events
    reason = failed_reason(result, why)
    if conference:
        events.append(cb.event("participant.join_failed", conference_id=conference, reason=reason, data=data))
    events.append(cb.event("call.failed", reason=reason, data=data))
    if cb.tag is None and why not in _OWN_FAILURES:
        events.append(cb.event("call.failed", call_id=bridge_id(cb.call_id), reason=reason, data=data))
    return events


def _pie(cb: Callback) -> list[Event]:
    """A menu's result, or keys a conference participant pressed (``conferenceDtmfOptions`` detect):
    Sinch then reports the conference id as ``menuId`` and the type ``sequence``; the event carries
    that conference id, which marks it as such (see ``from_conference``)."""
    menu = _obj(cb.payload.get("menuResult"))
    kind = str(menu.get("type") or "error").lower()
    digits = str(menu.get("value") or "") if kind not in ("timeout", "hangup") else ""
    menu_id = _str(menu.get("menuId"))
    conference = menu_id if menu_id is not None and menu_id != MENU_ID else None
    data = {"menu": menu_id, "type": kind, "input": _str(menu.get("inputMethod"))}
    return [cb.event("dtmf.captured", digits=digits, conference_id=conference, reason=_MENU_REASONS.get(kind),
                     data=data)]


def from_conference(event: Event) -> bool:
    """Whether ``event`` reports keys detected in a conference (rather than a menu's result)."""
    return event.name == "dtmf.captured" and event.conference_id is not None


def _notify(cb: Callback) -> list[Event]:
    """``destination`` is where the recording file went (a URL), never a party's number."""
    kind = str(cb.payload.get("type") or "").lower()
    if kind != _RECORDING_READY:
        return []
    destination = _str(cb.payload.get("destination"))
    urls = [destination] if destination and "://" in destination else []
    data = {"type": kind, "destination": destination, "urls": urls,
            "conference_id": _str(cb.payload.get("conferenceId"))}
    return [cb.event("recording.ready", data=data)]


HANDLERS: Mapping[str, Callable[[Callback], list[Event]]] = {
    "ice": _ice, "ace": _ace, "dice": _dice, "pie": _pie, "notify": _notify,
}


def read_callback(body: bytes) -> Callback | None:
    """The callback in ``body``; None for an event type we do not know. ``WebhookError`` if malformed."""
    payload = load_json(body, "the Sinch callback")
    if not isinstance(payload, dict):
        raise WebhookError("a Sinch callback must be a JSON object")
    kind = payload.get("event")
    if not isinstance(kind, str) or not kind:
        raise WebhookError('a Sinch callback needs an "event"')
    kind = kind.lower()
    if kind not in HANDLERS:
        return None
    call_id = _str(payload.get("callid")) or _str(payload.get("callId"))  # newer docs spell it callId
    if call_id is None:
        raise WebhookError(f'a Sinch {kind} callback needs a "callid"')
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    digest = hashlib.sha256(canonical).hexdigest()[:24]
    return Callback(kind, call_id, CalloutTag.decode(payload.get("custom")), payload, digest)


def parse_callback(body: bytes) -> list[Event]:
    """Neutral events of one callback body (none for types no flow reacts to)."""
    callback = read_callback(body)
    return HANDLERS[callback.kind](callback) if callback is not None else []
