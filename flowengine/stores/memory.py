"""In-process session store: for tests, simulations and single-shot runs. Nothing survives the process.

Every method runs without awaiting, so each is atomic with respect to other asyncio tasks.
"""

from __future__ import annotations

import json
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace

from flowengine.errors import ConflictError, StoreError
from flowengine.stores.base import (
    FINISHED,
    DueTimer,
    LocalLocks,
    Now,
    SessionRecord,
    check_paging,
    check_record,
    check_ttl,
    dump_json,
)


@dataclass(frozen=True)
class _Entry:
    record: SessionRecord  # with its revision; ``data`` is kept separately as JSON
    data_json: str  # a copy, so callers mutating their dicts never change what is stored


class MemoryStore:
    """``SessionStore`` held in dicts."""

    def __init__(self, *, now: Now = time.time) -> None:
        self._now = now
        self._entries: dict[str, _Entry] = {}
        self._calls: dict[str, str] = {}
        self._conferences: dict[str, str] = {}
        self._timers: dict[tuple[str, str], float] = {}
        self._claims: dict[str, float] = {}
        self._locks = LocalLocks()
        self._closed = False

    async def get(self, session_id: str) -> SessionRecord | None:
        self._check_open()
        entry = self._entries.get(session_id)
        if entry is None:
            return None
        return replace(entry.record, data=json.loads(entry.data_json))

    async def put(self, record: SessionRecord, *, expected_revision: int | None) -> int:
        self._check_open()
        check_record(record)
        data_json = dump_json(record.data)
        old = self._entries.get(record.id)
        current = None if old is None else old.record.revision
        if current != expected_revision:
            raise ConflictError(
                f"session {record.id!r} is at revision {current}, not {expected_revision} as expected"
            )
        if old is not None:
            self._unindex(old.record)
        revision = (current or 0) + 1
        stored = replace(record, data={}, timers=dict(record.timers), revision=revision)
        self._entries[record.id] = _Entry(stored, data_json)
        self._calls.update(dict.fromkeys(record.call_ids, record.id))
        self._conferences.update(dict.fromkeys(record.conference_ids, record.id))
        self._timers.update({(record.id, tid): due for tid, due in record.timers.items()})
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
            entry
            for entry in self._entries.values()
            if (status is None or entry.record.status == status)
            and (flow is None or entry.record.flow == flow)
        ]
        matching.sort(key=lambda entry: (entry.record.updated_at, entry.record.id), reverse=True)
        return [replace(e.record, data=json.loads(e.data_json)) for e in matching[offset : offset + limit]]

    async def claim(self, key: str, ttl: float) -> bool:
        self._check_open()
        check_ttl(ttl)
        now = self._now()
        expires = self._claims.get(key)
        if expires is not None and expires > now:
            return False
        self._claims[key] = now + ttl
        return True

    def lock(self, session_id: str) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(session_id)

    async def delete(self, session_id: str) -> None:
        self._check_open()
        entry = self._entries.pop(session_id, None)
        if entry is not None:
            self._unindex(entry.record)

    async def purge_ended(self, older_than: float) -> int:
        self._check_open()
        doomed = [
            entry.record
            for entry in self._entries.values()
            if entry.record.status in FINISHED and entry.record.updated_at < older_than
        ]
        for record in doomed:
            del self._entries[record.id]
            self._unindex(record)
        now = self._now()
        self._claims = {key: expires for key, expires in self._claims.items() if expires > now}
        return len(doomed)

    async def ping(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        self._closed = True

    def _unindex(self, record: SessionRecord) -> None:
        # An id another session has since taken over stays with that session.
        for index, ids in ((self._calls, record.call_ids), (self._conferences, record.conference_ids)):
            for ref in ids:
                if index.get(ref) == record.id:
                    del index[ref]
        for timer_id in record.timers:
            self._timers.pop((record.id, timer_id), None)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the memory store is closed")
