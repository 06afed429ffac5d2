"""SQLite session store (the default): one file, WAL mode, one aiosqlite connection.

aiosqlite runs statements one by one on a worker thread but lets asyncio tasks interleave between them, so
every operation here holds ``_mutex`` to keep one task's transaction from absorbing another's statements.
Writes use ``BEGIN IMMEDIATE`` so a check-then-write is atomic even if another process opens the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from flowengine.errors import ConfigError, ConflictError, StoreError
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    flow TEXT NOT NULL,
    state TEXT NOT NULL,
    status TEXT NOT NULL,
    data TEXT NOT NULL,
    timers TEXT NOT NULL,
    call_ids TEXT NOT NULL,
    conference_ids TEXT NOT NULL,
    updated_at REAL NOT NULL,
    revision INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_update ON sessions (updated_at, id);
CREATE INDEX IF NOT EXISTS sessions_by_status ON sessions (status, updated_at);
CREATE TABLE IF NOT EXISTS call_index (
    kind TEXT NOT NULL,            -- 'call' or 'conference'
    ref TEXT NOT NULL,
    session_id TEXT NOT NULL,
    PRIMARY KEY (kind, ref)
);
CREATE INDEX IF NOT EXISTS call_index_by_session ON call_index (session_id);
CREATE TABLE IF NOT EXISTS timers (
    session_id TEXT NOT NULL,
    timer_id TEXT NOT NULL,
    due REAL NOT NULL,
    PRIMARY KEY (session_id, timer_id)
);
CREATE INDEX IF NOT EXISTS timers_by_due ON timers (due, session_id, timer_id);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
"""

_BUSY_TIMEOUT = 5.0
_WAL_ATTEMPTS = 20
_COLUMNS = "id, flow, state, status, data, timers, call_ids, conference_ids, updated_at, revision"
_FINISHED_SQL = ", ".join(f"'{status}'" for status in FINISHED)


class SqliteStore:
    """``SessionStore`` in one SQLite file; the connection opens on first use."""

    def __init__(self, path: str | Path, *, now: Now = time.time) -> None:
        self._path = str(path)
        self._now = now
        self._db: aiosqlite.Connection | None = None
        self._mutex = asyncio.Lock()
        self._locks = LocalLocks()
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, now: Now = time.time) -> SqliteStore:
        """``sqlite:///relative.db`` or ``sqlite:////absolute.db`` (SQLAlchemy's convention)."""
        prefix = "sqlite:///"
        if not url.startswith(prefix) or len(url) == len(prefix) or "?" in url:
            raise ConfigError(f"invalid SQLite store URL {url!r} (expected sqlite:///path.db)")
        return cls(url[len(prefix) :], now=now)

    async def get(self, session_id: str) -> SessionRecord | None:
        async with self._access() as db:
            rows = await db.execute_fetchall(f"SELECT {_COLUMNS} FROM sessions WHERE id = ?", (session_id,))
        return _record(next(iter(rows))) if rows else None

    async def put(self, record: SessionRecord, *, expected_revision: int | None) -> int:
        check_record(record)
        row = (
            record.flow,
            record.state,
            record.status,
            dump_json(record.data),
            dump_json(dict(record.timers)),
            dump_json(sorted(record.call_ids)),
            dump_json(sorted(record.conference_ids)),
            record.updated_at,
        )
        async with self._write() as db:
            if expected_revision is None:
                revision = 1
                cursor = await db.execute(
                    f"INSERT OR IGNORE INTO sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (record.id, *row, revision),
                )
            else:
                revision = expected_revision + 1
                cursor = await db.execute(
                    "UPDATE sessions SET flow = ?, state = ?, status = ?, data = ?, timers = ?, call_ids = ?,"
                    " conference_ids = ?, updated_at = ?, revision = ? WHERE id = ? AND revision = ?",
                    (*row, revision, record.id, expected_revision),
                )
            if cursor.rowcount != 1:
                raise ConflictError(_conflict(record.id, expected_revision))
            await _reindex(db, record)
        return revision

    async def session_for_call(self, call_id: str) -> str | None:
        return await self._owner("call", call_id)

    async def session_for_conference(self, conference_id: str) -> str | None:
        return await self._owner("conference", conference_id)

    async def due_timers(self, now: float, limit: int = 100) -> list[DueTimer]:
        check_paging(limit, 0)
        async with self._access() as db:
            rows = await db.execute_fetchall(
                "SELECT session_id, timer_id, due FROM timers WHERE due <= ?"
                " ORDER BY due, session_id, timer_id LIMIT ?",
                (now, limit),
            )
        return [DueTimer(sid, tid, due) for sid, tid, due in rows]

    async def next_due(self) -> float | None:
        async with self._access() as db:
            rows = await db.execute_fetchall("SELECT MIN(due) FROM timers")
        due: float | None = next(iter(rows))[0]
        return due

    async def list_sessions(
        self, *, status: str | None = None, flow: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[SessionRecord]:
        check_paging(limit, offset)
        filters = [
            (column, value) for column, value in (("status", status), ("flow", flow)) if value is not None
        ]
        where = " AND ".join(f"{column} = ?" for column, _ in filters) or "1"
        async with self._access() as db:
            rows = await db.execute_fetchall(
                f"SELECT {_COLUMNS} FROM sessions WHERE {where}"
                " ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?",
                (*(value for _, value in filters), limit, offset),
            )
        return [_record(row) for row in rows]

    async def claim(self, key: str, ttl: float) -> bool:
        check_ttl(ttl)
        now = self._now()
        async with self._write() as db:
            await db.execute("DELETE FROM claims WHERE key = ? AND expires_at <= ?", (key, now))
            cursor = await db.execute("INSERT OR IGNORE INTO claims VALUES (?, ?)", (key, now + ttl))
            return bool(cursor.rowcount == 1)

    def lock(self, session_id: str) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(session_id)

    async def delete(self, session_id: str) -> None:
        async with self._write() as db:
            for table, column in (("call_index", "session_id"), ("timers", "session_id"), ("sessions", "id")):
                await db.execute(f"DELETE FROM {table} WHERE {column} = ?", (session_id,))

    async def purge_ended(self, older_than: float) -> int:
        doomed = f"SELECT id FROM sessions WHERE status IN ({_FINISHED_SQL}) AND updated_at < ?"
        async with self._write() as db:
            for table in ("call_index", "timers"):
                await db.execute(f"DELETE FROM {table} WHERE session_id IN ({doomed})", (older_than,))
            cursor = await db.execute(f"DELETE FROM sessions WHERE id IN ({doomed})", (older_than,))
            purged = int(cursor.rowcount)
            await db.execute("DELETE FROM claims WHERE expires_at <= ?", (self._now(),))
        return purged

    async def ping(self) -> bool:
        try:
            async with self._access() as db:
                await db.execute_fetchall("SELECT 1")
        except StoreError:
            return False
        return True

    async def close(self) -> None:
        async with self._mutex:
            self._closed = True
            db, self._db = self._db, None
            if db is not None:
                await _close_quietly(db)

    async def _owner(self, kind: str, ref: str) -> str | None:
        async with self._access() as db:
            rows = await db.execute_fetchall(
                "SELECT session_id FROM call_index WHERE kind = ? AND ref = ?", (kind, ref)
            )
        return next((str(row[0]) for row in rows), None)

    @asynccontextmanager
    async def _access(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection, exclusively, with driver errors translated."""
        async with self._mutex:
            if self._closed:
                raise StoreError("the SQLite store is closed")
            try:
                yield self._db or await self._connect()
            except (sqlite3.Error, ValueError) as exc:  # aiosqlite raises ValueError on a dead connection
                raise StoreError(f"SQLite store {self._path}: {exc}") from exc

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """``_access`` inside one immediate transaction, rolled back on any error."""
        async with self._access() as db:
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")

    async def _connect(self) -> aiosqlite.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves instead of sqlite3's implicit transactions.
        # timeout: wait for another connection's write lock instead of failing at once.
        db = await aiosqlite.connect(self._path, isolation_level=None, timeout=_BUSY_TIMEOUT)
        try:
            await _prepare(db)
        except BaseException:
            await _close_quietly(db)
            raise
        self._db = db
        return db


async def _prepare(db: aiosqlite.Connection) -> None:
    """WAL mode, then the schema.

    Two connections switching a new file to WAL at once can get "database is locked" without the busy
    timeout being honoured, so that one step is retried briefly.
    """
    for attempt in range(1, _WAL_ATTEMPTS + 1):
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or attempt == _WAL_ATTEMPTS:
                raise
            await asyncio.sleep(0.01 * attempt)
    # NORMAL is crash-safe in WAL mode; only an OS crash or power cut can lose the last commits.
    await db.execute("PRAGMA synchronous = NORMAL")
    await db.executescript(_SCHEMA)


def _conflict(session_id: str, expected_revision: int | None) -> str:
    if expected_revision is None:
        return f"session {session_id!r} already exists"
    return f"session {session_id!r} is missing or not at revision {expected_revision}"


async def _reindex(db: aiosqlite.Connection, record: SessionRecord) -> None:
    """Make the call index and the timer table match ``record``, inside the caller's transaction."""
    await db.execute("DELETE FROM call_index WHERE session_id = ?", (record.id,))
    refs: Iterable[tuple[str, str, str]] = [
        *(("call", ref, record.id) for ref in record.call_ids),
        *(("conference", ref, record.id) for ref in record.conference_ids),
    ]
    # REPLACE: an id another session already listed moves to this one (the latest writer owns it).
    await db.executemany("INSERT OR REPLACE INTO call_index VALUES (?, ?, ?)", refs)
    await db.execute("DELETE FROM timers WHERE session_id = ?", (record.id,))
    await db.executemany(
        "INSERT INTO timers VALUES (?, ?, ?)", [(record.id, tid, due) for tid, due in record.timers.items()]
    )


def _record(row: Any) -> SessionRecord:
    sid, flow, state, status, data, timers, call_ids, conference_ids, updated_at, revision = row
    try:
        return SessionRecord(
            id=sid,
            flow=flow,
            state=state,
            status=status,
            data=json.loads(data),
            timers=json.loads(timers),
            call_ids=frozenset(json.loads(call_ids)),
            conference_ids=frozenset(json.loads(conference_ids)),
            updated_at=updated_at,
            revision=revision,
        )
    except ValueError as exc:
        raise StoreError(f"stored session {sid!r} is unreadable: {exc}") from exc


async def _close_quietly(db: aiosqlite.Connection) -> None:
    # Best effort: the worker thread stops either way.
    with contextlib.suppress(sqlite3.Error, ValueError):
        await db.close()
