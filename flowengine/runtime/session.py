"""The session: one run of a flow, small enough to keep thousands in memory and plain enough to store.

``to_json()``/``from_json()`` use plain JSON types only, so any store can keep a session as one document.
The runtime never changes ``revision``: a store compares it on save (optimistic concurrency) and bumps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from flowengine.errors import StoreError

SCHEMA_VERSION = 1
TRACE_LIMIT = 32  # steps kept per session: a whole typical call, bounded
# Event keys kept per session. The replay defence is the store-wide memory the service keeps (``replay_ttl``);
# this short one, saved with the session's state, covers what that mark cannot: a redelivery after an
# engine died between saving a step and marking its event, two copies racing, timers, derived events.
SEEN_LIMIT = 32

Status = Literal["new", "active", "ended", "failed"]
# (action, status, detail): status is ok | error | skipped; detail is an id, an error or a log line.
CommandRecord = tuple[str, str, str | None]
# (state, key as written, due epoch seconds)
TimerEntry = tuple[str, str, float]

# States of the calls and conferences the session owns, so it knows what to hang up.
RINGING, DIALING, UP, ACTIVE, ENDED = "ringing", "dialing", "up", "active", "ended"


@dataclass(slots=True, init=False)
class Step:
    """One entry of the trace: an event, where it led, what the guards said and what was sent."""

    at: float
    event: str
    source: str | None
    target: str | None
    guards: tuple[tuple[str, bool], ...] = ()
    commands: tuple[CommandRecord, ...] = ()  # a tuple: most steps have none, and it packs tighter
    note: str | None = None
    # Seconds each command took, send to outcome (retries included), by position in ``commands``; None
    # where unknown (skipped, or recorded before latencies were kept).
    latencies: tuple[float | None, ...] = ()
    _doc: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def __init__(
        self, at: float, event: str, source: str | None, target: str | None,
        guards: tuple[tuple[str, bool], ...] = (), commands: tuple[CommandRecord, ...] = (),
        note: str | None = None, latencies: tuple[float | None, ...] = (),
    ) -> None:
        put = object.__setattr__  # past the cache-dropping __setattr__: nothing is cached yet
        put(self, "at", at)
        put(self, "event", event)
        put(self, "source", source)
        put(self, "target", target)
        put(self, "guards", guards)
        put(self, "commands", commands)
        put(self, "note", note)
        put(self, "latencies", latencies)
        put(self, "_doc", None)

    def __setattr__(self, name: str, value: Any) -> None:
        # Any change drops the JSON form ``to_json`` keeps (the executor adds to ``commands`` as it runs).
        object.__setattr__(self, name, value)
        if name != "_doc":
            object.__setattr__(self, "_doc", None)

    def to_json(self) -> dict[str, Any]:
        """The step as plain JSON, built once and shared until the step changes: read it, never change it.
        Sharing keeps every save from rebuilding (and the garbage collector from rescanning) the trace."""
        doc = self._doc
        if doc is None:
            doc = {
                "at": self.at, "event": self.event, "from": self.source, "to": self.target,
                "guards": [[expr, ok] for expr, ok in self.guards],
                "commands": [list(record) for record in self.commands], "note": self.note,
            }
            if self.latencies:
                doc["latency"] = list(self.latencies)
            object.__setattr__(self, "_doc", doc)
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Step:
        guards, commands, latency = doc.get("guards"), doc.get("commands"), doc.get("latency")
        return cls(
            float(doc["at"]), str(doc["event"]), doc.get("from"), doc.get("to"),
            tuple((str(expr), bool(ok)) for expr, ok in guards) if guards else (),
            tuple((str(a), str(s), d) for a, s, d in commands) if commands else (),
            doc.get("note"), tuple(None if s is None else float(s) for s in latency) if latency else (),
        )


@dataclass(slots=True)
class Session:
    """The state of one run. Engine.handle returns a fresh copy; the executor updates the copy it is given."""

    id: str
    flow: str
    flow_version: int
    state: str
    vars: dict[str, Any] = field(default_factory=dict)
    calls: dict[str, str] = field(default_factory=dict)  # role -> call id
    conferences: dict[str, str] = field(default_factory=dict)  # role -> conference id
    call_states: dict[str, str] = field(default_factory=dict)  # call id -> ringing|dialing|up|ended
    conference_states: dict[str, str] = field(default_factory=dict)  # conference id -> active|ended
    timers: dict[str, TimerEntry] = field(default_factory=dict)  # timer id -> (state, key, due)
    seen: dict[str, None] = field(default_factory=dict)  # dedupe keys, oldest first (an ordered set)
    trace: list[Step] = field(default_factory=list)
    status: Status = "new"
    created: float = 0.0
    updated: float = 0.0
    revision: int = 0
    seq: int = 0  # events handled; makes timer ids unique
    # A plan written ahead and not yet finished (``runtime.outbox``): plain JSON, None at rest.
    outbox: dict[str, Any] | None = None
    # Events to handle later, kept with the session so any instance fires them (Sinch's derived
    # follow-ups): event id -> {"due": epoch seconds, "event": ``outbox.event_to_json``}.
    deferred: dict[str, dict[str, Any]] = field(default_factory=dict)
    checked: float = 0.0  # when the platform was last asked about this session's calls (reconcile)
    # How it was started, when not by an inbound call: an outbound start's request (``engine.START``),
    # kept so a retried request can be told from another one reusing its idempotency key.
    origin: dict[str, Any] | None = None
    # The version of the flow it started on (``flow/version.py``: a hash of the resolved source), which it
    # runs to its end even when a newer one is loaded; None where versions are not kept (scenario runs).
    flow_hash: str | None = None

    def copy(self) -> Session:
        """A copy whose containers can change without touching this one (values are never mutated)."""
        return Session(  # ``.copy()``: cheaper than ``dict()``, one per event
            self.id, self.flow, self.flow_version, self.state, self.vars.copy(), self.calls.copy(),
            self.conferences.copy(), self.call_states.copy(), self.conference_states.copy(),
            self.timers.copy(), self.seen.copy(), self.trace.copy(), self.status, self.created, self.updated,
            self.revision, self.seq, self.outbox, self.deferred.copy(), self.checked, self.origin,
            self.flow_hash,
        )

    # -- bounded memories ---------------------------------------------------------------------------
    def remember(self, key: str) -> None:
        self.seen[key] = None
        if len(self.seen) > SEEN_LIMIT:
            del self.seen[next(iter(self.seen))]

    def record(self, step: Step, limit: int = TRACE_LIMIT) -> Step:
        self.trace.append(step)
        if len(self.trace) > limit:
            del self.trace[: len(self.trace) - limit]
        return step

    # -- roles ----------------------------------------------------------------------------------------
    def call_role(self, call_id: str | None) -> str | None:
        return _role_of(self.calls, call_id)

    def conference_role(self, conference_id: str | None) -> str | None:
        return _role_of(self.conferences, conference_id)

    def live_calls(self) -> list[str]:
        """Roles of owned calls that have not ended, in the order they were bound."""
        return [role for role, cid in self.calls.items() if self.call_states.get(cid, UP) != ENDED]

    def live_conferences(self) -> list[str]:
        return [role for role, cid in self.conferences.items() if self.conference_states.get(cid) != ENDED]

    # -- storage ---------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The session as plain JSON: fresh containers, but each trace step's document is shared with
        earlier calls (``Step.to_json``), so read the result and never change it."""
        # Made on every save (25 per seed call): ``.copy()`` rather than ``dict()``, and a step's kept
        # document read here rather than through a call per step, each cost less.
        timers = self.timers
        return {
            "schema_version": SCHEMA_VERSION, "id": self.id, "flow": self.flow,
            "flow_version": self.flow_version, "state": self.state, "status": self.status,
            "vars": self.vars.copy(), "calls": self.calls.copy(),
            "conferences": self.conferences.copy(), "call_states": self.call_states.copy(),
            "conference_states": self.conference_states.copy(),
            "timers": {tid: {"state": s, "key": k, "due": due} for tid, (s, k, due) in timers.items()}
            if timers else {},
            "seen": list(self.seen), "trace": [step._doc or step.to_json() for step in self.trace],
            "created": self.created, "updated": self.updated, "revision": self.revision, "seq": self.seq,
            "outbox": self.outbox, "deferred": self.deferred.copy(), "checked": self.checked,
            "origin": self.origin, "flow_hash": self.flow_hash,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Session:
        """Read what ``to_json`` wrote; a document it cannot read is a ``StoreError``."""
        version = doc.get("schema_version")
        if version != SCHEMA_VERSION:
            raise StoreError(f"unsupported session schema_version {version!r} (expected {SCHEMA_VERSION})")
        try:
            return cls._read(doc)
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"unreadable session document: {exc!r}") from exc

    @classmethod
    def _read(cls, doc: Mapping[str, Any]) -> Session:
        return cls(
            id=str(doc["id"]), flow=str(doc["flow"]), flow_version=int(doc["flow_version"]),
            state=str(doc["state"]), status=doc["status"], vars=dict(doc.get("vars") or {}),
            calls=dict(doc.get("calls") or {}), conferences=dict(doc.get("conferences") or {}),
            call_states=dict(doc.get("call_states") or {}),
            conference_states=dict(doc.get("conference_states") or {}),
            timers={tid: (str(t["state"]), str(t["key"]), float(t["due"]))
                    for tid, t in (doc.get("timers") or {}).items()},
            seen=dict.fromkeys(doc.get("seen") or ()),
            trace=[Step.from_json(step) for step in doc.get("trace") or ()],
            created=float(doc.get("created", 0.0)), updated=float(doc.get("updated", 0.0)),
            revision=int(doc.get("revision", 0)), seq=int(doc.get("seq", 0)),
            outbox=dict(doc["outbox"]) if doc.get("outbox") else None,
            deferred=dict(doc.get("deferred") or {}), checked=float(doc.get("checked", 0.0)),
            origin=dict(doc["origin"]) if doc.get("origin") else None,
            flow_hash=str(doc["flow_hash"]) if doc.get("flow_hash") else None,
        )


def _role_of(owned: Mapping[str, str], platform_id: str | None) -> str | None:
    """The role bound to ``platform_id`` (roles are few: a scan beats keeping a reverse index)."""
    if platform_id is not None:
        for role, known in owned.items():
            if known == platform_id:
                return role
    return None
