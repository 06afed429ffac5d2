"""A session as the store keeps it: every field survives a copy and a round trip (conferences, their states,
the outbox, deferred events, when the platform was last asked), and documents written before the newer
fields existed still read, with their defaults."""

from __future__ import annotations

import json
from typing import Any

from flowengine.runtime.session import Session, Step


def full() -> Session:
    return Session(
        "s-1", "flow", 3, "talking", vars={"n": 1}, calls={"caller": "c-1", "agent": "c-2"},
        conferences={"room": "conf-1"}, call_states={"c-1": "up", "c-2": "ended"},
        conference_states={"conf-1": "active"}, timers={"after:talking:5s#4": ("talking", "5s", 105.0)},
        seen={"id:e-1": None}, trace=[Step(100.0, "call.received", None, "talking", note="n")],
        status="active", created=100.0, updated=101.5, revision=7, seq=4,
        outbox={"event": None, "commands": [], "next": 0, "failures": 0, "due": 111.5},
        deferred={"d-1": {"due": 120.0, "event": {"name": "call.finished"}}}, checked=101.0,
        origin={"kind": "api", "request": "r-1"}, flow_hash="sha256:0123abcd",
    )


def test_a_copy_keeps_every_field() -> None:
    """The dispatcher amends a copy (a deferred event, the time the platform was asked) and saves it: a
    field the copy dropped (an interrupted plan's outbox) would be lost for good."""
    session = full()
    copy = session.copy()
    assert copy == session
    copy.conferences["other"] = "conf-2"
    assert "other" not in session.conferences


def test_every_field_survives_the_store() -> None:
    session = full()
    assert Session.from_json(json.loads(json.dumps(session.to_json()))) == session


def test_a_document_from_before_the_newer_fields_reads_with_their_defaults() -> None:
    old: dict[str, Any] = {"schema_version": 1, "id": "s-1", "flow": "flow", "flow_version": 3,
                           "state": "talking", "status": "active"}
    session = Session.from_json(old)
    numbers = (session.created, session.updated, session.checked, session.revision, session.seq)
    assert numbers == (0, 0, 0, 0, 0)
    assert (session.conferences, session.conference_states, session.outbox) == ({}, {}, None)
    assert (session.deferred, session.trace, session.seen) == ({}, [], {})
