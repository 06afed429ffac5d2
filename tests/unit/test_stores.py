"""One contract suite for every session store: memory, SQLite (a real file) and Redis (db 11, own prefix)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from flowengine.errors import ConfigError, ConflictError, StoreError
from flowengine.stores import DueTimer, SessionRecord, SessionStore, open_store
from flowengine.stores.base import HOT_SESSIONS, Claim, LocalLocks, Pace
from flowengine.stores.memory import MemoryStore
from flowengine.stores.redis import RedisStore
from flowengine.stores.sqlite import SqliteStore
from flowengine.testing import wipe_redis

REDIS = "redis://127.0.0.1:6379/11"

Opener = Callable[[], SessionStore]


class FakeNow:
    """An injected clock for claim expiry."""

    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


def rec(session_id: str = "s1", **changes: Any) -> SessionRecord:
    base = SessionRecord(
        id=session_id,
        flow="two-party-conference",
        state="answering",
        status="active",
        data={"vars": {"callee": "447415784323"}, "trace": [1, 2.5, None, True, "é"]},
        timers={},
        call_ids=frozenset(),
        conference_ids=frozenset(),
        updated_at=100.0,
    )
    return replace(base, **changes)


async def _redis_keys(prefix: str) -> list[bytes]:
    client = Redis.from_url(REDIS)
    try:
        return sorted([key async for key in client.scan_iter(match=prefix + "*")])
    finally:
        await client.aclose()


@pytest.fixture
def clock() -> FakeNow:
    return FakeNow()


@pytest.fixture
def prefix() -> str:
    return f"fe-test:{uuid.uuid4().hex}:"


@pytest.fixture
async def redis_opener(prefix: str) -> AsyncIterator[Callable[..., SessionStore]]:
    """Opens stores on the test's Redis prefix, each a separate engine instance; cleans every key up."""
    opened: list[SessionStore] = []

    def opener(query: str = "") -> SessionStore:
        store = open_store(f"{REDIS}?prefix={prefix}{query}")
        opened.append(store)
        return store

    probe = Redis.from_url(REDIS)
    try:
        assert await probe.ping()  # Redis is part of the environment: unreachable fails, never skips
    finally:
        await probe.aclose()
    yield opener
    for store in opened:
        await store.close()
    await wipe_redis(REDIS, prefix)


@pytest.fixture(params=["memory", "memory-cold", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def opener(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeNow, prefix: str
) -> AsyncIterator[Opener]:
    """Each call opens another instance on the same storage (memory: the one in-process store; memory-cold:
    one keeping a single session hot, so every other one is read back from its compressed document)."""
    kind: str = request.param
    memory = MemoryStore(now=clock, hot=1 if kind == "memory-cold" else HOT_SESSIONS)
    opened: list[SessionStore] = []

    def open_one() -> SessionStore:
        store: SessionStore
        if kind.startswith("memory"):
            store = memory
        elif kind == "sqlite":
            store = SqliteStore(tmp_path / "sessions.db", now=clock)
        else:
            store = open_store(f"{REDIS}?prefix={prefix}")
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()
    if kind == "redis":
        await wipe_redis(REDIS, prefix)


@pytest.fixture
def store(opener: Opener) -> SessionStore:
    return opener()


# --- records and revisions -------------------------------------------------------------------------------


async def test_put_get_round_trip(store: SessionStore) -> None:
    record = rec(
        timers={"after:10s": 1_767_225_610.123456},
        call_ids=frozenset({"c1", "c2"}),
        conference_ids=frozenset({"room-1"}),
        data={"n": 2**53 + 1, "nested": {"list": [{"a": "ü"}], "empty": {}}, "f": 0.1},
    )
    assert await store.put(record, expected_revision=None) == 1
    assert await store.get("s1") == replace(record, revision=1)
    assert await store.get("missing") is None


async def test_stored_data_is_a_copy(store: SessionStore) -> None:
    record = rec()
    await store.put(record, expected_revision=None)
    record.data["vars"]["callee"] = "changed"
    got = await store.get("s1")
    assert got is not None and got.data["vars"]["callee"] == "447415784323"


async def test_revisions_advance_and_mismatches_conflict(store: SessionStore) -> None:
    assert await store.put(rec(), expected_revision=None) == 1
    with pytest.raises(ConflictError):
        await store.put(rec(), expected_revision=None)
    assert await store.put(rec(state="greeting"), expected_revision=1) == 2
    with pytest.raises(ConflictError):
        await store.put(rec(state="stale"), expected_revision=1)
    with pytest.raises(ConflictError):
        await store.put(rec("nobody"), expected_revision=3)
    got = await store.get("s1")
    assert got is not None and (got.state, got.revision) == ("greeting", 2)
    assert await store.get("nobody") is None


async def test_two_writers_one_wins(opener: Opener) -> None:
    first, second = opener(), opener()
    created = await asyncio.gather(
        first.put(rec(state="a"), expected_revision=None),
        second.put(rec(state="b"), expected_revision=None),
        return_exceptions=True,
    )
    assert sorted(map(type, created), key=str) == sorted([int, ConflictError], key=str)
    results = await asyncio.gather(
        first.put(rec(state="x"), expected_revision=1),
        second.put(rec(state="y"), expected_revision=1),
        return_exceptions=True,
    )
    wins = [index for index, result in enumerate(results) if result == 2]
    assert len(wins) == 1
    assert isinstance(results[1 - wins[0]], ConflictError)
    got = await first.get("s1")
    assert got is not None and (got.state, got.revision) == ("xy"[wins[0]], 2)


async def test_invalid_data_is_refused_and_nothing_stored(store: SessionStore) -> None:
    with pytest.raises(StoreError):
        await store.put(rec(data={"x": object()}), expected_revision=None)
    with pytest.raises(StoreError):
        await store.put(rec(data={"x": float("nan")}), expected_revision=None)
    with pytest.raises(StoreError):
        await store.put(rec(timers={"t": float("inf")}), expected_revision=None)
    assert await store.get("s1") is None
    with pytest.raises(ValueError):
        rec(status="sleeping")


# --- indexes -----------------------------------------------------------------------------------------------


async def test_call_and_conference_index_follow_the_session(store: SessionStore) -> None:
    await store.put(
        rec(call_ids=frozenset({"c1", "c2"}), conference_ids=frozenset({"k1"})), expected_revision=None
    )
    assert [await store.session_for_call(c) for c in ("c1", "c2", "c3")] == ["s1", "s1", None]
    assert await store.session_for_conference("k1") == "s1"
    assert await store.session_for_call("k1") is None  # calls and conferences are separate namespaces

    await store.put(rec(call_ids=frozenset({"c2", "c3"})), expected_revision=1)
    assert [await store.session_for_call(c) for c in ("c1", "c2", "c3")] == [None, "s1", "s1"]
    assert await store.session_for_conference("k1") is None


async def test_an_id_taken_over_by_another_session_stays_with_it(store: SessionStore) -> None:
    await store.put(rec("a", call_ids=frozenset({"c"})), expected_revision=None)
    await store.put(rec("b", call_ids=frozenset({"c"})), expected_revision=None)
    assert await store.session_for_call("c") == "b"  # the latest writer owns the id
    await store.put(rec("a"), expected_revision=1)
    assert await store.session_for_call("c") == "b"
    await store.delete("a")
    assert await store.session_for_call("c") == "b"


async def test_timers_come_due_in_order_and_follow_updates(store: SessionStore) -> None:
    await store.put(rec("a", timers={"t1": 100.0, "t2": 50.0}), expected_revision=None)
    await store.put(rec("b", timers={"t": 75.0}), expected_revision=None)
    assert await store.next_due() == 50.0
    assert await store.due_timers(80.0) == [DueTimer("a", "t2", 50.0), DueTimer("b", "t", 75.0)]
    assert await store.due_timers(1_000.0, limit=2) == [DueTimer("a", "t2", 50.0), DueTimer("b", "t", 75.0)]
    assert await store.due_timers(49.9) == []
    assert await store.due_timers(1_000.0, limit=0) == []
    with pytest.raises(ValueError):
        await store.due_timers(1_000.0, limit=-1)

    await store.put(rec("a", timers={"t3": 90.0}), expected_revision=1)  # t1, t2 fired or cancelled
    assert await store.due_timers(1_000.0) == [DueTimer("b", "t", 75.0), DueTimer("a", "t3", 90.0)]
    await store.delete("b")
    assert await store.next_due() == 90.0
    await store.put(rec("a"), expected_revision=2)
    assert await store.next_due() is None
    assert await store.due_timers(1_000.0) == []


async def test_delete_removes_the_session_and_its_indexes(store: SessionStore) -> None:
    record = rec(timers={"t": 5.0}, call_ids=frozenset({"c"}), conference_ids=frozenset({"k"}))
    await store.put(record, expected_revision=None)
    await store.delete("s1")
    await store.delete("s1")  # deleting what is gone is fine
    assert await store.get("s1") is None
    assert await store.session_for_call("c") is None
    assert await store.session_for_conference("k") is None
    assert await store.next_due() is None
    assert await store.list_sessions() == []
    assert await store.put(record, expected_revision=None) == 1  # the id can be reused


# --- listing and housekeeping -------------------------------------------------------------------------------


async def _five_sessions(store: SessionStore) -> None:
    specs = [("s1", "f1", "active"), ("s2", "f1", "ended"), ("s3", "f2", "active"), ("s4", "f1", "active")]
    specs.append(("s5", "f2", "failed"))
    for at, (sid, flow, status) in enumerate(specs, start=1):
        await store.put(rec(sid, flow=flow, status=status, updated_at=float(at)), expected_revision=None)


async def test_list_sessions_filters_and_pages_newest_first(store: SessionStore) -> None:
    await _five_sessions(store)

    async def ids(**query: Any) -> list[str]:
        return [record.id for record in await store.list_sessions(**query)]

    assert await ids() == ["s5", "s4", "s3", "s2", "s1"]
    assert await ids(status="active") == ["s4", "s3", "s1"]
    assert await ids(flow="f1") == ["s4", "s2", "s1"]
    assert await ids(status="active", flow="f1") == ["s4", "s1"]
    assert await ids(status="active", flow="f1", offset=1) == ["s1"]
    assert await ids(status="ended", flow="f2") == []
    assert await ids(limit=2, offset=1) == ["s4", "s3"]
    assert await ids(offset=10) == []
    assert await ids(limit=0) == []
    with pytest.raises(ValueError):
        await ids(offset=-1)
    listed = await store.list_sessions(limit=1)
    assert listed == [await store.get("s5")]

    await store.put(rec("s1", flow="f1", status="ended", updated_at=6.0), expected_revision=1)
    assert await ids(limit=2) == ["s1", "s5"]
    assert await ids(status="ended") == ["s1", "s2"]
    assert await ids(status="active") == ["s4", "s3"]


async def test_purge_removes_only_old_finished_sessions(store: SessionStore) -> None:
    await _five_sessions(store)
    await store.put(
        rec("s2", status="ended", updated_at=2.0, timers={"t": 9.0}, call_ids=frozenset({"c2"})),
        expected_revision=1,
    )
    assert await store.purge_ended(older_than=5.0) == 1  # s2; s5 failed at 5.0 is not older
    assert await store.get("s2") is None
    assert await store.session_for_call("c2") is None
    assert await store.next_due() is None
    assert sorted(r.id for r in await store.list_sessions()) == ["s1", "s3", "s4", "s5"]
    assert await store.purge_ended(older_than=100.0) == 1  # s5; active ones stay, however old
    assert await store.purge_ended(older_than=100.0) == 0


# --- claims and locks ---------------------------------------------------------------------------------------


async def test_claim_is_won_once(opener: Opener) -> None:
    first, second = opener(), opener()
    results = await asyncio.gather(*(s.claim("infobip:event-1", 60) for s in (first, second, first, second)))
    assert sorted(results) == [False, False, False, True]
    assert await second.claim("infobip:event-2", 60) is True
    with pytest.raises(ValueError):
        await first.claim("x", 0)


async def test_put_claims_its_mark_only_when_written(store: SessionStore) -> None:
    """A put given a claim makes it with the record (the replay mark of the step it saves); a put that
    conflicts makes neither, and a bad ttl is refused before anything is written."""
    assert await store.put(rec(), expected_revision=None, claim=Claim("event:a", 60)) == 1
    assert await store.claimed("event:a")
    assert not await store.claim("event:a", 60)  # the same mark as ``claim`` makes
    with pytest.raises(ConflictError):
        await store.put(rec(state="stale"), expected_revision=5, claim=Claim("event:b", 60))
    assert not await store.claimed("event:b")
    with pytest.raises(ValueError):
        await store.put(rec(state="x"), expected_revision=1, claim=Claim("event:c", 0))
    record = await store.get("s1")
    assert record is not None and (record.revision, record.state) == (1, rec().state)
    assert await store.put(rec(state="y"), expected_revision=1, claim=Claim("event:a", 60)) == 2  # held


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_claim_can_be_won_again_after_ttl(kind: str, tmp_path: Path, clock: FakeNow) -> None:
    store = MemoryStore(now=clock) if kind == "memory" else SqliteStore(tmp_path / "c.db", now=clock)
    try:
        assert await store.claim("k", 30)
        clock.t += 29.9
        assert not await store.claim("k", 30)
        clock.t += 0.1
        assert await store.claim("k", 30)
        assert not await store.claim("k", 30)
        await store.purge_ended(older_than=0)  # housekeeping drops expired claims, keeps live ones
        assert not await store.claim("k", 30)
    finally:
        await store.close()


async def test_a_claim_is_seen_by_every_instance_until_it_expires(opener: Opener, clock: FakeNow) -> None:
    """The replay memory: ``claimed`` reads what any instance's ``claim`` wrote, and claims nothing."""
    first, second = opener(), opener()
    assert not await second.claimed("infobip:event-1")
    assert not await second.claimed("infobip:event-1")  # a read does not claim
    assert await first.claim("infobip:event-1", 30)
    assert await second.claimed("infobip:event-1") and await first.claimed("infobip:event-1")
    assert not await second.claimed("infobip:event-2")
    if not isinstance(first, RedisStore):  # Redis expires keys on its own clock (test below)
        clock.t += 30
        assert not await second.claimed("infobip:event-1")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_expired_claims_do_not_pile_up(kind: str, tmp_path: Path, clock: FakeNow) -> None:
    """No housekeeping job runs: claiming sweeps out what has expired, so a long-running engine keeps
    about one TTL's worth of claims."""
    store = MemoryStore(now=clock) if kind == "memory" else SqliteStore(tmp_path / "c.db", now=clock)
    try:
        for n in range(3000):
            clock.t += 1
            assert await store.claim(f"event-{n}", 100)
        assert await store.claimed("event-2999") and not await store.claimed("event-2800")
        if isinstance(store, MemoryStore):
            assert len(store._claims) <= 2 * 1024
        else:
            count = await store._read(lambda db: db.execute("SELECT COUNT(*) FROM claims").fetchall())
            assert count[0][0] == 100
    finally:
        await store.close()


@pytest.mark.redis
async def test_redis_claim_expires_on_the_server(
    redis_opener: Callable[..., SessionStore], prefix: str
) -> None:
    store = redis_opener()
    assert await store.claim("k", 1.5)
    client = Redis.from_url(REDIS)
    try:
        assert 0 < await client.pttl(f"{prefix}claim:k") <= 1_500
    finally:
        await client.aclose()


async def _peak_holders(stores: list[SessionStore], session_id: str, tasks: int = 6) -> int:
    inside = peak = 0

    async def worker(store: SessionStore) -> None:
        nonlocal inside, peak
        async with store.lock(session_id):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.005)
            inside -= 1

    await asyncio.gather(*(worker(stores[i % len(stores)]) for i in range(tasks)))
    return peak


async def test_lock_excludes_tasks_per_session(store: SessionStore) -> None:
    assert await _peak_holders([store], "s1") == 1
    async with asyncio.timeout(5), store.lock("a"), store.lock("b"):
        pass  # different sessions do not wait for each other
    with pytest.raises(RuntimeError):
        async with store.lock("a"):
            raise RuntimeError("handler failed")
    async with asyncio.timeout(5), store.lock("a"):
        pass  # released despite the error


@pytest.mark.redis
async def test_redis_lock_excludes_engine_instances(redis_opener: Callable[..., SessionStore]) -> None:
    first, second = redis_opener(), redis_opener()
    assert await _peak_holders([first, second], "s1", tasks=8) == 1
    impatient = redis_opener("&lock_wait=0.05")
    async with first.lock("s1"):
        with pytest.raises(StoreError):
            async with impatient.lock("s1"):
                pass
    async with impatient.lock("s1"):
        pass


@pytest.mark.redis
async def test_redis_commands_past_the_pool_size_wait_for_a_connection(
    redis_opener: Callable[..., SessionStore],
) -> None:
    """More commands in flight than the pool has connections (webhooks in a burst) wait their turn: they
    used to fail at once with "Too many connections", and the webhooks with 503."""
    store = redis_opener("&max_connections=3")
    results = await asyncio.gather(*(store.claim(f"burst-{n}", 60) for n in range(40)))
    assert results == [True] * 40
    assert await asyncio.gather(*(store.claimed(f"burst-{n}") for n in range(40))) == [True] * 40


async def test_local_locks_are_dropped_when_idle() -> None:
    locks = LocalLocks()
    order: list[str] = []

    async def hold(name: str) -> None:
        async with locks.hold("s1"):
            order.append(name)
            await asyncio.sleep(0)
            order.append(name)

    await asyncio.gather(hold("a"), hold("b"), hold("c"))
    assert order == ["a", "a", "b", "b", "c", "c"]
    assert len(locks) == 0


# --- durability, URLs and errors -------------------------------------------------------------------------


async def test_sqlite_survives_reopening(tmp_path: Path, clock: FakeNow) -> None:
    path = tmp_path / "durable.db"
    store = SqliteStore(path, now=clock)
    record = rec(timers={"t": 7.0}, call_ids=frozenset({"c"}), conference_ids=frozenset({"k"}))
    await store.put(record, expected_revision=None)
    assert await store.claim("event-1", 60)
    await store.close()

    reopened = SqliteStore(path, now=clock)
    try:
        assert await reopened.get("s1") == replace(record, revision=1)
        assert await reopened.session_for_call("c") == "s1"
        assert await reopened.session_for_conference("k") == "s1"
        assert await reopened.due_timers(10.0) == [DueTimer("s1", "t", 7.0)]
        assert not await reopened.claim("event-1", 60)
        assert await reopened.put(record, expected_revision=1) == 2
    finally:
        await reopened.close()


async def test_open_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert isinstance(open_store("memory://"), MemoryStore)
    for url, path in [
        ("sqlite:///rel.db", tmp_path / "rel.db"),
        (f"sqlite:///{tmp_path}/abs.db", tmp_path / "abs.db"),
    ]:
        store = open_store(url)
        assert isinstance(store, SqliteStore)
        await store.put(rec(), expected_revision=None)
        await store.close()
        assert path.is_file()
    redis_store = open_store(f"{REDIS}?prefix=x:&lock_wait=1")
    assert isinstance(redis_store, RedisStore)
    await redis_store.close()
    for bad in ["postgres://db", "sqlite://", "sqlite:///", "memory", "", "redis://127.0.0.1:99999/0"]:
        with pytest.raises(ConfigError):
            open_store(bad)


@pytest.mark.redis
async def test_redis_keys_live_under_the_prefix_and_are_removed(
    redis_opener: Callable[..., SessionStore], prefix: str
) -> None:
    store = redis_opener()
    record = rec(timers={"t": 1.0}, call_ids=frozenset({"c"}), conference_ids=frozenset({"k"}))
    await store.put(record, expected_revision=None)
    assert len(await _redis_keys(prefix)) == 7  # session, call, conference, timers, sessions, status, flow
    await store.put(replace(record, status="ended", timers={}, call_ids=frozenset()), expected_revision=1)
    await store.delete("s1")
    assert await _redis_keys(prefix) == []


@pytest.mark.redis
async def test_unreachable_redis_raises_store_error() -> None:
    store = open_store("redis://127.0.0.1:1/0?prefix=x:")
    try:
        assert await store.ping() is False
        with pytest.raises(StoreError):
            await store.get("s1")
        with pytest.raises(StoreError):
            await store.put(rec(), expected_revision=None)
        with pytest.raises(StoreError):
            async with store.lock("s1"):
                pass
    finally:
        await store.close()


async def test_corrupt_sqlite_file_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not a database " * 200)
    store = SqliteStore(path)
    try:
        assert await store.ping() is False
        with pytest.raises(StoreError):
            await store.get("s1")
        with pytest.raises(StoreError):
            await store.put(rec(), expected_revision=None)
    finally:
        await store.close()


async def test_closed_store_refuses_work(store: SessionStore) -> None:
    assert await store.ping() is True
    await store.put(rec(), expected_revision=None)
    await store.close()
    assert await store.ping() is False
    with pytest.raises(StoreError):
        await store.get("s1")
    with pytest.raises(StoreError):
        await store.claim("k", 1)


# --- pacing: the token bucket ------------------------------------------------------------------------------


async def test_slots_fall_at_the_rate_after_the_burst(opener: Opener) -> None:
    first, second = opener(), opener()  # two instances on one storage share the bucket
    pace = Pace(interval=0.5, burst=3, max_wait=10.0)
    waits = [await (first if n % 2 else second).take_slot("infobip", pace, 100.0) for n in range(6)]
    assert waits == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5]
    horizon = await first.slot_horizon("infobip")
    assert horizon == pytest.approx(103.0) and await second.slot_horizon("infobip") == horizon
    # Later on the bucket has refilled, one slot per interval.
    assert await first.take_slot("infobip", pace, 104.0) == 0.0
    assert await first.slot_horizon("sinch") is None


async def test_a_slot_past_max_wait_is_refused_and_reserves_nothing(opener: Opener) -> None:
    store = opener()
    pace = Pace(interval=1.0, burst=1, max_wait=2.0)
    assert [await store.take_slot("k", pace, 50.0) for _ in range(3)] == [0.0, 1.0, 2.0]
    assert await store.take_slot("k", pace, 50.0) is None
    assert await store.slot_horizon("k") == pytest.approx(53.0)
    assert await store.take_slot("k", pace, 51.5) == pytest.approx(1.5)


async def test_concurrent_takers_get_distinct_slots(opener: Opener) -> None:
    stores = [opener() for _ in range(3)]
    pace = Pace(interval=0.25, burst=1, max_wait=100.0)
    waits = await asyncio.gather(*(stores[n % 3].take_slot("k", pace, 10.0) for n in range(30)))
    assert sorted(waits) == [n * 0.25 for n in range(30)]


def test_a_pace_refuses_nonsense() -> None:
    for bad in ({"interval": 0.0}, {"interval": 1.0, "burst": 0}, {"interval": 1.0, "max_wait": -1.0},
                {"interval": float("inf")}):
        with pytest.raises(ValueError):
            Pace(**bad)  # type: ignore[arg-type]


# --- census (the metrics' live gauges) -------------------------------------------------------------------


def _kind(timer_id: str) -> str:
    return timer_id.partition(":")[0]


async def test_census_counts_live_sessions_and_timers_store_wide(opener: Opener) -> None:
    one, other = opener(), opener()  # two engine instances on the same storage
    await one.put(rec("s1", timers={"after:a": 5.0, "reconcile": 9.0}), expected_revision=None)
    await one.put(rec("s2", state="dialing", timers={"after:b": 6.0}), expected_revision=None)
    await other.put(rec("s3", state="dialing", flow="other"), expected_revision=None)
    await other.put(rec("s4", status="ended", state="done"), expected_revision=None)
    census = await other.census(_kind)
    flow = "two-party-conference"
    assert dict(census.live) == {(flow, "answering"): 1, (flow, "dialing"): 1, ("other", "dialing"): 1}
    assert dict(census.timers) == {"after": 2, "reconcile": 1}
    # A session moving on moves its count; one that ends or is deleted leaves it, with its timers.
    await other.put(rec("s1", state="dialing"), expected_revision=1)
    await one.put(rec("s2", status="failed", state="failed"), expected_revision=1)
    await one.delete("s3")
    census = await one.census(_kind)
    assert dict(census.live) == {(flow, "dialing"): 1} and not census.timers


@pytest.mark.redis
async def test_redis_census_reads_the_state_of_a_session_stored_before_it_was_indexed(
    redis_opener: Callable[..., SessionStore], prefix: str
) -> None:
    store = redis_opener()
    await store.put(rec("s1", state="dialing"), expected_revision=None)
    client = Redis.from_url(REDIS)
    try:
        await client.hdel(f"{prefix}session:s1", "state")  # as an older version wrote it
    finally:
        await client.aclose()
    assert dict((await store.census(_kind)).live) == {("two-party-conference", "dialing"): 1}


# --- flow versions ----------------------------------------------------------------------------------------


async def test_a_flow_version_source_is_kept_once_and_read_by_another_instance(opener: Opener) -> None:
    first, second = opener(), opener()
    assert await first.flow_source("0123456789abcdef") is None
    await first.put_flow_source("0123456789abcdef", '{"flow": "ü"}\n')
    await first.put_flow_source("0123456789abcdef", "something else")  # a version's source never changes
    assert await second.flow_source("0123456789abcdef") == '{"flow": "ü"}\n'
    assert await second.flow_source("fedcba9876543210") is None


async def test_memory_store_keeps_the_sessions_written_last_hot_and_the_rest_cold() -> None:
    """Past ``hot`` sessions, the least recently written are kept as compressed documents: every read,
    index, listing and census answers as before, and a cold session is written again at its revision."""
    store = MemoryStore(hot=2)
    sealed = {"trace": [{"at": 1.5, "event": "call.answered", "commands": [["say", "ok", None]]}], "n": 2**70}
    for n in range(5):
        record = rec(f"s{n}", data=sealed, timers={f"after:{n}": 200.0 + n}, call_ids=frozenset({f"c{n}"}),
                     conference_ids=frozenset({f"room-{n}"}), updated_at=100.0 + n, sealed=n % 2 == 0)
        await store.put(record, expected_revision=None)
    cold_ids = {key for key, entry in store._entries.items() if type(entry).__name__ == "_Cold"}
    assert cold_ids == {"s0", "s1", "s2"}
    cold = await store.get("s0")
    assert cold == rec("s0", data=sealed, timers={"after:0": 200.0}, call_ids=frozenset({"c0"}),
                       conference_ids=frozenset({"room-0"}), updated_at=100.0, revision=1)
    assert cold is not None and cold.data is not sealed  # a fresh copy: the reader may change it
    cold.data["n"] = 0
    assert (await store.get("s0")) == replace(cold, data=sealed)
    assert await store.session_for_call("c1") == "s1" and await store.session_for_conference("room-2") == "s2"
    assert [t.session_id for t in await store.due_timers(now=202.0)] == ["s0", "s1", "s2"]
    assert [r.id for r in await store.list_sessions(limit=3)] == ["s4", "s3", "s2"]
    assert (await store.census(lambda timer_id: "flow")).live == {("two-party-conference", "answering"): 5}
    with pytest.raises(ConflictError):
        await store.put(rec("s1", updated_at=300.0), expected_revision=2)
    assert await store.put(rec("s1", status="ended", updated_at=300.0), expected_revision=1) == 2
    assert await store.session_for_call("c1") is None and await store.due_timers(now=201.0) == [
        DueTimer("s0", "after:0", 200.0)]
    await store.delete("s0")
    assert await store.session_for_call("c0") is None and await store.get("s0") is None
    assert await store.purge_ended(older_than=400.0) == 1 and await store.get("s1") is None
    with pytest.raises(ValueError, match="hot must be at least 1"):
        MemoryStore(hot=0)
