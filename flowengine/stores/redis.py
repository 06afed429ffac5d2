"""Redis session store: several engine instances share one Redis.

Layout under a configurable prefix ``p`` (default ``flowengine:``):

    p session:<id>       hash: rev, doc (the record as JSON), status, flow, state, calls, conferences,
                         timers, upd (updated_at as written: with rev, what `get` compares with the
                         record kept)
    p call:<id>          string: owning session id (likewise ``p conference:<id>``)
    p timers             sorted set: JSON ``[session id, timer id]`` scored by due time
    p sessions           sorted set: session ids by updated_at (also ``p status:<s>``, ``p flow:<f>``)
    p claim:<key>        SET NX PX: a webhook event handled (replay memory)
    p lock:<id>          redis-py Lock token
    p pace:<key>         string: a token bucket's horizon (``take_slot``), expiring once it has drained
    p flow-source:<v>    string: a flow version's resolved source (SET NX: a version's source never changes)

A put or delete runs as one Lua script, so the revision check and every index change are atomic. The
scripts derive index keys from the prefix, which is fine for one Redis server (not Redis Cluster).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from flowengine.errors import ConfigError, ConflictError, StoreError
from flowengine.redaction import redact, redact_url
from flowengine.stores import redis_scripts as scripts
from flowengine.stores.base import (
    FINISHED,
    HOT_SESSIONS,
    Census,
    Claim,
    DueTimer,
    Pace,
    SessionRecord,
    TimerKind,
    check_paging,
    check_record,
    check_ttl,
    dump_json,
    record_from_doc,
    record_to_doc,
    tally,
)

_OUR_QUERY = ("prefix", "lock_timeout", "lock_wait")
_SCAN_CHUNK = 200
_MAX_CONNECTIONS = 100  # per engine instance (redis-py's default); ?max_connections= overrides it


class RedisStore:
    """``SessionStore`` on Redis (``redis.asyncio``), safe to share between engine instances."""

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "flowengine:",
        lock_timeout: float = 30.0,
        lock_wait: float = 10.0,
        lock_poll: float = 0.02,
    ) -> None:
        self._client = client
        self._prefix = prefix
        # A lock expires after lock_timeout even if its holder died; waiters give up after lock_wait.
        self._lock_timeout = lock_timeout
        self._lock_wait = lock_wait
        self._lock_poll = lock_poll
        self._put_script = client.register_script(scripts.PUT)
        self._delete_script = client.register_script(scripts.DELETE)
        self._take_slot_script = client.register_script(scripts.TAKE_SLOT)
        self._closed = False
        # Sealed records this instance wrote last (``SessionRecord.sealed``: immutable by their writer's
        # promise), handed out again by ``get`` while Redis still holds that very version: the service
        # asks for a session on every event, and most are the one it saved last.
        self._recent: dict[str, SessionRecord] = {}

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        """``redis://host:port/db?prefix=fe:&lock_timeout=30&lock_wait=10`` (other options go to redis-py)."""
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        ours = {key: value for key, value in query if key in _OUR_QUERY}
        theirs = urlunsplit(parts._replace(query=urlencode([kv for kv in query if kv[0] not in _OUR_QUERY])))
        try:
            # No command retries: a retried claim or put could report a false loss; the platform redelivers.
            # A blocking pool: past its connections a command waits for one (up to the socket timeout)
            # instead of failing with "Too many connections", which turned >100 webhooks in flight into 503s.
            pool = BlockingConnectionPool.from_url(
                theirs, socket_connect_timeout=5.0, socket_timeout=10.0, timeout=10.0,
                max_connections=_MAX_CONNECTIONS,
            )
            return cls(
                Redis.from_pool(pool),
                prefix=ours.get("prefix", "flowengine:"),
                lock_timeout=float(ours.get("lock_timeout", 30.0)),
                lock_wait=float(ours.get("lock_wait", 10.0)),
            )
        except ValueError as exc:
            raise ConfigError(redact(f"invalid Redis store URL {redact_url(url)!r}: {exc}")) from exc

    async def get(self, session_id: str) -> SessionRecord | None:
        key = self._session_key(session_id)
        kept = self._recent.get(session_id)
        if kept is not None:  # still the stored version? Its revision and update time, not the document.
            with self._translated():
                rev, updated = await self._client.hmget(key, ["rev", "upd"])
            if rev is not None and updated is not None and (int(rev), _text(updated)) == (
                kept.revision, repr(kept.updated_at)
            ):
                return kept
            self._recent.pop(session_id, None)
        with self._translated():
            doc, rev = await self._client.hmget(key, ["doc", "rev"])
        return None if doc is None or rev is None else record_from_doc(doc, int(rev))

    async def put(
        self, record: SessionRecord, *, expected_revision: int | None, claim: Claim | None = None
    ) -> int:
        check_record(record)
        if claim is not None:
            check_ttl(claim.ttl)
        members = [dump_json([record.id, timer_id]) for timer_id in record.timers]
        args = [
            self._prefix,
            record.id,
            "" if expected_revision is None else str(expected_revision),
            record_to_doc(record),
            record.status,
            record.flow,
            repr(record.updated_at),
            dump_json(sorted(record.call_ids)),
            dump_json(sorted(record.conference_ids)),
            dump_json(members),
            dump_json([repr(float(due)) for due in record.timers.values()]),
            record.state,
            # The claim made with the record, in the same script (atomic: never one without the other).
            "" if claim is None else self._key(f"claim:{claim.key}"),
            "" if claim is None else _px(claim.ttl),
        ]
        self._recent.pop(record.id, None)  # unknown until this write is done
        with self._translated():
            revision = int(await self._put_script(keys=self._script_keys(record.id), args=args))
        if revision > 0 and record.sealed:
            self._keep(dataclasses.replace(record, revision=revision))
        if revision < 0:
            if expected_revision is None:
                raise ConflictError(f"session {record.id!r} already exists")
            raise ConflictError(f"session {record.id!r} is missing or not at revision {expected_revision}")
        return revision

    async def session_for_call(self, call_id: str) -> str | None:
        return await self._owner("call:", call_id)

    async def session_for_conference(self, conference_id: str) -> str | None:
        return await self._owner("conference:", conference_id)

    async def due_timers(self, now: float, limit: int = 100) -> list[DueTimer]:
        check_paging(limit, 0)
        if limit == 0:
            return []
        with self._translated():
            rows: list[Any] = await self._client.zrangebyscore(
                self._key("timers"), "-inf", repr(float(now)), start=0, num=limit, withscores=True
            )
        return [_due_timer(member, score) for member, score in rows]

    async def next_due(self) -> float | None:
        with self._translated():
            rows: list[Any] = await self._client.zrange(self._key("timers"), 0, 0, withscores=True)
        return float(rows[0][1]) if rows else None

    async def list_sessions(
        self, *, status: str | None = None, flow: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[SessionRecord]:
        check_paging(limit, offset)
        if limit == 0:
            return []
        with self._translated():
            if status is None or flow is None:
                index = self._key("sessions")
                if status is not None or flow is not None:
                    index = self._key(f"status:{status}" if status is not None else f"flow:{flow}")
                ids: list[Any] = await self._client.zrevrange(index, offset, offset + limit - 1)
                return await self._load(ids)
            return await self._list_both(status, flow, limit, offset)

    async def census(self, kind: TimerKind) -> Census:
        with self._translated():
            ids: list[Any] = await self._client.zrange(self._key("status:active"), 0, -1)
            members: list[Any] = await self._client.zrange(self._key("timers"), 0, -1)
            live: list[tuple[str, str]] = []
            for start in range(0, len(ids), _SCAN_CHUNK):
                chunk = [self._session_key(_text(raw)) for raw in ids[start:start + _SCAN_CHUNK]]
                async with self._client.pipeline(transaction=False) as pipe:
                    for key in chunk:
                        pipe.hmget(key, ["flow", "state"])
                    rows: list[Any] = await pipe.execute()
                for key, (flow, state) in zip(chunk, rows, strict=True):
                    if flow is not None and state is None:  # written before the hash kept the state
                        state = json.loads(await self._client.hget(key, "doc") or "{}").get("state", "")
                    if flow is not None:
                        live.append((_text(flow), _text(state)))
        return tally(live, (json.loads(member)[1] for member in members), kind)

    async def claim(self, key: str, ttl: float) -> bool:
        check_ttl(ttl)
        with self._translated():
            won = await self._client.set(self._key(f"claim:{key}"), b"1", nx=True, px=_px(ttl))
        return bool(won)

    async def claimed(self, key: str) -> bool:
        with self._translated():
            return bool(await self._client.exists(self._key(f"claim:{key}")))

    @asynccontextmanager
    async def lock(self, session_id: str) -> AsyncIterator[None]:
        lock = self._client.lock(
            self._key(f"lock:{session_id}"),
            timeout=self._lock_timeout,
            sleep=self._lock_poll,
            blocking_timeout=self._lock_wait,
            thread_local=False,  # one Lock object per holder; asyncio tasks share a thread
        )
        with self._translated():
            acquired = await lock.acquire()
        if not acquired:
            raise StoreError(f"session {session_id!r} stayed locked for {self._lock_wait}s")
        try:
            yield
        finally:
            with self._translated():
                await lock.release()

    async def take_slot(self, key: str, pace: Pace, now: float) -> float | None:
        args = [repr(pace.interval), str(pace.burst), repr(float(now)), repr(pace.max_wait)]
        with self._translated():
            taken, wait = await self._take_slot_script(keys=[self._key(f"pace:{key}")], args=args)
        return float(wait) if int(taken) else None

    async def slot_horizon(self, key: str) -> float | None:
        with self._translated():
            horizon = await self._client.get(self._key(f"pace:{key}"))
        return None if horizon is None else float(horizon)

    async def put_flow_source(self, version: str, source: str) -> None:
        with self._translated():
            await self._client.set(self._key(f"flow-source:{version}"), source.encode(), nx=True)

    async def flow_source(self, version: str) -> str | None:
        with self._translated():
            found = await self._client.get(self._key(f"flow-source:{version}"))
        return None if found is None else _text(found)

    def _keep(self, record: SessionRecord) -> None:
        recent = self._recent
        if len(recent) >= HOT_SESSIONS:
            del recent[next(iter(recent))]
        recent[record.id] = record

    async def delete(self, session_id: str) -> None:
        self._recent.pop(session_id, None)
        with self._translated():
            await self._delete_script(keys=self._script_keys(session_id), args=[self._prefix, session_id, ""])

    async def purge_ended(self, older_than: float) -> int:
        purged = 0
        with self._translated():
            for status in FINISHED:
                index = self._key(f"status:{status}")
                ids: list[Any] = await self._client.zrangebyscore(index, "-inf", f"({float(older_than)!r}")
                for raw in ids:
                    sid = _text(raw)
                    args = [self._prefix, sid, repr(float(older_than))]
                    purged += int(await self._delete_script(keys=self._script_keys(sid), args=args))
        return purged

    async def ping(self) -> bool:
        try:
            with self._translated():
                return bool(await self._client.ping())
        except StoreError:
            return False

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.aclose()  # the client owns its pool (from_pool) and closes it too

    async def _owner(self, kind: str, ref: str) -> str | None:
        with self._translated():
            owner = await self._client.get(self._key(kind + ref))
        return None if owner is None else _text(owner)

    async def _list_both(self, status: str, flow: str, limit: int, offset: int) -> list[SessionRecord]:
        """Walk the smaller of the two indexes newest first, keeping records that match the other filter."""
        by_status, by_flow = self._key(f"status:{status}"), self._key(f"flow:{flow}")
        walk_status = await self._client.zcard(by_status) <= await self._client.zcard(by_flow)
        index = by_status if walk_status else by_flow
        found: list[SessionRecord] = []
        skip, start = offset, 0
        while len(found) < limit:
            ids: list[Any] = await self._client.zrevrange(index, start, start + _SCAN_CHUNK - 1)
            if not ids:
                break
            start += len(ids)
            for record in await self._load(ids):
                if (record.flow == flow) if walk_status else (record.status == status):
                    if skip:
                        skip -= 1
                    elif len(found) < limit:
                        found.append(record)
        return found

    async def _load(self, ids: Sequence[bytes | str]) -> list[SessionRecord]:
        """Records for these ids in order; ids deleted meanwhile are skipped."""
        if not ids:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for raw in ids:
                pipe.hmget(self._session_key(_text(raw)), ["doc", "rev"])
            rows = await pipe.execute()
        return [record_from_doc(doc, int(rev)) for doc, rev in rows if doc is not None]

    def _key(self, suffix: str) -> str:
        return self._prefix + suffix

    def _session_key(self, session_id: str) -> str:
        return self._prefix + "session:" + session_id

    def _script_keys(self, session_id: str) -> list[str]:
        return [self._session_key(session_id), self._key("timers"), self._key("sessions")]

    @contextmanager
    def _translated(self) -> Iterator[None]:
        if self._closed:
            raise StoreError("the Redis store is closed")
        try:
            yield
        except (RedisError, OSError) as exc:  # OSError: socket-level failures redis-py lets through
            raise StoreError(redact(f"Redis store: {exc}")) from exc


def _px(ttl: float) -> int:
    """A claim's ttl in whole milliseconds, at least one."""
    return max(1, math.ceil(ttl * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _due_timer(member: bytes, score: Any) -> DueTimer:
    session_id, timer_id = json.loads(member)
    return DueTimer(str(session_id), str(timer_id), float(score))
