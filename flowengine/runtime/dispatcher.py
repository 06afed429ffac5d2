"""Ordering: one event at a time per session, different sessions concurrently.

``Dispatcher.dispatch(session_id, event)`` takes the session's lock, loads it (or starts a new one),
lets the engine decide, runs the plan and saves the result, all before the next event of that session
is looked at. Loading and saving are injected async callables, so stores plug in without the runtime
knowing them. Duplicates are caught by the engine from the session's own seen keys, which is safe
because the lock makes load-handle-save one step; replays older than that short memory are stopped
before they get here, by the service's store-wide memory of the webhook events handled.

``SessionLocks`` are per process; the service passes its store's locks instead (a Redis lock spans
engine instances). Should two instances still race on one session, the store's ``revision`` check turns
that into ``ConflictError`` on save, which this class lets through: retrying would send the plan's
commands twice, so the caller decides.

Write-ahead: the executor saves through the same ``save`` before each command that reaches outside the
engine (``runtime.outbox``). A session loaded with a plan still pending was interrupted (a crash, a lost
lock): its plan is finished first, before the new event or timer is looked at.

One dispatcher serves several flows: a stored session names its flow; a new one runs the flow asked for
(or the only one). Versions: ``executors`` are each flow's current version, which new sessions start on
and keep (``Session.flow_hash``); a session holding another version gets that version's executor from
``versions`` (injected: the service compiles it from the store), so a reload never changes a session in
progress. The provider may be given per event, because the service carries out each webhook's
plan through a channel bound to that webhook.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import Token
from types import TracebackType
from typing import Protocol

from flowengine.errors import SessionNotFound
from flowengine.runtime.clock import Clock
from flowengine.runtime.engine import Engine
from flowengine.runtime.events import Event
from flowengine.runtime.executor import Executor
from flowengine.runtime.observing import SCOPE, Scope
from flowengine.runtime.outbox import event_from_json, event_to_json
from flowengine.runtime.ports import Provider
from flowengine.runtime.session import Session

LoadSession = Callable[[str], Awaitable[Session | None]]


class SaveSession(Protocol):
    """Stores a session; ``mark``, when given, is a key the store marks as done in the same commit
    (the service's replay mark of the webhook event whose step this save ends)."""

    def __call__(self, session: Session, /, *, mark: str | None = None) -> Awaitable[None]: ...


# (flow name, version) -> the executor of that version of the flow, for a session holding one that is not
# the current version (it raises when that version cannot be had: the event is not handled).
VersionedExecutor = Callable[[str, str], Awaitable[Executor]]


class Locks(Protocol):
    def hold(self, key: str) -> AbstractAsyncContextManager[None]: ...


class SessionLocks:
    """An ``asyncio.Lock`` per key, made on first use and dropped when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class Dispatcher:
    """Feeds events to sessions, serialised per session id."""

    def __init__(
        self, executors: Executor | Mapping[str, Executor], provider: Provider | None, load: LoadSession,
        save: SaveSession, *, locks: Locks | None = None, versions: VersionedExecutor | None = None,
    ) -> None:
        if isinstance(executors, Executor):
            executors = {executors.engine.flow.name: executors}
        if not executors:
            raise ValueError("a dispatcher needs at least one flow")
        self.executors = dict(executors)
        self.provider = provider
        self._load = load
        self._save = save
        self.locks: Locks = locks if locks is not None else SessionLocks()
        self.versions = versions

    @property
    def executor(self) -> Executor:
        """The first flow's executor (the only one, for a single-flow dispatcher)."""
        return next(iter(self.executors.values()))

    @property
    def engine(self) -> Engine:
        return self.executor.engine

    async def dispatch(
        self, session_id: str, event: Event, *, create: bool = True, flow: str | None = None,
        provider: Provider | None = None, mark: str | None = None,
    ) -> Session:
        """Handle ``event`` for ``session_id`` and save the result. A session the store does not have is
        started when ``create`` (running ``flow``, or the only flow), else ``SessionNotFound`` is raised.
        ``mark`` goes with the step's last save (``SaveSession``): set once the step is saved, never
        before (write-ahead saves before commands carry none)."""
        async with self._holding(session_id):
            session = await self._session(session_id, create, flow)
            session = await self._resume(session, provider)
            session = await self._step(session, event, provider)
            await (self._save(session) if mark is None else self._save(session, mark=mark))
            return session

    async def finish_pending(self, session_id: str, *, provider: Provider | None = None) -> None:
        """Finish a plan the session left unfinished, if it has one (so what it bound is known)."""
        async with self._holding(session_id):
            found = await self._load(session_id)
            if found is not None and found.outbox is not None:
                await self._save(await self._resume(found, provider))

    async def dispatch_derived(
        self, session_id: str, derive: Callable[[Session], list[Event]], *, provider: Provider | None = None,
    ) -> list[Event]:
        """Handle the events ``derive`` finds for the session as it is once its lock is held, in one
        hold, so no other event slips in between them (reconciliation: what the platform showed, in its
        order, before a webhook that arrives meanwhile). The events handled; none if the session is gone."""
        async with self._holding(session_id):
            found = await self._load(session_id)
            if found is None:
                return []
            resumed = found.outbox is not None  # (``resume`` may finish the plan in the same object)
            session = await self._resume(found, provider)
            events = derive(session)
            for event in events:
                session = await self._step(session, event, provider)
            if events or resumed:
                await self._save(session)
            return events

    async def fire_timers(self, session_id: str, *, provider: Provider | None = None) -> Session | None:
        """Feed the session every timer due by now; None if there is no such session."""
        async with self._holding(session_id):
            session = await self._load(session_id)
            if session is None:
                return None
            resumed = session.outbox is not None
            session = await self._resume(session, provider)
            engine = (await self.executor_of(session)).engine
            now = engine.clock.now()
            due = _due_events(session, engine.due_timers(session, now), now)
            for key, event in due:  # a timer made stale by an earlier one is recorded and dropped
                if key is not None:  # a deferred event: handled once, so taken off the session first
                    session = session.copy()
                    del session.deferred[key]
                session = await self._step(session, event, provider)
            if due or resumed:
                await self._save(session)
            return session

    async def defer(self, session_id: str, event: Event, due: float) -> None:
        """Keep ``event`` with the session, to be handled by ``fire_timers`` once ``due`` has passed, on
        whichever instance is up: what a platform will not send (Sinch's derived follow-ups) survives a
        restart like the flow's own timers."""
        key = event.event_id or event.dedupe_key()
        entry = {"due": due, "event": event_to_json(event)}
        await self._amend(session_id, lambda session: session.deferred.__setitem__(key, entry))

    async def checked(self, session_id: str, at: float) -> None:
        """Note that the platform was asked about the session's calls at ``at`` (reconciliation)."""
        await self._amend(session_id, lambda session: setattr(session, "checked", at))

    async def _amend(self, session_id: str, change: Callable[[Session], None]) -> None:
        async with self._holding(session_id):
            found = await self._load(session_id)
            if found is None:
                raise SessionNotFound(f"no session {session_id!r}")
            session = found.copy()  # a loaded session may be shared: change a copy
            change(session)
            await self._save(session)

    def _holding(self, session_id: str) -> _Holding:
        """The session's lock (see ``_Holding``)."""
        return _Holding(self.locks.hold(session_id), self.engine.clock, session_id)

    def _executor_for(self, flow: str | None) -> Executor:
        if flow is None:
            return self.executor
        try:
            return self.executors[flow]
        except KeyError:
            raise SessionNotFound(f"no flow {flow!r} here (known: {', '.join(self.executors)})") from None

    async def executor_of(self, session: Session) -> Executor:
        """The executor of the version the session started on: the current one, or ``versions``'."""
        current = self.executors.get(session.flow)
        wanted = session.flow_hash
        if wanted is None or self.versions is None or (current and current.engine.version == wanted):
            return self._executor_for(session.flow)
        return await self.versions(session.flow, wanted)

    async def _session(self, session_id: str, create: bool, flow: str | None) -> Session:
        found = await self._load(session_id)
        if found is not None:
            return found
        if not create:
            raise SessionNotFound(f"no session {session_id!r}")
        return self._executor_for(flow).engine.new_session(session_id)

    async def _resume(self, session: Session, provider: Provider | None) -> Session:
        if session.outbox is None:
            return session
        _scope(session, None)
        executor = await self.executor_of(session)
        return await executor.resume(session, self._provider(provider), checkpoint=self._save)

    async def _step(self, session: Session, event: Event, provider: Provider | None) -> Session:
        executor = await self.executor_of(session)
        _scope(session, event)
        return await executor.step(session, event, self._provider(provider), checkpoint=self._save)

    def _provider(self, provider: Provider | None) -> Provider:
        chosen = provider if provider is not None else self.provider
        if chosen is None:
            raise ValueError("no provider given to the dispatcher or to this call")
        return chosen


class _Holding:
    """A session's lock held. Waiting for it is set aside from the clock (``Clock.aside``): the holder
    may be backing off on a virtual clock, which a waiter must not stop. While it is held, the log lines
    written are about this session (``SCOPE``, a new ``Scope`` the holder fills in). A class rather than a
    generator-based context manager (or an ``AsyncExitStack``): every event takes it, and the generators
    cost about a percent of a whole call's CPU each."""

    __slots__ = ("_clock", "_hold", "_session_id", "_token")

    def __init__(self, hold: AbstractAsyncContextManager[None], clock: Clock, session_id: str) -> None:
        self._hold, self._clock, self._session_id = hold, clock, session_id
        self._token: Token[Scope | None] | None = None

    async def __aenter__(self) -> None:
        with self._clock.aside():
            await self._hold.__aenter__()
        self._token = SCOPE.set(Scope(self._session_id))

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        if self._token is not None:
            SCOPE.reset(self._token)
            self._token = None
        return await self._hold.__aexit__(kind, exc, tb)


def _scope(session: Session, event: Event | None) -> None:
    scope = SCOPE.get()
    if scope is not None:
        scope.flow, scope.state = session.flow, session.state
        scope.event, scope.call = (event.name, event.call_id) if event is not None else (None, None)


def _due_events(session: Session, timers: list[Event], now: float) -> list[tuple[str | None, Event]]:
    """The flow's due timers and the session's due deferred events (with their keys), in due order."""
    entries: list[tuple[float, int, str | None, Event]] = [(e.at or now, 0, None, e) for e in timers]
    entries += [
        (float(entry["due"]), 1, key, event_from_json(entry["event"]))
        for key, entry in session.deferred.items() if entry["due"] <= now
    ]
    entries.sort(key=lambda item: item[:2])
    return [(key, event) for _, _, key, event in entries]
