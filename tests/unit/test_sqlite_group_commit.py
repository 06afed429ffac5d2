"""The SQLite store's group commit and its kept records: concurrent writes share a transaction, a write
is committed when it returns, one failing write leaves the others of its group be, and ``get`` hands back
the record it wrote while the file still holds that version."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from flowengine.errors import ConflictError
from flowengine.stores.base import SessionRecord
from flowengine.stores.sqlite import SqliteStore


def rec(session_id: str, **changes: Any) -> SessionRecord:
    base = SessionRecord(id=session_id, flow="f", state="answering", status="active",
                         data={"vars": {"n": 1}, "trace": []}, timers={},
                         call_ids=frozenset({f"call-{session_id}"}), conference_ids=frozenset(),
                         updated_at=100.0)
    return replace(base, **changes)


def count_commits(store: SqliteStore) -> list[int]:
    """Sizes of the groups committed from now on (the store's own commit, wrapped)."""
    sizes: list[int] = []
    writes = store._writes
    commit = writes._commit

    def counted(jobs: list[Any], *where: Any) -> list[Any]:
        sizes.append(len(jobs))
        return commit(jobs, *where)

    writes._commit = counted  # type: ignore[method-assign]
    return sizes


async def test_concurrent_writes_share_commits(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.ping()
    sizes = count_commits(store)
    puts = [store.put(rec(f"s{n}"), expected_revision=None) for n in range(60)]
    claims = [store.claim(f"event-{n}", 60) for n in range(60)]
    assert await asyncio.gather(*puts, *claims) == [1] * 60 + [True] * 60
    assert sum(sizes) == 120
    assert len(sizes) <= 3, sizes  # the first write goes alone, the rest wait for it and go together
    assert await store.session_for_call("call-s59") == "s59"
    await store.close()


async def test_a_write_is_committed_when_it_returns(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.put(rec("s1"), expected_revision=None)
    other = sqlite3.connect(tmp_path / "s.db")  # another reader of the file sees it at once
    try:
        assert other.execute("SELECT revision FROM sessions WHERE id = 's1'").fetchall() == [(1,)]
    finally:
        other.close()
    await store.close()


async def test_a_conflict_in_a_group_fails_alone(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.put(rec("busy"), expected_revision=None)  # keeps the thread busy: the next ones group
    sizes = count_commits(store)
    outcomes = await asyncio.gather(
        store.put(rec("a", state="first"), expected_revision=None),
        store.put(rec("a", state="second"), expected_revision=None),  # already exists by then
        store.put(rec("b"), expected_revision=None),
        store.put(rec("busy", state="stale"), expected_revision=7),  # not at that revision
        return_exceptions=True,
    )
    assert outcomes[0] == 1 and outcomes[2] == 1
    assert isinstance(outcomes[1], ConflictError) and isinstance(outcomes[3], ConflictError)
    assert len(sizes) <= 2
    a, b, busy = [await store.get(s) for s in ("a", "b", "busy")]
    assert a is not None and a.state == "first" and b is not None and busy is not None
    assert (busy.state, busy.revision) == ("answering", 1)
    await store.close()


async def test_a_group_with_a_failed_job_is_run_again_and_its_other_writes_count_once(tmp_path: Path) -> None:
    # The group first runs without savepoints; the conflict rolls it back and it runs again with one per
    # job: the first claim must not be seen by the second run (it would then answer "already held").
    store = SqliteStore(tmp_path / "s.db")
    await store.put(rec("busy"), expected_revision=None)
    sizes = count_commits(store)
    outcomes = await asyncio.gather(
        store.claim("k", 30.0),
        store.put(rec("busy", state="stale"), expected_revision=7),
        store.claim("k", 30.0),
        store.put(rec("c"), expected_revision=None),
        return_exceptions=True,
    )
    assert sizes == [4]
    assert outcomes[0] is True and outcomes[2] is False and outcomes[3] == 1
    assert isinstance(outcomes[1], ConflictError)
    c = await store.get("c")
    assert c is not None and c.revision == 1 and await store.claimed("k")
    await store.close()


async def test_close_commits_what_was_written(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    writes = [asyncio.ensure_future(store.put(rec(f"s{n}"), expected_revision=None)) for n in range(20)]
    await asyncio.sleep(0)  # submitted, not yet committed
    await store.close()
    assert [w.result() for w in writes] == [1] * 20
    reopened = SqliteStore(tmp_path / "s.db")
    assert len(await reopened.list_sessions(limit=100)) == 20
    await reopened.close()


async def test_get_hands_back_the_sealed_record_it_wrote_while_the_file_has_that_version(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    store, other = SqliteStore(path), SqliteStore(path)  # another engine process on the same file
    sealed = rec("s1", sealed=True)
    await store.put(sealed, expected_revision=None)
    got = await store.get("s1")
    assert got is not None and got.data is sealed.data and got.revision == 1
    assert await store.get("s1") is got
    # Changed behind its back: read from the file again.
    await other.put(rec("s1", state="moved", updated_at=200.0), expected_revision=1)
    moved = await store.get("s1")
    assert moved is not None and (moved.state, moved.revision) == ("moved", 2) and moved.data == sealed.data
    await other.delete("s1")
    assert await store.get("s1") is None
    # Unsealed records are never kept: the caller may change them.
    plain = rec("s2")
    await store.put(plain, expected_revision=None)
    kept = await store.get("s2")
    assert kept is not None and kept.data is not plain.data and kept.data == plain.data
    await store.close()
    await other.close()


@pytest.mark.parametrize("conflict", [True, False])
async def test_a_failed_write_forgets_the_kept_record(tmp_path: Path, conflict: bool) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.put(rec("s1", sealed=True), expected_revision=None)
    if conflict:
        with pytest.raises(ConflictError):
            await store.put(rec("s1", state="lost", sealed=True), expected_revision=5)
    else:
        await store.delete("s1")
    assert "s1" not in store._recent
    got = await store.get("s1")
    assert (got is not None and got.state == "answering") if conflict else got is None
    await store.close()


async def test_writes_wait_on_the_thread_while_another_process_holds_the_lock(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.ping()
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process writing: the loop's connection is told busy
    try:
        put = asyncio.ensure_future(store.put(rec("s1"), expected_revision=None))
        await asyncio.sleep(0.2)
        assert not put.done()  # waiting for the lock on the store's thread, the loop free meanwhile
        assert await store.get("missing") is None
    finally:
        other.execute("COMMIT")
        other.close()
    assert await put == 1
    assert await store.put(rec("s2"), expected_revision=None) == 1  # back on the loop
    assert await store.session_for_call("call-s1") == "s1"
    await store.close()


async def test_commits_on_the_loop_are_checkpointed_on_the_thread(tmp_path: Path) -> None:
    from flowengine.stores.group_commit import CHECKPOINT_EVERY

    store = SqliteStore(tmp_path / "s.db")
    await store.ping()
    checkpoints: list[str] = []
    run = store._writes._checkpoint_wal

    def counted() -> None:
        checkpoints.append("PASSIVE")
        run()

    store._writes._checkpoint_wal = counted  # type: ignore[method-assign]
    for n in range(2 * CHECKPOINT_EVERY):
        await store.put(rec(f"s{n}"), expected_revision=None)
        if n + 1 == CHECKPOINT_EVERY:  # the first checkpoint done before the second is due (one at a time:
            await store._writes.drain()  # one still running when it is due waits for the next commit)
    await store._writes.drain()
    assert checkpoints == ["PASSIVE", "PASSIVE"]  # one per CHECKPOINT_EVERY commits, none on the loop
    assert len(await store.list_sessions(limit=1000)) == 2 * CHECKPOINT_EVERY
    await store.close()


async def test_index_rows_follow_sealed_writes_whether_read_or_known(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store, other = SqliteStore(path), SqliteStore(path)
    await store.put(rec("s1", sealed=True, timers={"t": 50.0}), expected_revision=None)
    await store.put(rec("s1", sealed=True, timers={"t": 50.0}, state="b"), expected_revision=1)  # known
    assert await store.session_for_call("call-s1") == "s1"
    assert [t.timer_id for t in await store.due_timers(60)] == ["t"]
    moved = rec("s1", sealed=True, call_ids=frozenset({"c2"}), timers={"u": 70.0})
    await store.put(moved, expected_revision=2)
    assert await store.session_for_call("call-s1") is None and await store.session_for_call("c2") == "s1"
    assert [t.timer_id for t in await store.due_timers(100)] == ["u"]
    # Another instance moves the ids: the next write of this one reads the rows again instead of trusting.
    await other.put(rec("s1", sealed=True, call_ids=frozenset({"c3"}), timers={}), expected_revision=3)
    await store.put(replace(moved, updated_at=300.0), expected_revision=4)
    assert await store.session_for_call("c3") is None and await store.session_for_call("c2") == "s1"
    assert [t.timer_id for t in await store.due_timers(100)] == ["u"]
    await store.close()
    await other.close()


async def test_a_sealed_write_takes_back_an_id_another_session_took_over(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.put(rec("a", sealed=True, call_ids=frozenset({"c"})), expected_revision=None)
    await store.put(rec("b", sealed=True, call_ids=frozenset({"c"})), expected_revision=None)
    assert await store.session_for_call("c") == "b"
    await store.put(rec("a", sealed=True, call_ids=frozenset({"c"}), state="x"), expected_revision=1)
    assert await store.session_for_call("c") == "a"  # the latest writer owns the id, as unsealed
    await store.close()
