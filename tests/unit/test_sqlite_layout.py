"""The SQLite file's layout: a file written by an earlier version (rowid tables for claims, timers and
the call index; an index on status) is brought to the current one when a store opens it, its rows kept,
once, even with two stores opening it at the same time."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from flowengine.stores import sqlite_tables as tables
from flowengine.stores.sqlite import SqliteStore

# The schema as versions before ``tables.LAYOUT`` 1 wrote it (user_version 0).
EARLIER_SCHEMA = """
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
CREATE INDEX IF NOT EXISTS claims_by_expiry ON claims (expires_at);
CREATE TABLE IF NOT EXISTS pacing (
    key TEXT PRIMARY KEY,
    horizon REAL NOT NULL          -- the token bucket's theoretical arrival time (take_slot)
);
CREATE TABLE IF NOT EXISTS flow_sources (
    version TEXT PRIMARY KEY,      -- a content hash of the source: rows are written once, never changed
    source TEXT NOT NULL
);
"""


def earlier_file(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.executescript(EARLIER_SCHEMA)
    db.execute("INSERT INTO sessions VALUES ('s1', 'f', 'greeting', 'active', '{}', '{\"t\": 5.0}',"
               " '[\"c1\"]', '[\"r1\"]', 10.0, 3)")
    db.executemany("INSERT INTO call_index VALUES (?, ?, 's1')", [("call", "c1"), ("conference", "r1")])
    db.execute("INSERT INTO timers VALUES ('s1', 't', 5.0)")
    db.execute("INSERT INTO claims VALUES ('k', 1e12)")
    db.close()


def layout(path: Path) -> tuple[int, dict[str, str], set[str]]:
    db = sqlite3.connect(path)
    try:
        version = db.execute("PRAGMA user_version").fetchall()[0][0]
        tables_sql = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
        indexes = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'"
                                                  " AND sql IS NOT NULL")}
    finally:
        db.close()
    return version, tables_sql, indexes


EXPECTED_INDEXES = {"sessions_by_update", "sessions_live", "call_index_by_session", "timers_by_due",
                    "claims_by_expiry"}


async def test_a_new_file_is_laid_out_keyed_from_the_start(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    assert await store.ping()
    await store.close()
    version, tables_sql, indexes = layout(tmp_path / "s.db")
    assert version == tables.LAYOUT
    assert all("WITHOUT ROWID" in tables_sql[name] for name in ("call_index", "timers", "claims"))
    assert indexes == EXPECTED_INDEXES


async def test_a_file_of_an_earlier_version_is_migrated_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    earlier_file(path)
    store = SqliteStore(path)
    record = await store.get("s1")
    assert record is not None and (record.state, record.revision) == ("greeting", 3)
    assert await store.session_for_call("c1") == "s1"
    assert await store.session_for_conference("r1") == "s1"
    assert [(t.session_id, t.timer_id, t.due) for t in await store.due_timers(6.0)] == [("s1", "t", 5.0)]
    assert await store.claimed("k") and not await store.claim("k", 30.0)
    census = await store.census(lambda timer_id: timer_id)
    assert census.live == {("f", "greeting"): 1}
    await store.close()
    version, tables_sql, indexes = layout(path)
    assert version == tables.LAYOUT
    assert all("WITHOUT ROWID" in tables_sql[name] for name in ("call_index", "timers", "claims"))
    assert not any(name.endswith("_rowid") for name in tables_sql)
    assert indexes == EXPECTED_INDEXES


async def test_two_stores_opening_an_earlier_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    earlier_file(path)
    first, second = SqliteStore(path), SqliteStore(path)
    assert await asyncio.gather(first.ping(), second.ping()) == [True, True]
    assert await first.session_for_call("c1") == await second.session_for_call("c1") == "s1"
    for store in (first, second):
        await store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT COUNT(*) FROM call_index").fetchall() == [(2,)]
    finally:
        db.close()


async def test_a_migration_that_fails_midway_leaves_the_earlier_layout_whole(tmp_path: Path) -> None:
    """One transaction: when a step fails after the first table was rebuilt, nothing of it stays (no
    half-keyed file, no ``_rowid`` table left behind), the rows are all there, and the next open migrates."""
    path = tmp_path / "s.db"
    earlier_file(path)
    db = sqlite3.connect(path, isolation_level=None)

    def refuse_second_rebuild(action: int, table: str | None, *_: object) -> int:
        # SQLite's own authorizer stops the migration where a full disk or an I/O error could: after
        # call_index was rebuilt, as timers is about to be dropped
        refused = action == sqlite3.SQLITE_DROP_TABLE and table == "timers_rowid"
        return sqlite3.SQLITE_DENY if refused else sqlite3.SQLITE_OK

    try:
        db.executescript(tables.SCHEMA)
        db.set_authorizer(refuse_second_rebuild)
        try:
            tables.migrate(db)
        except sqlite3.DatabaseError as exc:
            assert "not authorized" in str(exc)
        else:
            raise AssertionError("the refused step did not stop the migration")
        assert not db.in_transaction
    finally:
        db.close()
    version, tables_sql, indexes = layout(path)
    assert version == 0
    assert not any("WITHOUT ROWID" in tables_sql[name] for name in ("call_index", "timers", "claims"))
    assert not any(name.endswith("_rowid") for name in tables_sql)
    assert "sessions_by_status" in indexes
    store = SqliteStore(path)  # the next open migrates it, rows and all
    assert await store.session_for_call("c1") == "s1"
    assert [(t.timer_id, t.due) for t in await store.due_timers(6.0)] == [("t", 5.0)]
    await store.close()
    version, tables_sql, indexes = layout(path)
    assert version == tables.LAYOUT and indexes == EXPECTED_INDEXES
    assert all("WITHOUT ROWID" in tables_sql[name] for name in ("call_index", "timers", "claims"))


def test_the_census_reads_the_live_index_only() -> None:
    db = sqlite3.connect(":memory:")
    db.executescript(tables.SCHEMA)
    plan = db.execute("EXPLAIN QUERY PLAN SELECT flow, state, COUNT(*) FROM sessions"
                      " WHERE status = 'active' GROUP BY flow, state").fetchall()
    assert any("COVERING INDEX sessions_live" in row[-1] for row in plan), plan
