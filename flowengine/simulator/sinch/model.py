"""Sinch calls and conferences as the simulator holds them, and their JSON: GET call (``from``, ``to``,
``status`` ONGOING/FINAL, ``result``, ``reason``, …) and GET conference (``participants``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flowengine.simulator.legs import Leg

ONGOING, FINAL = "ONGOING", "FINAL"
# DiCE results and reasons.
ANSWERED, BUSY, NOANSWER, FAILED, NA = "ANSWERED", "BUSY", "NOANSWER", "FAILED", "N/A"
CALLERHANGUP, CALLEEHANGUP, MANAGERHANGUP = "CALLERHANGUP", "CALLEEHANGUP", "MANAGERHANGUP"
TIMEOUT, GENERALERROR, CALLBACKERROR = "TIMEOUT", "GENERALERROR", "CALLBACKERROR"

FREE = {"currencyId": "EUR", "amount": 0.0}


def recording_file(call: SinchCall, now: float, application_key: str, api_base_url: str) -> str:
    """Where a call's recording file goes (Sinch's recording page): the ``destinationUrl`` if it names a
    file; else a name Sinch makes up, ``yyyyMMddHHmmss_applicationKey_callId.format``, in that place (in
    Sinch's own store when no destination was given)."""
    options = call.recording_options
    destination = str(options.get("destinationUrl") or "")
    if destination and "." in destination.rstrip("/").rsplit("/", 1)[-1] and "://" in destination:
        return destination
    folder = destination.rstrip("/") or f"{api_base_url}/calling/v1/recording"
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d%H%M%S")
    return f"{folder}/{stamp}_{application_key}_{call.id}.{options.get('format') or 'mp3'}"


def iso(ts: float | None) -> str | None:
    """Sinch's timestamp format, e.g. ``2014-09-24T10:59:41Z``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(eq=False, kw_only=True)
class SinchCall(Leg):
    """One Sinch call (one ``callid``; a connectPstn bridge is the same call)."""

    direction: str  # "inbound" or "outbound"
    from_: dict[str, str]
    to: dict[str, str]
    domain: str = "pstn"
    custom: str | None = None
    status: str = ONGOING
    result: str = NA
    reason: str = NA
    started: float
    answered_at: float | None = None
    ended_at: float | None = None
    ace: bool = True
    dice: bool = True
    pie: bool = True  # whether conference key detection may report to the app (enablePie on callouts)
    amd: bool = False  # answering machine detection asked for (a connectPstn's amd): the ACE says who
    conference_id: str | None = None
    joined_at: float | None = None
    muted: bool = False
    onhold: bool = False
    moh: str | None = None
    recording: bool = False
    recording_options: dict[str, Any] = field(default_factory=dict)  # the startRecording's ``options``
    cookies: dict[str, str] = field(default_factory=dict)
    activity: asyncio.Task[Any] | None = field(default=None, repr=False)
    detection: asyncio.Task[Any] | None = field(default=None, repr=False)  # conference key detection
    bridge: Leg | None = field(default=None, repr=False)

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def ended(self) -> bool:
        return self.status == FINAL

    @property
    def state(self) -> str:
        """Sinch's call ``status`` (ONGOING / FINAL); ``result`` and ``reason`` say how it ended."""
        return self.status

    @property
    def cli(self) -> str:
        return self.from_.get("endpoint", "")

    def duration(self, now: float) -> int:
        if self.answered_at is None:
            return 0
        return int((self.ended_at if self.ended_at is not None else now) - self.answered_at)

    def to_json(self, now: float) -> dict[str, Any]:
        """GET /calling/v1/calls/id/{callId}."""
        return {
            "from": self.from_,
            "to": self.to,
            "domain": self.domain,
            "callId": self.id,
            "duration": self.duration(now),
            "status": self.status,
            "result": self.result,
            "reason": self.reason,
            "timestamp": iso(self.started),
            "custom": self.custom,
            "userRate": FREE,
            "debit": FREE,
        }


@dataclass(eq=False, kw_only=True)
class SinchConference:
    """A conference exists while somebody is in it; its id is chosen by the app."""

    id: str
    members: dict[str, SinchCall] = field(default_factory=dict)

    @property
    def participants(self) -> dict[str, SinchCall]:
        """The calls in the conference by call id (each with ``muted``, ``onhold``, ``moh``)."""
        return self.members

    def to_json(self, now: float) -> dict[str, Any]:
        """GET /calling/v1/conferences/id/{conferenceId}."""
        return {
            "participants": [
                {
                    "cli": call.remote,  # the participant's own number (the caller, or who was called out)
                    "id": call.id,
                    "duration": int(now - (call.joined_at or now)),
                    "muted": call.muted,
                    "onhold": call.onhold,
                }
                for call in self.members.values()
            ]
        }
