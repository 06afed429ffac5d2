"""The webhook hot path's state: the per-process session cache, sealed records, shared step documents, timer
wake-ups only on change, duplicate keys from the webhook's bytes, and the collector's sizing."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from flowengine.errors import ConflictError, StoreError
from flowengine.providers.infobip.webhooks import parse_events
from flowengine.runtime.events import Event
from flowengine.runtime.session import Session, Step
from flowengine.server.app import GC_YOUNG_THRESHOLD, collector_tuning
from flowengine.server.sessions import StoredSessions, to_record
from flowengine.stores.base import plain_json
from flowengine.stores.memory import MemoryStore
from flowengine.stores.sqlite import SqliteStore


def session(session_id: str = "s1", **vars_: Any) -> Session:
    s = Session(session_id, "flow", 1, "listening", dict(vars_), {"caller": "c1"}, call_states={"c1": "up"},
                timers={"after:listening:1h#1": ("listening", "1h", 5_000.0)}, status="active",
                created=100.0, updated=100.0)
    s.record(Step(100.0, "call.received", None, "listening", commands=(("answer", "ok", None),)))
    return s


def next_version(s: Session, at: float, **changes: Any) -> Session:
    """What the engine hands the store after an event: a copy, one more step."""
    nxt = s.copy()
    nxt.updated = at
    nxt.record(Step(at, "say.finished", nxt.state, None))
    for name, value in changes.items():
        setattr(nxt, name, value)
    return nxt


class Pokes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def test_a_stored_session_is_handed_out_again_while_the_store_holds_it() -> None:
    sessions = StoredSessions(MemoryStore())
    first = session()
    await sessions.save(first)
    assert await sessions.load("s1") is first  # no rebuild from the document
    assert await sessions.load("s1") == Session.from_json(to_record(first).data)
    assert await sessions.load("missing") is None


async def test_another_writer_makes_the_session_read_again(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    stores = [SqliteStore(path), SqliteStore(path)]  # two engine instances sharing a store
    try:
        mine, theirs = StoredSessions(stores[0]), StoredSessions(stores[1])
        await mine.save(session())
        theirs_copy = await theirs.load("s1")
        assert theirs_copy is not None
        await theirs.save(next_version(theirs_copy, 200.0, state="elsewhere"))
        reloaded = await mine.load("s1")
        assert reloaded is not None
        assert (reloaded.state, reloaded.revision, len(reloaded.trace)) == ("elsewhere", 2, 2)
    finally:
        for store in stores:
            await store.close()


async def test_a_session_started_again_at_the_same_revision_is_read_again() -> None:
    store = MemoryStore()
    sessions = StoredSessions(store)
    await sessions.save(session())
    await store.delete("s1")  # by someone else: this cache still holds revision 1
    restarted = session(note="new")
    restarted.updated = 150.0
    await store.put(to_record(restarted), expected_revision=None)
    again = await sessions.load("s1")
    assert again is not None and again.vars == {"note": "new"} and again.revision == 1
    await store.delete("s1")
    assert await sessions.load("s1") is None


async def test_the_cache_keeps_at_most_its_size() -> None:
    sessions = StoredSessions(MemoryStore(), cache_size=1)
    a, b = session("a"), session("b")
    await sessions.save(a)
    await sessions.save(b)  # pushes a out
    assert await sessions.load("b") is b
    loaded = await sessions.load("a")
    assert loaded is not a and loaded == a  # read from the store again


async def test_a_session_read_back_cold_carries_on_where_it_was() -> None:
    """Past the hot sessions the memory store keeps a session compressed; read back, it is the session
    saved, and its next version is written at the next revision."""
    store = MemoryStore(hot=1)
    sessions = StoredSessions(store, cache_size=1)
    a = session("a", n=2**70, text="é\u2028")
    await sessions.save(a)
    await sessions.save(session("b"))  # a goes cold, and out of the cache
    cold = await sessions.load("a")
    assert cold is not None and cold is not a and cold == a and cold.revision == 1
    await sessions.save(next_version(cold, 200.0, state="elsewhere"))
    again = await sessions.load("a")
    assert again is not None and (again.state, again.revision, len(again.trace)) == ("elsewhere", 2, 2)


async def test_the_timer_loop_is_poked_only_when_a_timer_table_changes() -> None:
    pokes = Pokes()
    sessions = StoredSessions(MemoryStore(), on_timers_changed=pokes)
    current = session()
    await sessions.save(current)  # a new session arming a timer
    assert pokes.count == 1
    for at in (200.0, 300.0):  # events that leave the timers alone
        loaded = await sessions.load("s1")
        assert loaded is not None
        await sessions.save(next_version(loaded, at))
    assert pokes.count == 1
    loaded = await sessions.load("s1")
    assert loaded is not None
    await sessions.save(next_version(loaded, 400.0, timers={}))
    assert pokes.count == 2


async def test_vars_are_stored_as_json_gives_them_back() -> None:
    sessions = StoredSessions(MemoryStore())
    await sessions.save(session(pair=(1, 2), keyed={1: "one"}, n=2, f=0.5, s="x", b=True, nothing=None))
    loaded = await sessions.load("s1")
    assert loaded is not None
    assert loaded.vars == {"pair": [1, 2], "keyed": {"1": "one"}, "n": 2, "f": 0.5, "s": "x", "b": True,
                           "nothing": None}
    with pytest.raises(StoreError, match="not plain JSON"):
        await sessions.save(session("s2", bad=float("nan")))
    with pytest.raises(StoreError, match="not plain JSON"):
        await sessions.save(session("s3", bad=object()))


def test_plain_json_keeps_plain_scalars_as_they_are() -> None:
    plain = {"a": 1, "b": "x", "c": None, "d": 0.5, "e": False}
    assert plain_json(plain) is plain
    assert plain_json({"t": (1, "a")}) == {"t": [1, "a"]}


async def test_a_sealed_record_is_kept_and_handed_out_as_it_is() -> None:
    store = MemoryStore()
    record = to_record(session())
    assert record.sealed
    await store.put(record, expected_revision=None)
    got = await store.get("s1")
    assert got is not None and got.data is record.data and got.revision == 1
    assert [r.data for r in await store.list_sessions()] == [record.data]


async def test_a_sealed_record_is_kept_itself_with_its_revision_sharing_what_did_not_change() -> None:
    store = MemoryStore()
    first = to_record(session())
    await store.put(first, expected_revision=None)
    second = to_record(session())  # equal timers and ids, in objects of its own
    assert second.timers == first.timers and second.timers is not first.timers
    assert await store.put(second, expected_revision=1) == 2
    assert await store.get("s1") is second and second.revision == 2
    assert second.timers is first.timers and second.call_ids is first.call_ids
    third = to_record(session())
    with pytest.raises(ConflictError):  # refused: handed back as it came
        await store.put(third, expected_revision=1)
    assert third.revision == 0 and third.timers is not first.timers
    assert await store.get("s1") is second


async def test_a_mark_asked_about_then_claimed_with_a_save_is_claimed_once() -> None:
    store = MemoryStore()
    sessions = StoredSessions(store)
    for _ in range(300):  # marks asked about and never claimed: what is kept for them stays bounded
        assert not await store.claimed(f"event:other:{_}")
    assert not await store.claimed("event:infobip:id:e1")
    await sessions.save(session(), mark="event:infobip:id:e1")
    assert await store.claimed("event:infobip:id:e1")
    assert not await store.claim("event:infobip:id:e1", 60.0)
    assert await store.claim("event:infobip:id:e2", 60.0) and await store.claimed("event:infobip:id:e2")
    assert len(store._unclaimed) <= 256


def test_step_documents_are_built_once_and_rebuilt_after_a_change() -> None:
    step = Step(1.0, "dtmf.captured", "a", None)
    doc = step.to_json()
    assert step.to_json() is doc
    step.commands += (("send_dtmf", "ok", None),)
    changed = step.to_json()
    assert changed is not doc and changed["commands"] == [["send_dtmf", "ok", None]]
    assert doc["commands"] == []  # what was handed out earlier stays as it was
    assert Step.from_json(json.loads(json.dumps(changed))) == step


def test_infobip_duplicates_are_keyed_by_the_body_bytes() -> None:
    payload = {"type": "SAY_FINISHED", "callId": "c1", "timestamp": "2026-01-01T00:00:00.000+0000",
               "properties": {"duration": 1}}
    body = json.dumps(payload).encode()
    (first,), (again,) = parse_events(body), parse_events(body)
    assert first.event_id is None and first.digest
    assert first.dedupe_key() == again.dedupe_key()
    (spaced,) = parse_events(json.dumps(payload, indent=1).encode())
    assert spaced.dedupe_key() != first.dedupe_key()
    listed = parse_events(json.dumps([payload, payload]).encode())
    assert [e.digest for e in listed] == [None, None]  # each item keeps its payload hash
    assert listed[0].dedupe_key() == listed[1].dedupe_key() == Event("x", raw=payload).dedupe_key()


async def test_the_app_sizes_the_collector_while_it_runs_and_restores_it() -> None:
    before = gc.get_threshold()
    app = web.Application()
    app.cleanup_ctx.append(collector_tuning)
    runner = web.AppRunner(app)
    gc.set_threshold(700, 10, 10)
    try:
        await runner.setup()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
        await runner.cleanup()
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


async def test_a_finished_session_is_kept_for_the_events_after_its_end() -> None:
    """A call's last webhooks (the other leg's hang-up, the conference's end) come after its session
    ended: they are handed the session saved, not a rebuild of its document."""
    sessions = StoredSessions(MemoryStore())
    done = session()
    done.status = "ended"
    await sessions.save(done)
    loaded = await sessions.load("s1")
    assert loaded is done
