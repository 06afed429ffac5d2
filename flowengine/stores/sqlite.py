"""SQLite session store (the default): one file, WAL mode, a connection to write and read on the event
loop, and one to write on the store's thread.

Writes are committed in groups (``group_commit.py``): the writes of one turn of the event loop share a
transaction, committed on the loop itself (a COMMIT in WAL mode waits for no disk), or on the store's
thread when another process holds the write lock (waiting is allowed there); a write's caller is
answered only after the COMMIT holding it, so a save is committed when ``put`` returns, which the outbox
relies on before it sends a command. Transactions use ``BEGIN
IMMEDIATE`` so a check-then-write is atomic even if another process opens the file.

Durability: WAL with ``synchronous=NORMAL``. A COMMIT appends to the WAL file without waiting for fsync;
the WAL is synced at each checkpoint. A crash of the engine process (kill -9, an exception, OOM) loses
nothing committed: the WAL is in the OS's page cache and the next open replays it. An OS crash or power
cut can lose the last commits since the last checkpoint (the file stays consistent, it goes back in
time): then a command may already have gone out whose save is lost, and the session resumes from the
state before it, so that command may be sent again, or the platform's later webhooks may find a session
that does not know the call yet. ``synchronous=FULL`` would close that window at an fsync per commit.

Sessions written recently are kept (the record as handed to ``put``, when ``sealed``: immutable by the
writer's promise), and ``get`` reads only the revision and update time when it has the session, instead
of the row and its JSON: the service asks for a session on every event, and most are the one it saved
last.

The per-event point reads (a session, an index entry, the timers due) run on the event loop itself: a
read of a few indexed rows costs a few microseconds, a hop to the thread some tens. They go through the
loop's writing connection, between its group commits (a group runs whole within one callback of the loop,
so a read never sees an open transaction): its page cache survives its own commits, where a connection
of its own had every page read again after each (reads -20 %). In WAL mode a reader never waits for
writers; when SQLite still says busy (another process recovering the file, say), the read goes to the
store's thread instead, where waiting is allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

from flowengine.errors import ConfigError, StoreError
from flowengine.plainjson import load_json
from flowengine.redaction import redact_url
from flowengine.stores import sqlite_tables as tables
from flowengine.stores.base import (
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
    dump_sealed,
)
from flowengine.stores.group_commit import GroupCommit, Job

T = TypeVar("T")

_BUSY_TIMEOUT = 5.0
_WAL_ATTEMPTS = 20
_SWEEP_EVERY = 1.0  # seconds between two sweeps of expired claims: at most one TTL + 1 s of claims kept


class SqliteStore:
    """``SessionStore`` in one SQLite file; the connections open on first use, on the store's thread."""

    def __init__(self, path: str | Path, *, now: Now = time.time) -> None:
        self._path = str(path)
        self._now = now
        self._db: sqlite3.Connection | None = None  # used on the store's thread only
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flowengine-sqlite")
        self._locks = LocalLocks()
        self._closed = False
        self._inline: sqlite3.Connection | None = None  # writes (``group_commit``) and reads on the loop
        self._writes = GroupCommit(self._thread, self._connection, self._error, lambda: self._inline)
        self._recent: dict[str, SessionRecord] = {}  # sealed records last written, oldest first
        self._sweep_at = 0.0  # when a claim next sweeps out the expired claims (``_sweep_due``)

    @classmethod
    def from_url(cls, url: str, *, now: Now = time.time) -> SqliteStore:
        """``sqlite:///relative.db`` or ``sqlite:////absolute.db`` (SQLAlchemy's convention)."""
        prefix = "sqlite:///"
        if not url.startswith(prefix) or len(url) == len(prefix) or "?" in url:
            raise ConfigError(f"invalid SQLite store URL {redact_url(url)!r} (expected sqlite:///path.db)")
        return cls(url[len(prefix) :], now=now)

    async def get(self, session_id: str) -> SessionRecord | None:
        kept = self._recent.get(session_id)
        if kept is not None:  # still the stored version? Two columns, no JSON.
            rows = await self._read(lambda db: db.execute(_SELECT_VERSION, (session_id,)).fetchall())
            if rows and tuple(rows[0]) == (kept.revision, kept.updated_at):
                return kept
            self._recent.pop(session_id, None)
            if not rows:
                return None
        rows = await self._read(lambda db: db.execute(_SELECT_ONE, (session_id,)).fetchall())
        return _record(rows[0]) if rows else None

    async def put(
        self, record: SessionRecord, *, expected_revision: int | None, claim: Claim | None = None
    ) -> int:
        check_record(record)  # timers finite: the index columns go through orjson whatever the record
        if claim is not None:
            check_ttl(claim.ttl)
        last = self._recent.pop(record.id, None)  # unknown until this write is committed
        # Its index rows are those of the version this store wrote last, if that is the one replaced:
        # then they need not be read, and only what changed is written (most puts).
        known = last if last is not None and expected_revision == last.revision else None
        row: tuple[Any, ...] = (
            record.flow,
            record.state,
            record.status,
            (dump_sealed if record.sealed else dump_json)(record.data),
            dump_sealed(dict(record.timers)),
        )
        ids = (record.call_ids, record.conference_ids)
        if known is None or (known.call_ids, known.conference_ids) != ids:
            row += (dump_sealed(sorted(record.call_ids)), dump_sealed(sorted(record.conference_ids)))
        row += (record.updated_at,)
        now = self._now()
        sweep = claim is not None and self._sweep_due(now)
        revision = await self._write(
            lambda db: tables.put_row(db, record, row, expected_revision, known, claim, now, sweep)
        )
        if record.sealed:  # handed over by its writer (``SessionRecord.sealed``): kept itself, as the memory
            record.revision = revision  # store keeps it, rather than a copy made per put
            self._keep(record)
        return revision

    def _keep(self, record: SessionRecord) -> None:
        recent = self._recent
        if len(recent) >= HOT_SESSIONS:
            del recent[next(iter(recent))]
        recent[record.id] = record

    async def session_for_call(self, call_id: str) -> str | None:
        return await self._read(lambda db: _owner(db, "call", call_id))

    async def session_for_conference(self, conference_id: str) -> str | None:
        return await self._read(lambda db: _owner(db, "conference", conference_id))

    async def due_timers(self, now: float, limit: int = 100) -> list[DueTimer]:
        check_paging(limit, 0)
        sql = "SELECT session_id, timer_id, due FROM timers WHERE due <= ? ORDER BY due, session_id, timer_id"
        sql += " LIMIT ?"
        rows = await self._read(lambda db: db.execute(sql, (now, limit)).fetchall())
        return [DueTimer(sid, tid, due) for sid, tid, due in rows]

    async def next_due(self) -> float | None:
        rows = await self._read(lambda db: db.execute("SELECT MIN(due) FROM timers").fetchall())
        due: float | None = rows[0][0]
        return due

    async def list_sessions(
        self, *, status: str | None = None, flow: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[SessionRecord]:
        check_paging(limit, offset)
        filters = [
            (column, value) for column, value in (("status", status), ("flow", flow)) if value is not None
        ]
        where = " AND ".join(f"{column} = ?" for column, _ in filters) or "1"
        sql = f"SELECT {tables.COLUMNS} FROM sessions WHERE {where} ORDER BY updated_at DESC, id DESC"
        sql += " LIMIT ? OFFSET ?"
        params = (*(value for _, value in filters), limit, offset)
        rows = await self._run(lambda db: db.execute(sql, params).fetchall())
        return [_record(row) for row in rows]

    async def census(self, kind: TimerKind) -> Census:
        def count(db: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            live = "SELECT flow, state, COUNT(*) FROM sessions WHERE status = 'active' GROUP BY flow, state"
            return db.execute(live).fetchall(), db.execute("SELECT timer_id FROM timers").fetchall()

        live, timers = await self._run(count)
        return Census({(flow, state): n for flow, state, n in live}, Counter(kind(t) for (t,) in timers))

    async def claim(self, key: str, ttl: float) -> bool:
        check_ttl(ttl)
        now = self._now()
        sweep = self._sweep_due(now)
        return await self._write(lambda db: tables.claim(db, key, now, now + ttl, sweep))

    def _sweep_due(self, now: float) -> bool:
        """Whether a claim made now also sweeps out the expired ones: at most once per ``_SWEEP_EVERY``
        s of this store's clock (a sweep lost with a rolled-back job waits for the next one)."""
        if now < self._sweep_at:
            return False
        self._sweep_at = now + _SWEEP_EVERY
        return True

    async def claimed(self, key: str) -> bool:
        sql = "SELECT 1 FROM claims WHERE key = ? AND expires_at > ?"
        now = self._now()
        return bool(await self._read(lambda db: db.execute(sql, (key, now)).fetchall()))

    def lock(self, session_id: str) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(session_id)

    async def take_slot(self, key: str, pace: Pace, now: float) -> float | None:
        return await self._write(lambda db: tables.take_slot(db, key, pace, now))

    async def slot_horizon(self, key: str) -> float | None:
        rows = await self._read(lambda db: db.execute(tables.HORIZON, (key,)).fetchall())
        return float(rows[0][0]) if rows else None

    async def put_flow_source(self, version: str, source: str) -> None:
        sql = "INSERT OR IGNORE INTO flow_sources (version, source) VALUES (?, ?)"
        await self._write(lambda db: db.execute(sql, (version, source)).rowcount)

    async def flow_source(self, version: str) -> str | None:
        sql = "SELECT source FROM flow_sources WHERE version = ?"
        rows = await self._read(lambda db: db.execute(sql, (version,)).fetchall())
        return str(rows[0][0]) if rows else None

    async def delete(self, session_id: str) -> None:
        self._recent.pop(session_id, None)
        await self._write(lambda db: tables.delete(db, session_id))

    async def purge_ended(self, older_than: float) -> int:
        now = self._now()
        return await self._write(lambda db: tables.purge(db, older_than, now))

    async def ping(self) -> bool:
        try:
            await self._run(lambda db: db.execute("SELECT 1").fetchall())
        except StoreError:
            return False
        return True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._writes.drain()  # writes already submitted are committed first
        # Queued after every job already submitted, which still run first.
        await asyncio.get_running_loop().run_in_executor(self._thread, self._disconnect)
        self._thread.shutdown(wait=False)

    async def _run(self, job: Job[T]) -> T:
        """``job`` on the store's thread with the connection, driver errors translated."""
        if self._closed:
            raise StoreError("the SQLite store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._call, job)

    async def _read(self, job: Job[T]) -> T:
        """``job``, a short read, on the event loop through its connection; on the store's thread when that
        is not open yet (it opens with the thread's there) or SQLite answers busy."""
        reader = self._inline
        if reader is not None and not self._closed:
            try:
                return job(reader)
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise StoreError(f"SQLite store {self._path}: {exc}") from exc
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self._path}: {exc}") from exc
        return await self._run(job)

    async def _write(self, job: Job[T]) -> T:
        if self._closed:
            raise StoreError("the SQLite store is closed")
        return await self._writes.write(job)

    def _connection(self) -> sqlite3.Connection:
        """The writing connection, on the store's thread; opened on first use."""
        try:
            return self._db or self._connect()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _error(self, exc: sqlite3.Error) -> StoreError:
        return StoreError(f"SQLite store {self._path}: {exc}")

    def _call(self, job: Job[T]) -> T:
        try:
            return job(self._db or self._connect())
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self._path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves instead of sqlite3's implicit transactions.
        # timeout: wait for another connection's write lock instead of failing at once.
        # check_same_thread=False: the executor's one thread is not the thread that made the store.
        db = sqlite3.connect(self._path, isolation_level=None, timeout=_BUSY_TIMEOUT, check_same_thread=False)
        opened = [db]
        try:
            _prepare(db)
            # The event loop's connection: never waits (busy goes to this thread: a busy read retries
            # here, a busy group commits here) and never checkpoints (a checkpoint syncs files; the group
            # commit has this thread do it).
            inline = sqlite3.connect(self._path, isolation_level=None, timeout=0, check_same_thread=False)
            opened.append(inline)
            inline.execute("PRAGMA synchronous = NORMAL")
            inline.execute("PRAGMA wal_autocheckpoint = 0")
        except BaseException:
            for connection in opened:
                _close_quietly(connection)
            raise
        self._db, self._inline = db, inline
        return db

    def _disconnect(self) -> None:
        for db in (self._inline, self._db):
            if db is not None:
                _close_quietly(db)
        self._db = self._inline = None


_SELECT_ONE = f"SELECT {tables.COLUMNS} FROM sessions WHERE id = ?"
_SELECT_VERSION = "SELECT revision, updated_at FROM sessions WHERE id = ?"


def _prepare(db: sqlite3.Connection) -> None:
    """WAL mode, then the schema.

    Two connections switching a new file to WAL at once can get "database is locked" without the busy
    timeout being honoured, so that one step is retried briefly (sleeping the store's thread only).
    """
    for attempt in range(1, _WAL_ATTEMPTS + 1):
        try:
            db.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or attempt == _WAL_ATTEMPTS:
                raise
            time.sleep(0.01 * attempt)
    # NORMAL is crash-safe in WAL mode; only an OS crash or power cut can lose the last commits.
    db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(tables.SCHEMA)
    tables.migrate(db)


def _owner(db: sqlite3.Connection, kind: str, ref: str) -> str | None:
    # fetchall, never fetchone: a statement left unfinished would keep its read snapshot open.
    rows = db.execute("SELECT session_id FROM call_index WHERE kind = ? AND ref = ?", (kind, ref)).fetchall()
    return str(rows[0][0]) if rows else None


def _record(row: Any) -> SessionRecord:
    sid, flow, state, status, data, timers, call_ids, conference_ids, updated_at, revision = row
    try:
        return SessionRecord(
            id=sid,
            flow=flow,
            state=state,
            status=status,
            data=load_json(data),
            timers=load_json(timers),
            call_ids=frozenset(load_json(call_ids)),
            conference_ids=frozenset(load_json(conference_ids)),
            updated_at=updated_at,
            revision=revision,
        )
    except ValueError as exc:
        raise StoreError(f"stored session {sid!r} is unreadable: {exc}") from exc


def _close_quietly(db: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        db.close()
