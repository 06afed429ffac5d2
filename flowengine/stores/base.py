"""The session-store port: records, the ``SessionStore`` protocol and ``open_store(url)``.

Stores work at the dict level: they never import the runtime. The service hands them a session's plain-JSON
form plus the few things they index (call ids, conference ids, pending timers), and gets the same back.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from flowengine.errors import ConfigError, StoreError
from flowengine.plainjson import load_json, write_fast
from flowengine.redaction import redact_url

STATUSES = frozenset({"active", "ended", "failed"})
# Sessions in these states are finished; ``purge_ended`` may remove them.
FINISHED = ("ended", "failed")
# Sessions a process keeps decoded, the most recently written: each store's last written records (so a
# ``get`` of one needs no document read) and the service's ``Session`` objects (``StoredSessions``). At
# ~10 KB each with a full trace, ~20 MB at most; the memory store keeps the others compressed.
HOT_SESSIONS = 2_048

Now = Callable[[], float]


@dataclass(slots=True)
class SessionRecord:
    """One session as stored. ``revision`` is set by the store on ``get`` and ignored by ``put``.

    ``sealed`` is its writer's promise that ``data`` is plain JSON already (``plain_json``'s output or
    built from such values) and that nobody changes the record afterwards, the readers of ``get``
    included: the writer hands it over to the store. The memory store then keeps and hands out that very
    record (stamped with its revision, its unchanged parts shared with the version it replaces) instead
    of a copy; other stores serialise every record alike. Unsealed records (the default) are checked and
    copied by every store.

    Not a frozen dataclass, though nobody but the store that took a sealed record changes one: a frozen
    one's ``__init__`` sets each field through ``object.__setattr__``, several times the cost, and one is
    made per save (25 per seed call).
    """

    id: str
    flow: str
    state: str
    status: str
    data: dict[str, Any]  # the session's plain-JSON form, stored verbatim
    timers: Mapping[str, float]  # timer id -> due epoch seconds (pending timers only)
    call_ids: frozenset[str]  # every platform call id the session owns
    conference_ids: frozenset[str]
    updated_at: float
    revision: int = 0
    sealed: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"session status must be one of {sorted(STATUSES)}, not {self.status!r}")


@dataclass(slots=True)  # not frozen: one per webhook event, and a frozen one's __init__ costs far more
class Claim:
    """A ``claim`` to make in the same atomic step as a ``put``, and only if the put is made: the service's
    replay mark of the webhook event whose step the put saves (one commit instead of two). Never changed."""

    key: str
    ttl: float


@dataclass(frozen=True)
class DueTimer:
    """A pending timer whose time has come."""

    session_id: str
    timer_id: str
    due: float


@dataclass(frozen=True)
class Census:
    """What a store holds right now, store-wide (every instance sharing it): live sessions by (flow,
    state) and the timer index's entries by kind (``census``'s ``kind`` of each timer id)."""

    live: Mapping[tuple[str, str], int]
    timers: Mapping[str, int]


TimerKind = Callable[[str], str]


def tally(live: Iterable[tuple[str, str]], timer_ids: Iterable[str], kind: TimerKind) -> Census:
    """A census of the live sessions' (flow, state) pairs and the timer ids, counted."""
    return Census(Counter(live), Counter(kind(timer_id) for timer_id in timer_ids))


class SessionStore(Protocol):
    """Where sessions live between events; shared by every engine instance of a deployment."""

    async def get(self, session_id: str) -> SessionRecord | None:
        """The session with its current revision, or None."""
        ...

    async def put(
        self, record: SessionRecord, *, expected_revision: int | None, claim: Claim | None = None
    ) -> int:
        """Write ``record`` if the stored revision is ``expected_revision`` (None: must not exist yet).

        Returns the new revision; raises ConflictError on a mismatch. Updates the call-id, conference-id
        and timer indexes in the same atomic step. ``claim`` is made as ``claim`` makes it, once the
        record is written and never without it (in the same transaction where the store has them).
        """
        ...

    async def session_for_call(self, call_id: str) -> str | None:
        """The id of the session owning this platform call id."""
        ...

    async def session_for_conference(self, conference_id: str) -> str | None:
        """The id of the session owning this platform conference id."""
        ...

    async def due_timers(self, now: float, limit: int = 100) -> list[DueTimer]:
        """Pending timers due at or before ``now``, earliest first."""
        ...

    async def next_due(self) -> float | None:
        """When the earliest pending timer is due, or None when there is none."""
        ...

    async def list_sessions(
        self, *, status: str | None = None, flow: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[SessionRecord]:
        """Sessions matching the filters, most recently updated first."""
        ...

    async def census(self, kind: TimerKind) -> Census:
        """Live (active) sessions by flow and state, and pending timers by ``kind(timer id)``, read now
        (the metrics' gauges, at scrape time: right across instances and restarts)."""
        ...

    async def claim(self, key: str, ttl: float) -> bool:
        """Atomic set-if-absent: True for the first caller within ``ttl`` seconds. The service marks each
        webhook event it has handled with it, store-wide, so a replay to any instance is recognised."""
        ...

    async def claimed(self, key: str) -> bool:
        """True while a claim on ``key`` is live (a read: nothing is claimed)."""
        ...

    def lock(self, session_id: str) -> AbstractAsyncContextManager[None]:
        """Mutual exclusion per session (across engine instances where the store is shared)."""
        ...

    async def take_slot(self, key: str, pace: Pace, now: float) -> float | None:
        """Reserve the next slot of the token bucket ``key`` (``next_slot``'s arithmetic, one atomic step
        store-wide, so instances sharing the store share the rate): the seconds from ``now`` until the
        slot is due (0: at once), or None, reserving nothing, when that is more than ``pace.max_wait``."""
        ...

    async def slot_horizon(self, key: str) -> float | None:
        """The bucket's theoretical arrival time (when its next slot would fall with no burst left), or
        None when it is unused or has drained (a read: nothing is reserved)."""
        ...

    async def put_flow_source(self, version: str, source: str) -> None:
        """Keep a flow version's resolved source under its version (a content hash: writing it again is
        a no-op), so any instance can run a session on the version it started on (``server.catalog``)."""
        ...

    async def flow_source(self, version: str) -> str | None:
        """The resolved source kept under ``version``, or None."""
        ...

    async def delete(self, session_id: str) -> None:
        """Remove the session and its index entries (no error when it does not exist)."""
        ...

    async def purge_ended(self, older_than: float) -> int:
        """Remove ended/failed sessions last updated before ``older_than``; returns how many."""
        ...

    async def ping(self) -> bool:
        """Readiness: True when the store answers."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...


@dataclass(frozen=True, slots=True)
class Pace:
    """A token bucket: one slot every ``interval`` seconds, up to ``burst`` at once after a quiet spell;
    a taker that would wait more than ``max_wait`` seconds is refused instead."""

    interval: float
    burst: int = 1
    max_wait: float = 20.0

    def __post_init__(self) -> None:
        if not (self.interval > 0 and math.isfinite(self.interval)) or self.burst < 1 or self.max_wait < 0:
            raise ValueError(f"a pace needs interval > 0, burst >= 1 and max_wait >= 0, not {self}")


def next_slot(horizon: float | None, pace: Pace, now: float) -> tuple[float | None, float | None]:
    """The generic cell rate algorithm with reservations: (seconds to wait, the bucket's new horizon);
    (None, the old horizon) when the wait would be over ``pace.max_wait``. ``horizon`` (the theoretical
    arrival time) moves one interval per slot taken; a slot falls ``burst - 1`` intervals before it, and
    never before ``now``. Over any span of ``t`` seconds at most ``burst + t / interval`` slots fall."""
    base = now if horizon is None or horizon < now else horizon
    slot = max(now, base - (pace.burst - 1) * pace.interval)
    wait = slot - now
    if wait > pace.max_wait:
        return None, horizon
    return wait, base + pace.interval


def open_store(url: str, *, now: Now = time.time) -> SessionStore:
    """A store for ``url``: ``memory://``, ``sqlite:///rel.db``, ``sqlite:////abs.db``, ``redis://h:p/db?prefix=``.

    ``now`` is the clock for claim expiry in the memory and SQLite stores (Redis expires keys itself).
    Connections are made lazily; await ``ping()`` at start-up to fail fast.
    """
    scheme, sep, _ = url.partition("://")
    # Imported here so the port does not pull in every driver, and the adapters can import this module.
    if sep and scheme == "memory":
        from flowengine.stores.memory import MemoryStore

        return MemoryStore(now=now)
    if sep and scheme == "sqlite":
        from flowengine.stores.sqlite import SqliteStore

        return SqliteStore.from_url(url, now=now)
    if sep and scheme in ("redis", "rediss", "unix"):
        from flowengine.stores.redis import RedisStore

        return RedisStore.from_url(url)
    raise ConfigError(
        f"unsupported store URL {redact_url(url)!r} (expected memory://, sqlite:///... or redis://...)"
    )


def dump_sealed(value: Any) -> str:
    """``dump_json`` for data its writer vouches is plain JSON already (``SessionRecord.sealed``), several
    times faster on a session's document; what orjson refuses goes the standard library's way, strictly."""
    text = write_fast(value)
    return dump_json(value) if text is None else text


def dump_json(value: Any) -> str:
    """Compact, strict JSON (no NaN/Infinity), so every store keeps exactly what a JSON reader can read."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"session data is not plain JSON: {exc}") from exc


_SCALARS = (str, int, bool, type(None))


def plain_json(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` as a JSON round trip gives it back (tuples become lists, keys strings, ...), or a
    ``StoreError`` for what JSON cannot hold, as a store would say on ``put``. A dict of plain scalars,
    the usual case, is returned as it is, without the round trip."""
    for key, item in value.items():
        kind = type(item)
        if type(key) is not str or (kind not in _SCALARS and not (kind is float and math.isfinite(item))):
            return dict(json.loads(dump_json(value)))
    return value


def check_record(record: SessionRecord) -> None:
    """Reject what no store could index faithfully."""
    for due in record.timers.values():
        if not math.isfinite(due):
            raise StoreError(f"session {record.id!r} has a timer that is not a finite time")
    if not math.isfinite(record.updated_at):
        raise StoreError(f"session {record.id!r} has an updated_at that is not a finite time")


def record_to_doc(record: SessionRecord) -> str:
    """The whole record (bar the revision) as one JSON document."""
    check_record(record)
    return (dump_sealed if record.sealed else dump_json)(
        {
            "id": record.id,
            "flow": record.flow,
            "state": record.state,
            "status": record.status,
            "data": record.data,
            "timers": dict(record.timers),
            "call_ids": sorted(record.call_ids),
            "conference_ids": sorted(record.conference_ids),
            "updated_at": record.updated_at,
        }
    )


def record_from_doc(doc: str | bytes, revision: int) -> SessionRecord:
    """Inverse of ``record_to_doc``."""
    try:
        raw = load_json(doc)
        return SessionRecord(
            id=raw["id"],
            flow=raw["flow"],
            state=raw["state"],
            status=raw["status"],
            data=raw["data"],
            timers={str(k): float(v) for k, v in raw["timers"].items()},
            call_ids=frozenset(raw["call_ids"]),
            conference_ids=frozenset(raw["conference_ids"]),
            updated_at=float(raw["updated_at"]),
            revision=revision,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreError(f"stored session is unreadable: {exc}") from exc


def check_paging(limit: int, offset: int) -> None:
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must not be negative")


def check_ttl(ttl: float) -> None:
    if not ttl > 0:
        raise ValueError(f"claim ttl must be positive, not {ttl!r}")


@dataclass
class _Holders:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # tasks holding or waiting for the lock


class LocalLocks:
    """An ``asyncio.Lock`` per key, made on demand and dropped once nobody holds or awaits it.

    Enough for one process (memory and SQLite stores); shared deployments use Redis' distributed lock.
    """

    def __init__(self) -> None:
        self._holders: dict[str, _Holders] = {}

    def __len__(self) -> int:
        return len(self._holders)

    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        return _Hold(self._holders, key)


class _Hold:
    """``LocalLocks.hold`` as a class: taken once per event, where a generator-based one costs double."""

    __slots__ = ("_holders", "_key", "_taken")

    def __init__(self, holders: dict[str, _Holders], key: str) -> None:
        self._holders = holders
        self._key = key
        self._taken: _Holders | None = None

    async def __aenter__(self) -> None:
        holders = self._holders.get(self._key)
        if holders is None:
            holders = self._holders[self._key] = _Holders()
        holders.users += 1
        try:
            await holders.lock.acquire()
        except BaseException:  # cancelled while waiting: no longer a user
            self._leave(holders)
            raise
        self._taken = holders

    async def __aexit__(self, *exc_info: object) -> None:
        holders = self._taken
        assert holders is not None, "released a lock that was not taken"
        self._taken = None
        holders.lock.release()
        self._leave(holders)

    def _leave(self, holders: _Holders) -> None:
        holders.users -= 1
        if holders.users == 0:
            del self._holders[self._key]
