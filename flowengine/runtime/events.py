"""Neutral events: what every provider adapter turns its platform's webhooks into."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import field
from typing import Any

from flowengine.runtime.values import immutable

# What a command that failed for good becomes (``executor``): the flow handles it like any event.
ACTION_FAILED = "action.failed"


@immutable  # two made per webhook event
class Event:
    """A neutral event. Adapters fill ``call_id``/``conference_id``; the engine resolves the role names
    (``call``, ``conference``) from the session, so flows never see raw ids unless they ask."""

    name: str  # one of flowengine.flow.vocabulary.EVENTS, or an engine-internal timer event
    call_id: str | None = None
    conference_id: str | None = None
    call: str | None = None  # role name, filled by the engine
    conference: str | None = None  # role name, filled by the engine
    reason: str | None = None  # one of vocabulary.REASONS
    digits: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)  # neutral extras (from, to, recording url, ...)
    raw: Mapping[str, Any] = field(default_factory=dict)  # the provider's payload, untouched
    event_id: str | None = None  # the provider's delivery id, when it has one
    at: float | None = None  # epoch seconds when the platform says it happened
    digest: str | None = None  # hash of the delivery's raw bytes (``body_digest``), set by the adapter

    def dedupe_key(self) -> str:
        """The provider's id, else the delivery's digest, else a hash of the payload (events made without
        the raw bytes, as in tests). A retried delivery repeats the same bytes, so its digest matches."""
        if self.event_id:
            return f"id:{self.event_id}"
        if self.digest:
            return f"sha256:{self.digest}"
        basis = self.raw or {
            "name": self.name, "call_id": self.call_id, "conference_id": self.conference_id,
            "reason": self.reason, "digits": self.digits, "data": dict(self.data), "at": self.at,
        }
        digest = hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()
        return f"sha256:{digest[:32]}"

    def context(self) -> dict[str, Any]:
        """What templates and guards see as ``event``."""
        return {
            "name": self.name, "call": self.call, "call_id": self.call_id, "conference": self.conference,
            "conference_id": self.conference_id, "reason": self.reason, "digits": self.digits,
            "data": dict(self.data), "raw": dict(self.raw),
        }


def body_digest(body: bytes) -> str:
    """The ``digest`` of the one event a webhook body holds: hashing the bytes costs a fraction of
    serialising the parsed payload again. (Events of a body holding several keep the payload hash.)"""
    return hashlib.sha256(body).hexdigest()[:32]
