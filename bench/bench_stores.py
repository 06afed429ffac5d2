"""Session-store throughput: puts (create, update) and gets per second for memory, SQLite and Redis.

Each record looks like a session mid-call: a few vars, two calls, a conference, a pending timer and a
20-step trace (~2 KB of JSON). Writes are sequential, as one session's events are; ``*_parallel`` figures
run 16 tasks against the one store. SQLite writes to a temporary file; Redis uses db 11 under a unique
prefix and removes its keys afterwards. Run: ``python bench/bench_stores.py``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from flowengine.errors import StoreError
from flowengine.stores import SessionRecord, SessionStore, open_store

SESSIONS = 2_000
PARALLEL = 16
REDIS = "redis://127.0.0.1:6379/11"


def make_record(n: int, step: int = 0) -> SessionRecord:
    trace = [
        {"at": 1_767_225_600.0 + i, "event": "call.answered", "from": "answering", "to": "opening_room"}
        for i in range(20)
    ]
    data = {
        "id": f"s-{n}",
        "vars": {"callee": "447415784323", "caller_id": "4592457976", "step": step},
        "calls": {"caller": f"caller-{n}", "callee": f"callee-{n}"},
        "conferences": {"room": f"conf-{n}"},
        "trace": trace,
    }
    return SessionRecord(
        id=f"s-{n}",
        flow="two-party-conference",
        state="dialing",
        status="active",
        data=data,
        timers={"dialing/after:60s": 1_767_225_660.0 + n},
        call_ids=frozenset({f"caller-{n}", f"callee-{n}"}),
        conference_ids=frozenset({f"conf-{n}"}),
        updated_at=1_767_225_600.0 + n,
    )


async def _per_second(count: int, op: Callable[[int], Awaitable[object]], parallel: int = 1) -> float:
    async def worker(start: int) -> None:
        for n in range(start, count, parallel):
            await op(n)

    started = time.perf_counter()
    await asyncio.gather(*(worker(start) for start in range(parallel)))
    return count / (time.perf_counter() - started)


async def measure(store: SessionStore, sessions: int = SESSIONS) -> dict[str, float]:
    """Create every session, update each once, read each back; sequentially, then from 16 tasks."""
    created = [make_record(n) for n in range(sessions)]
    updated = [make_record(n, step=1) for n in range(sessions)]
    again = [make_record(n, step=2) for n in range(sessions)]
    return {
        "put_create_per_s": await _per_second(
            sessions, lambda n: store.put(created[n], expected_revision=None)
        ),
        "put_update_per_s": await _per_second(sessions, lambda n: store.put(updated[n], expected_revision=1)),
        "get_per_s": await _per_second(sessions, lambda n: store.get(f"s-{n}")),
        "put_update_parallel_per_s": await _per_second(
            sessions, lambda n: store.put(again[n], expected_revision=2), PARALLEL
        ),
        "get_parallel_per_s": await _per_second(sessions, lambda n: store.get(f"s-{n}"), PARALLEL),
    }


async def _bench(url: str) -> dict[str, float]:
    store = open_store(url)
    try:
        return await measure(store)
    finally:
        await store.close()


async def _wipe_redis(prefix: str) -> None:
    client = Redis.from_url(REDIS)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=1_000)]
        for start in range(0, len(keys), 1_000):
            await client.delete(*keys[start : start + 1_000])
    except (RedisError, OSError):
        pass  # Redis was unreachable; the error is already in the figures
    finally:
        await client.aclose()


async def _all() -> dict[str, Any]:
    figures: dict[str, Any] = {"sessions": SESSIONS}
    with tempfile.TemporaryDirectory() as tmp:
        urls = {"memory": "memory://", "sqlite": f"sqlite:///{Path(tmp) / 'bench.db'}"}
        for name, url in urls.items():
            figures.update({f"{name}_{key}": value for key, value in (await _bench(url)).items()})
    prefix = f"fe-bench:{uuid.uuid4().hex}:"
    try:
        redis_figures = await _bench(f"{REDIS}?prefix={prefix}")
        figures.update({f"redis_{key}": value for key, value in redis_figures.items()})
    except StoreError as exc:
        figures["redis_error"] = str(exc)
    finally:
        await _wipe_redis(prefix)
    return figures


def run() -> dict[str, Any]:
    return asyncio.run(_all())


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:34} {value:,.0f}" if isinstance(value, float) else f"{name:34} {value}")
