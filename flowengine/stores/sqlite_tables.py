"""The SQLite store's tables and the statements that write them: each write below is a job of the group
commit (``group_commit.py``), run inside its transaction on whichever connection it is given."""

from __future__ import annotations

import sqlite3
from typing import Any

from flowengine.errors import ConflictError
from flowengine.stores.base import FINISHED, Claim, Pace, SessionRecord, next_slot

# Tables keyed by a short primary key are WITHOUT ROWID (the key is the table's own B-tree): a row written
# dirties one page less than in a rowid table with a separate key index, on every claim, timer and id.
KEYED = {
    "call_index": """CREATE TABLE IF NOT EXISTS call_index (
    kind TEXT NOT NULL,            -- 'call' or 'conference'
    ref TEXT NOT NULL,
    session_id TEXT NOT NULL,
    PRIMARY KEY (kind, ref)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS call_index_by_session ON call_index (session_id);
""",
    "timers": """CREATE TABLE IF NOT EXISTS timers (
    session_id TEXT NOT NULL,
    timer_id TEXT NOT NULL,
    due REAL NOT NULL,
    PRIMARY KEY (session_id, timer_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS timers_by_due ON timers (due, session_id, timer_id);
""",
    "claims": """CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS claims_by_expiry ON claims (expires_at);
""",
}

# ``sessions_live`` serves the census of live sessions by flow and state (with the status, the census reads
# nothing else); unlike an index on (status, updated_at) it changes only when a session's state does, not
# on every save.
SCHEMA = """
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
CREATE INDEX IF NOT EXISTS sessions_live ON sessions (flow, state, status) WHERE status = 'active';
""" + "".join(KEYED.values()) + """
CREATE TABLE IF NOT EXISTS pacing (
    key TEXT PRIMARY KEY,
    horizon REAL NOT NULL          -- the token bucket's theoretical arrival time (take_slot)
);
CREATE TABLE IF NOT EXISTS flow_sources (
    version TEXT PRIMARY KEY,      -- a content hash of the source: rows are written once, never changed
    source TEXT NOT NULL
);
"""
LAYOUT = 1  # ``PRAGMA user_version`` of a file laid out as above (0: the rowid tables of earlier versions)


def migrate(db: sqlite3.Connection) -> None:
    """Bring a file written by an earlier version to ``LAYOUT``, after ``SCHEMA`` ran (autocommit mode).

    One immediate transaction: a second process opening the file meanwhile waits for it, then finds the
    layout done. A keyed table still with rowids is rebuilt (same columns, rows copied); the index the
    census no longer needs goes. An earlier version opening the file later works with the new tables
    (same columns) and only puts that index back."""
    if db.execute("PRAGMA user_version").fetchall()[0][0] >= LAYOUT:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if db.execute("PRAGMA user_version").fetchall()[0][0] < LAYOUT:
            for table, ddl in KEYED.items():
                sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                                 (table,)).fetchall()[0][0]
                if "WITHOUT ROWID" not in sql.upper():
                    create_table, create_index = ddl.split(";")[:2]
                    db.execute(f"ALTER TABLE {table} RENAME TO {table}_rowid")  # its index goes with it
                    db.execute(create_table)
                    db.execute(f"INSERT INTO {table} SELECT * FROM {table}_rowid")
                    db.execute(f"DROP TABLE {table}_rowid")  # and its index, whose name is free again
                    db.execute(create_index)
            db.execute("DROP INDEX IF EXISTS sessions_by_status")
            db.execute(f"PRAGMA user_version = {LAYOUT}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # SQLite may have rolled back already (a full disk): keep the first error
            db.execute("ROLLBACK")
        raise

COLUMNS = "id, flow, state, status, data, timers, call_ids, conference_ids, updated_at, revision"
_ROW_COLUMNS = 8  # a put's row: COLUMNS but the id and the revision
FINISHED_SQL = ", ".join(f"'{status}'" for status in FINISHED)
INSERT = f"INSERT OR IGNORE INTO sessions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
UPDATE = (
    "UPDATE sessions SET flow = ?, state = ?, status = ?, data = ?, timers = ?, call_ids = ?,"
    " conference_ids = ?, updated_at = ?, revision = ? WHERE id = ? AND revision = ?"
)
# The same for a record whose call and conference ids are those of the version it replaces (most puts):
# its row leaves those two columns out, not encoded again.
UPDATE_SAME_IDS = (
    "UPDATE sessions SET flow = ?, state = ?, status = ?, data = ?, timers = ?,"
    " updated_at = ?, revision = ? WHERE id = ? AND revision = ?"
)


def put_row(db: sqlite3.Connection, record: SessionRecord, row: tuple[Any, ...], expected: int | None,
            known: SessionRecord | None = None, mark: Claim | None = None, now: float = 0.0,
            sweep: bool = True) -> int:
    """Inside the group commit's transaction, like every write job below. ``row``: the columns from
    ``flow`` to ``updated_at``, or without ``call_ids`` and ``conference_ids`` when they are ``known``'s
    (then unchanged: ``UPDATE_SAME_IDS``). ``known``: the version this
    store wrote last, when it is the one replaced (see ``reindex``). ``mark``: claimed (at ``now``,
    ``sweep`` as in ``claim``) in the same transaction, after the row is written: a conflict rolls both
    back."""
    revision = 1 if expected is None else expected + 1
    if expected is None:
        cursor = db.execute(INSERT, (record.id, *row, revision))
    else:
        update = UPDATE if len(row) == _ROW_COLUMNS else UPDATE_SAME_IDS
        cursor = db.execute(update, (*row, revision, record.id, expected))
    if cursor.rowcount != 1:
        raise ConflictError(conflict(record.id, expected))
    reindex(db, record, known)
    if mark is not None:
        claim(db, mark.key, now, now + mark.ttl, sweep)
    return revision


def conflict(session_id: str, expected_revision: int | None) -> str:
    if expected_revision is None:
        return f"session {session_id!r} already exists"
    return f"session {session_id!r} is missing or not at revision {expected_revision}"


UPDATE_TIMER = "UPDATE timers SET due = ? WHERE session_id = ? AND timer_id = ?"


def reindex(db: sqlite3.Connection, record: SessionRecord, known: SessionRecord | None = None) -> None:
    """Make the call index and the timer table match ``record``, inside the caller's transaction.

    Rows are rewritten only when they differ from what is there: most events change neither, and a read
    is cheaper than dirtying index pages. Rows already listing exactly this session's ids mean each id
    is still this session's (the primary key allows one owner per id). Timer rows are the session's
    own: with ``known``, the version whose rows they are, they are not read, and only the timers that
    changed are written (most saves move one, the quiet timer).
    """
    sid = record.id
    refs = {("call", ref) for ref in record.call_ids}
    refs.update(("conference", ref) for ref in record.conference_ids)
    if set(db.execute("SELECT kind, ref FROM call_index WHERE session_id = ?", (sid,))) != refs:
        db.execute("DELETE FROM call_index WHERE session_id = ?", (sid,))
        # REPLACE: an id another session already listed moves to this one (the latest writer owns it).
        if refs:
            db.executemany("INSERT OR REPLACE INTO call_index VALUES (?, ?, ?)",
                           [(*ref, sid) for ref in refs])
    if known is not None:
        if known.timers != record.timers:
            # Empty lists are not handed over: an ``executemany`` costs a statement even with no rows.
            if gone := [(sid, timer_id) for timer_id in known.timers.keys() - record.timers.keys()]:
                db.executemany("DELETE FROM timers WHERE session_id = ? AND timer_id = ?", gone)
            moved = [(due, sid, timer_id) for timer_id, due in record.timers.items()
                     if timer_id in known.timers and known.timers[timer_id] != due]
            added = [(sid, timer_id, due) for timer_id, due in record.timers.items()
                     if timer_id not in known.timers]
            # A timer that moved is updated in place: its row and its ``timers_by_due`` entry change, not
            # the primary key's index, which REPLACE (a delete and an insert) dirtied too. A row missing
            # after all (``known`` says it is there) is written whole with the new ones.
            if moved and db.executemany(UPDATE_TIMER, moved).rowcount != len(moved):
                added += [(sid, timer_id, due) for due, _, timer_id in moved]
            if added:
                db.executemany("INSERT OR REPLACE INTO timers VALUES (?, ?, ?)", added)
    elif dict(db.execute("SELECT timer_id, due FROM timers WHERE session_id = ?", (sid,))) != record.timers:
        db.execute("DELETE FROM timers WHERE session_id = ?", (sid,))
        if timers := [(sid, timer_id, due) for timer_id, due in record.timers.items()]:
            db.executemany("INSERT INTO timers VALUES (?, ?, ?)", timers)


# A new key is inserted; a key whose claim has expired is taken again (its row updated); a live claim
# is left alone (no change: rowcount 0). One statement, whether or not expired rows were swept yet.
CLAIM = (
    "INSERT INTO claims VALUES (?, ?)"
    " ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE claims.expires_at <= ?"
)


def claim(db: sqlite3.Connection, key: str, now: float, expires_at: float, sweep: bool = True) -> bool:
    """``sweep``: every expired claim goes too, not just this key's (each row deleted once, found by the
    index), so the table holds about one TTL's worth of claims without a housekeeping job. The store
    asks for it at most once a second rather than on every claim (a statement per webhook saved)."""
    if sweep:
        db.execute("DELETE FROM claims WHERE expires_at <= ?", (now,))
    return bool(db.execute(CLAIM, (key, expires_at, now)).rowcount == 1)


HORIZON = "SELECT horizon FROM pacing WHERE key = ?"


def take_slot(db: sqlite3.Connection, key: str, pace: Pace, now: float) -> float | None:
    """Read, reckon and write inside the group commit's immediate transaction (a write job): another
    process taking a slot of the same bucket waits for it; the slot is taken once the COMMIT is done."""
    rows = db.execute(HORIZON, (key,)).fetchall()
    wait, horizon = next_slot(float(rows[0][0]) if rows else None, pace, now)
    if wait is not None:
        db.execute("INSERT OR REPLACE INTO pacing VALUES (?, ?)", (key, horizon))
    return wait


def delete(db: sqlite3.Connection, session_id: str) -> None:
    for table, column in (("call_index", "session_id"), ("timers", "session_id"), ("sessions", "id")):
        db.execute(f"DELETE FROM {table} WHERE {column} = ?", (session_id,))


def purge(db: sqlite3.Connection, older_than: float, now: float) -> int:
    doomed = f"SELECT id FROM sessions WHERE status IN ({FINISHED_SQL}) AND updated_at < ?"
    for table in ("call_index", "timers"):
        db.execute(f"DELETE FROM {table} WHERE session_id IN ({doomed})", (older_than,))
    purged: int = db.execute(f"DELETE FROM sessions WHERE id IN ({doomed})", (older_than,)).rowcount
    db.execute("DELETE FROM claims WHERE expires_at <= ?", (now,))
    return purged
