"""Reading Sinch's answers, and the ids the adapter chooses for Sinch (which has no create call for a
conference)."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from flowengine.errors import ProviderError
from flowengine.providers.base import JSON

_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def conference_id_for(name: str | None, key: str | None = None) -> str:
    """A new conference id (Sinch creates the conference when the first call joins it): the name made
    safe, plus a part made of the command's key (random without one), so two sessions naming their rooms
    alike still get a room each, and the same command carried out again names the same room."""
    slug = _SLUG.sub("-", name or "").strip("-")[:40]
    unique = hashlib.sha256(key.encode()).hexdigest() if key else uuid.uuid4().hex
    return f"{slug}-{unique[:12]}" if slug else unique[:32]


def callout_id(answer: JSON) -> str:
    value = answer.get("callId") or answer.get("callid")  # the reference says callId, the docs callid
    if not isinstance(value, str) or not value:
        raise ProviderError("Sinch's answer to the callout has no call id")
    return value


def participants(answer: JSON) -> list[dict[str, Any]]:
    """Neutral view of GET conference's participants (``conference_info``)."""
    body = answer.get("ConferenceInfoResponse", answer)  # the published sample wraps it
    listed = body.get("participants") if isinstance(body, dict) else None
    return [
        {"call_id": item.get("id"), "state": "joined", "address": item.get("cli"),
         "muted": bool(item.get("muted", False)), "on_hold": bool(item.get("onhold", False)),
         "duration": item.get("duration")}
        for item in listed or [] if isinstance(item, dict)
    ]
