"""Session documents through orjson (issue 15): what the previous version stored still loads, what orjson
cannot hold exactly (long integers, NaN) is read and refused as before, and a store hands out the record
it wrote last only while it still holds that very version."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from flowengine.errors import StoreError
from flowengine.plainjson import load_json, write_fast
from flowengine.providers.intake import load_json as load_webhook
from flowengine.runtime.session import Session, Step
from flowengine.server.sessions import StoredSessions, to_record
from flowengine.stores.base import dump_sealed
from flowengine.stores.redis import RedisStore
from flowengine.stores.sqlite import SqliteStore
from flowengine.testing import wipe_redis

REDIS = "redis://127.0.0.1:6379/11"
LONG = 2**70  # beyond orjson's 64 bits


def session(session_id: str = "s1", **vars_: Any) -> Session:
    s = Session(session_id, "flow", 1, "listening", {"name": "Zoë", **vars_}, {"caller": "c1"},
                call_states={"c1": "up"}, timers={"after:listening:1h#1": ("listening", "1h", 5_000.0)},
                status="active", created=100.0, updated=100.5)
    s.record(Step(100.0, "call.received", None, "listening", commands=(("answer", "ok", "id-1"),),
                  latencies=(0.012,)))
    s.record(Step(100.5, "say.finished", "listening", None, guards=(("vars.n > 1", False),)))
    return s


def old_dump(value: Any) -> str:
    """How the previous version wrote every document (``json.dumps``)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


async def test_a_sqlite_session_stored_by_the_previous_version_loads(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = SqliteStore(path)
    await store.ping()  # creates the schema
    old = session(n=3)
    record = to_record(old)
    row = (old.id, old.flow, old.state, "active", old_dump(record.data), old_dump(dict(record.timers)),
           old_dump(sorted(record.call_ids)), old_dump(sorted(record.conference_ids)), old.updated, 1)
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        db.execute("INSERT INTO call_index VALUES ('call', 'c1', ?)", (old.id,))
    loaded = await StoredSessions(SqliteStore(path)).load(old.id)
    assert loaded is not None
    assert loaded.to_json() == {**old.to_json(), "revision": 1}
    assert await store.session_for_call("c1") == old.id
    await store.close()


async def test_long_integers_and_text_survive_a_sealed_round_trip(tmp_path: Path) -> None:
    sessions = StoredSessions(SqliteStore(tmp_path / "sessions.db"))
    saved = session(big=LONG, nested={"big": -LONG, "list": [LONG, 1.5]}, text="\u00e9\u4e2d\U0001f600")
    await sessions.save(saved)
    fresh = await StoredSessions(SqliteStore(tmp_path / "sessions.db")).load("s1")  # read from the file
    assert fresh is not None and fresh.vars == saved.vars
    assert type(fresh.vars["big"]) is int and fresh.vars["nested"]["list"][0] == LONG


def test_orjson_writes_what_the_standard_library_reads_back_the_same() -> None:
    doc = to_record(session(n=1, f=0.1, big=LONG)).data
    assert json.loads(dump_sealed(doc)) == json.loads(old_dump(doc)) == doc
    assert write_fast({"big": LONG}) is None  # refused: the standard library writes it instead
    assert load_json(old_dump({"big": LONG, "x": [1.5, "a"]})) == {"big": LONG, "x": [1.5, "a"]}


@pytest.mark.parametrize("value", [{1: "a key that is not text"}, {"a": "\ud800"}, [LONG]])
def test_what_orjson_refuses_is_written_as_before(value: Any) -> None:
    assert dump_sealed(value) == old_dump(value)


def test_nan_is_still_refused() -> None:
    with pytest.raises(StoreError):
        dump_sealed({"a": [LONG, float("nan")]})  # past orjson (the long integer), then refused


@pytest.mark.parametrize("body, message", [
    (b'{"a": NaN}', "not valid JSON"), (b'{"a": 1e999}', "not valid JSON"), (b'{"a": "\\ud800"}', "Unicode"),
    (b'{"a": "\xff"}', "not UTF-8"), (b'{"a": ', "not valid JSON"),
])
def test_webhook_bodies_are_refused_with_the_same_reasons(body: bytes, message: str) -> None:
    from flowengine.errors import WebhookError

    with pytest.raises(WebhookError, match=message):
        load_webhook(body, "the body")


def test_webhook_bodies_keep_long_integers_exact() -> None:
    assert load_webhook(b'{"id": 123456789012345678901234567890, "f": 1.5}', "x") == {
        "id": 123456789012345678901234567890, "f": 1.5}


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"fe-test:{uuid.uuid4().hex}:"
    yield prefix
    await wipe_redis(REDIS, prefix)


@pytest.mark.redis
async def test_redis_hands_out_its_last_record_only_while_redis_holds_it(redis_prefix: str) -> None:
    first = RedisStore.from_url(f"{REDIS}?prefix={redis_prefix}")
    second = RedisStore.from_url(f"{REDIS}?prefix={redis_prefix}")
    try:
        record = to_record(session())
        await first.put(record, expected_revision=None)
        kept = await first.get("s1")
        assert kept is not None and kept.data is record.data and kept.revision == 1  # no document read
        newer = session()
        newer.updated = 200.0
        await second.put(to_record(newer), expected_revision=1)  # another instance writes
        fresh = await first.get("s1")
        assert fresh is not None and fresh.revision == 2 and fresh.updated_at == 200.0
        assert fresh.data == json.loads(json.dumps(to_record(newer).data))
        await second.delete("s1")
        assert await first.get("s1") is None
    finally:
        await first.close()
        await second.close()


@pytest.mark.redis
async def test_a_redis_session_stored_by_the_previous_version_loads(redis_prefix: str) -> None:
    store = RedisStore.from_url(f"{REDIS}?prefix={redis_prefix}")
    try:
        old = session(n=2)
        record = to_record(old)
        doc = old_dump({"id": old.id, "flow": old.flow, "state": old.state, "status": "active",
                        "data": record.data, "timers": dict(record.timers), "call_ids": ["c1"],
                        "conference_ids": [], "updated_at": old.updated})
        client = Redis.from_url(REDIS)
        try:  # the previous version's hash: no 'upd' field
            await client.hset(f"{redis_prefix}session:{old.id}", mapping={
                "rev": 4, "doc": doc, "status": "active", "flow": old.flow, "calls": '["c1"]',
                "conferences": "[]", "timers": "[]"})
        finally:
            await client.aclose()
        loaded = await StoredSessions(store).load(old.id)
        assert loaded is not None and loaded.to_json() == {**old.to_json(), "revision": 4}
        loaded.updated = 300.0
        await StoredSessions(store).save(loaded)  # and it is written on from there
        again = await store.get(old.id)
        assert again is not None and again.revision == 5
    finally:
        await store.close()
