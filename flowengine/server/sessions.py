"""Sessions in a store: the runtime's ``Session`` <-> the store's ``SessionRecord``, and locks.

``StoredSessions`` keeps the last ``Session`` it loaded or saved per id and hands that object out again
while the store still holds that very version (same revision and update time), so a session is not
rebuilt from its document on every event. The store still decides: a write by another engine instance
changes the revision, and the session is read again. Handing out one object repeatedly is safe because
the runtime never changes a session it is given (``Engine.handle`` works on a copy).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from flowengine.config import DEFAULT_REPLAY_TTL
from flowengine.runtime.outbox import OUTBOX_TIMER
from flowengine.runtime.program import TIMER_PREFIX
from flowengine.runtime.reconcile import anything_to_observe
from flowengine.runtime.session import Session
from flowengine.stores.base import FINISHED, HOT_SESSIONS, Claim, SessionRecord, SessionStore, plain_json

QUIET_TIMER = "reconcile"  # timer id: the session has been quiet for ``quiet_after`` seconds


def to_record(session: Session, quiet_after: float = 0.0) -> SessionRecord:
    """The stored form of ``session``, sealed: ``to_json`` builds it of plain values, nobody changes it
    later (its step documents are shared with earlier versions, unchanged), and the only foreign content,
    ``vars``, goes through ``plain_json`` first (so ``session`` also holds what a reload would give)."""
    session.vars = plain_json(session.vars)
    # Positional: keywords cost more, on every save (id, flow, state, status, data, timers, call_ids,
    # conference_ids, updated_at, revision, sealed).
    return SessionRecord(
        session.id, session.flow, session.state, "active" if session.status == "new" else session.status,
        session.to_json(), _timers(session, quiet_after), frozenset(session.calls.values()),
        frozenset(session.conferences.values()), session.updated, 0, True,
    )


def _timers(session: Session, quiet_after: float) -> dict[str, float]:
    """The store's timer index: the flow's timers, deferred events, a pending outbox under
    ``OUTBOX_TIMER``, and (``quiet_after`` > 0) a live session's next reconciliation under
    ``QUIET_TIMER``, so that whichever instance is up fires them, resumes a plan whose engine died, or asks
    the platform about a session nothing has been heard of (the session lock keeps each exclusive)."""
    # Made on every save: nothing is built for what is empty (most sessions have no deferred events).
    timers = {timer_id: entry[2] for timer_id, entry in session.timers.items()} if session.timers else {}
    if session.deferred:
        timers.update((event_id, float(entry["due"])) for event_id, entry in session.deferred.items())
    if session.outbox is not None:
        timers[OUTBOX_TIMER] = float(session.outbox["due"])
    if quiet_after > 0 and session.status not in FINISHED and anything_to_observe(session):
        timers[QUIET_TIMER] = quiet_due(session, quiet_after)
    return timers


def timer_kind(timer_id: str) -> str:
    """What an entry of the store's timer index stands for (``_timers``): flow (a flow's ``after``), resume
    (a plan left unfinished), reconcile (a quiet session to ask the platform about) or deferred (an event
    kept for later)."""
    if timer_id.startswith(TIMER_PREFIX):
        return "flow"
    return {OUTBOX_TIMER: "resume", QUIET_TIMER: "reconcile"}.get(timer_id, "deferred")


TIMER_KINDS = ("flow", "deferred", "resume", "reconcile")


def quiet_due(session: Session, quiet_after: float) -> float:
    """When a live session has been quiet long enough to ask the platform about it."""
    return max(session.updated, session.checked) + quiet_after


class StoredSessions:
    """Load and save callables for the dispatcher, and the store's locks as the dispatcher's locks.

    ``on_timers_changed`` is called after a save that changed the session's timer table (compared with
    the version loaded), so the timer loop is woken only when its schedule may have moved.
    """

    def __init__(
        self, store: SessionStore, *, on_timers_changed: Callable[[], None] | None = None,
        cache_size: int = HOT_SESSIONS, quiet_after: float = 0.0, mark_ttl: float = DEFAULT_REPLAY_TTL,
    ) -> None:
        self.store = store
        self.mark_ttl = mark_ttl  # how long a ``mark`` given to ``save`` is claimed
        self.quiet_after = quiet_after
        self.on_timers_changed = on_timers_changed
        self.cache_size = cache_size
        # Insertion order: the least recently used first, and first out. Finished sessions are kept too:
        # a call's last webhooks (the other leg's hang-up, the conference's end: 4 in the seed call) come
        # after its session ended, and each would otherwise rebuild it from its document.
        self._cache: dict[str, Session] = {}

    async def load(self, session_id: str) -> Session | None:
        record = await self.store.get(session_id)
        if record is None:
            self._cache.pop(session_id, None)
            return None
        cached = self._cache.get(session_id)
        if cached is not None and cached.revision == record.revision and cached.updated == record.updated_at:
            return cached
        session = Session.from_json(record.data)
        session.revision = record.revision
        self._keep(session)
        return session

    async def save(self, session: Session, *, mark: str | None = None) -> None:
        """Store ``session``; ``mark`` is claimed with it, in the same commit (a webhook event's replay
        mark, claimed once its step is saved)."""
        expected = session.revision or None  # revision 0: never stored
        before = self._cache.pop(session.id, None)  # the version loaded, unless pushed out since
        record = to_record(session, self.quiet_after)
        claim = None if mark is None else Claim(mark, self.mark_ttl)
        session.revision = await self.store.put(record, expected_revision=expected, claim=claim)
        self._keep(session)
        if self.on_timers_changed is not None and session.timers != (before.timers if before else {}):
            self.on_timers_changed()

    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        return self.store.lock(key)

    def _keep(self, session: Session) -> None:
        cache = self._cache
        cache.pop(session.id, None)  # re-inserted last: the most recently used goes out last
        if self.cache_size <= 0:
            return
        if len(cache) >= self.cache_size:
            del cache[next(iter(cache))]
        cache[session.id] = session
