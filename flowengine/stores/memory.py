"""In-process session store: for tests, simulations and single-shot runs. Nothing survives the process.

Every method runs without awaiting, so each is atomic with respect to other asyncio tasks. Data is kept
as a JSON copy, so callers mutating their dicts never change what is stored, except a sealed record's
(``SessionRecord.sealed``): its writer vouches for it, so it is kept and handed back as it is.

Only the ``hot`` sessions written last are kept so; the others (a parked call, an ended one) are kept cold:
their whole record as one compressed JSON document, read back on demand. An idle session then costs its
document's compressed size (~1 KB for a call on hold) instead of the ~10 KB of objects a record holds.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from flowengine.errors import ConflictError, StoreError
from flowengine.stores.base import (
    FINISHED,
    HOT_SESSIONS,
    Census,
    Claim,
    DueTimer,
    LocalLocks,
    Now,
    Pace,
    SessionRecord,
    TimerKind,
    check_paging,
    check_record,
    check_ttl,
    dump_json,
    next_slot,
    record_from_doc,
    record_to_doc,
    tally,
)


@dataclass(slots=True)  # not frozen: made on every put, where a frozen one's __init__ costs far more
class _Entry:
    """A hot session: its record as written (never changed once made)."""

    record: SessionRecord  # with its revision; ``data`` is {} unless the record is sealed
    data_json: str | None  # the unsealed record's data as JSON (None when sealed)

    def get(self) -> SessionRecord:
        if self.data_json is None:
            return self.record
        record = self.record
        return SessionRecord(record.id, record.flow, record.state, record.status, json.loads(self.data_json),
                             dict(record.timers), record.call_ids, record.conference_ids, record.updated_at,
                             record.revision)

    def cooled(self) -> _Cold:
        record = self.get()
        return _Cold(record.flow, record.state, record.status, record.updated_at, record.revision,
                     zlib.compress(record_to_doc(record).encode(), _LEVEL))

    # What listings and the census read, alike hot or cold.
    @property
    def flow(self) -> str:
        return self.record.flow

    @property
    def state(self) -> str:
        return self.record.state

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def updated_at(self) -> float:
        return self.record.updated_at


# zlib's fastest level: a parked call's 2-3 KB document shrinks about threefold in ~15 µs, paid once when
# the session goes cold; the higher levels gain a few per cent for several times the time.
_LEVEL = 1


@dataclass(frozen=True, slots=True)
class _Cold:
    """A session not written lately: what listings read, and the rest in one compressed document (one
    object the garbage collector never scans, instead of the record's dozens of containers)."""

    flow: str
    state: str
    status: str
    updated_at: float
    revision: int
    blob: bytes  # ``record_to_doc``, compressed

    def get(self) -> SessionRecord:
        return record_from_doc(zlib.decompress(self.blob), self.revision)


def _stored(record: SessionRecord, revision: int, data_json: str | None, old: SessionRecord | None) -> _Entry:
    """What ``put`` keeps. What equals the previous version's is shared with it rather than kept twice
    (fewer long-lived objects: every put replaces them, and the garbage collector rescans survivors). A
    sealed record is handed over by its writer (``SessionRecord.sealed``): it is kept itself, stamped with
    its revision, instead of a second record made per put; an unsealed one is copied (``data_json``)."""
    timers: Mapping[str, float] = record.timers
    if old is not None and old.timers == timers:
        timers = old.timers
    elif not record.sealed:
        timers = dict(timers)
    calls = old.call_ids if old is not None and old.call_ids == record.call_ids else record.call_ids
    conferences = record.conference_ids
    if old is not None and old.conference_ids == conferences:
        conferences = old.conference_ids
    if data_json is None:  # sealed
        record.timers, record.call_ids, record.conference_ids = timers, calls, conferences
        record.revision = revision
        return _Entry(record, None)
    # Field by field: dataclasses.replace costs several times more.
    kept = SessionRecord(record.id, record.flow, record.state, record.status, {}, timers, calls, conferences,
                         record.updated_at, revision)
    return _Entry(kept, data_json)


_CLAIMS_SWEEP = 1024
_UNCLAIMED_KEPT = 256  # digests kept for a claim to come (``MemoryStore.claimed``): some in flight at once


def _digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


class MemoryStore:
    """``SessionStore`` held in dicts; ``hot``: how many of the sessions written last are kept as records
    (the rest are kept cold)."""

    def __init__(self, *, now: Now = time.time, hot: int = HOT_SESSIONS) -> None:
        if hot < 1:
            raise ValueError(f"hot must be at least 1, not {hot!r}")
        self._now = now
        self._entries: dict[str, _Entry | _Cold] = {}
        self._hot: dict[str, None] = {}  # the ids of the hot entries, the least recently written first
        self._hot_size = hot
        self._calls: dict[str, str] = {}
        self._conferences: dict[str, str] = {}
        self._timers: dict[tuple[str, str], float] = {}
        # Keyed by a 16-byte digest of the claim's key: a key is some 60 characters and a parked call holds
        # one per webhook event for ``replay_ttl`` (a 128-bit digest: a collision is out of reach).
        self._claims: dict[bytes, float] = {}
        self._claims_high = _CLAIMS_SWEEP  # size at which expired claims are swept out
        # Keys ``claimed`` found unclaimed -> their digest, for the claim that usually follows (the service
        # asks about a webhook event's mark, then claims it with the step's save): one digest per event.
        self._unclaimed: dict[str, bytes] = {}
        self._slots: dict[str, float] = {}  # token bucket -> its horizon (``take_slot``)
        self._flow_sources: dict[str, str] = {}  # flow version -> resolved source
        self._locks = LocalLocks()
        self._closed = False

    async def get(self, session_id: str) -> SessionRecord | None:
        self._check_open()
        entry = self._entries.get(session_id)
        return None if entry is None else entry.get()

    async def put(
        self, record: SessionRecord, *, expected_revision: int | None, claim: Claim | None = None
    ) -> int:
        self._check_open()
        check_record(record)
        if claim is not None:
            check_ttl(claim.ttl)
        data_json = None if record.sealed else dump_json(record.data)
        old = self._entries.get(record.id)
        current = None if old is None else old.revision if isinstance(old, _Cold) else old.record.revision
        if current != expected_revision:
            raise ConflictError(
                f"session {record.id!r} is at revision {current}, not {expected_revision} as expected"
            )
        revision = (current or 0) + 1
        before = None if old is None else old.get() if isinstance(old, _Cold) else old.record
        kept = _stored(record, revision, data_json, before)  # after every check: a sealed record is changed
        self._entries[record.id] = kept
        self._heat(record.id)
        # Most puts change no index: ``_stored`` shares what equals the previous version's, and what is
        # shared needs no unindexing (the ids are claimed again all the same: the latest writer owns them).
        if before is not None and before.call_ids is not kept.record.call_ids:
            self._unindex_ids(self._calls, before.id, before.call_ids)
        if before is not None and before.conference_ids is not kept.record.conference_ids:
            self._unindex_ids(self._conferences, before.id, before.conference_ids)
        self._calls.update(dict.fromkeys(record.call_ids, record.id))
        self._conferences.update(dict.fromkeys(record.conference_ids, record.id))
        if before is None or before.timers is not kept.record.timers:
            self._reindex_timers(record, {} if before is None else before.timers)
        if claim is not None:
            self._claim(claim.key, claim.ttl)
        return revision

    async def session_for_call(self, call_id: str) -> str | None:
        self._check_open()
        return self._calls.get(call_id)

    async def session_for_conference(self, conference_id: str) -> str | None:
        self._check_open()
        return self._conferences.get(conference_id)

    async def due_timers(self, now: float, limit: int = 100) -> list[DueTimer]:
        self._check_open()
        check_paging(limit, 0)
        due = sorted((at, sid, tid) for (sid, tid), at in self._timers.items() if at <= now)
        return [DueTimer(sid, tid, at) for at, sid, tid in due[:limit]]

    async def next_due(self) -> float | None:
        self._check_open()
        return min(self._timers.values(), default=None)

    async def list_sessions(
        self, *, status: str | None = None, flow: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[SessionRecord]:
        self._check_open()
        check_paging(limit, offset)
        matching = [
            (entry.updated_at, session_id, entry)
            for session_id, entry in self._entries.items()
            if (status is None or entry.status == status) and (flow is None or entry.flow == flow)
        ]
        matching.sort(key=lambda found: found[:2], reverse=True)
        return [entry.get() for _, _, entry in matching[offset : offset + limit]]

    async def census(self, kind: TimerKind) -> Census:
        self._check_open()
        entries = self._entries.values()
        live = ((entry.flow, entry.state) for entry in entries if entry.status == "active")
        return tally(live, (timer_id for _, timer_id in self._timers), kind)

    async def claim(self, key: str, ttl: float) -> bool:
        self._check_open()
        check_ttl(ttl)
        return self._claim(key, ttl)

    def _claim(self, key: str, ttl: float) -> bool:
        now = self._now()
        digest = self._unclaimed.pop(key, None) or _digest(key)
        expires = self._claims.get(digest)
        if expires is not None and expires > now:
            return False
        self._claims[digest] = now + ttl
        if len(self._claims) >= self._claims_high:  # amortised: a sweep at most each doubling
            self._claims = {k: expires for k, expires in self._claims.items() if expires > now}
            self._claims_high = max(_CLAIMS_SWEEP, 2 * len(self._claims))
        return True

    async def claimed(self, key: str) -> bool:
        self._check_open()
        digest = _digest(key)
        expires = self._claims.get(digest)
        if expires is not None and expires > self._now():
            return True
        unclaimed = self._unclaimed
        if len(unclaimed) >= _UNCLAIMED_KEPT:  # asked about and never claimed (a step that failed): bounded
            unclaimed.clear()
        unclaimed[key] = digest
        return False

    def lock(self, session_id: str) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(session_id)

    async def take_slot(self, key: str, pace: Pace, now: float) -> float | None:
        self._check_open()
        wait, horizon = next_slot(self._slots.get(key), pace, now)
        if horizon is not None:
            self._slots[key] = horizon
        return wait

    async def slot_horizon(self, key: str) -> float | None:
        self._check_open()
        return self._slots.get(key)

    async def put_flow_source(self, version: str, source: str) -> None:
        self._check_open()
        self._flow_sources.setdefault(version, source)

    async def flow_source(self, version: str) -> str | None:
        self._check_open()
        return self._flow_sources.get(version)

    async def delete(self, session_id: str) -> None:
        self._check_open()
        entry = self._entries.pop(session_id, None)
        self._hot.pop(session_id, None)
        if entry is not None:
            self._unindex(entry.get())

    async def purge_ended(self, older_than: float) -> int:
        self._check_open()
        doomed = [
            session_id
            for session_id, entry in self._entries.items()
            if entry.status in FINISHED and entry.updated_at < older_than
        ]
        for session_id in doomed:
            self._hot.pop(session_id, None)
            self._unindex(self._entries.pop(session_id).get())
        now = self._now()
        self._claims = {key: expires for key, expires in self._claims.items() if expires > now}
        return len(doomed)

    async def ping(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        self._closed = True

    def _heat(self, session_id: str) -> None:
        """``session_id`` was just written: last to go cold. The least recently written hot one goes cold
        when there are more than ``hot``."""
        hot = self._hot
        hot.pop(session_id, None)
        hot[session_id] = None
        if len(hot) > self._hot_size:
            coldest = next(iter(hot))
            del hot[coldest]
            entry = self._entries[coldest]
            assert isinstance(entry, _Entry), "a hot id names a hot entry"
            self._entries[coldest] = entry.cooled()

    def _unindex(self, record: SessionRecord) -> None:
        self._unindex_ids(self._calls, record.id, record.call_ids)
        self._unindex_ids(self._conferences, record.id, record.conference_ids)
        self._unindex_timers(record)

    @staticmethod
    def _unindex_ids(index: dict[str, str], session_id: str, ids: frozenset[str]) -> None:
        for ref in ids:
            if index.get(ref) == session_id:  # an id another session has since taken over stays with it
                del index[ref]

    def _reindex_timers(self, record: SessionRecord, before: Mapping[str, float]) -> None:
        """The timer index after ``record`` replaced a version whose timers were ``before``: only the
        entries that changed are written (most puts only move the quiet timer), in the same order."""
        timers, session_id = self._timers, record.id
        for timer_id, due in record.timers.items():
            if before.get(timer_id) != due:
                timers[(session_id, timer_id)] = due
        for timer_id in before:
            if timer_id not in record.timers:
                timers.pop((session_id, timer_id), None)

    def _unindex_timers(self, record: SessionRecord) -> None:
        for timer_id in record.timers:
            self._timers.pop((record.id, timer_id), None)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the memory store is closed")
