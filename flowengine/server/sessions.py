"""Sessions in a store: the runtime's ``Session`` <-> the store's ``SessionRecord``, and locks."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from flowengine.runtime.session import Session
from flowengine.stores.base import SessionRecord, SessionStore


def to_record(session: Session) -> SessionRecord:
    return SessionRecord(
        id=session.id,
        flow=session.flow,
        state=session.state,
        status="active" if session.status == "new" else session.status,
        data=session.to_json(),
        timers={timer_id: due for timer_id, (_, _, due) in session.timers.items()},
        call_ids=frozenset(session.calls.values()),
        conference_ids=frozenset(session.conferences.values()),
        updated_at=session.updated,
    )


class StoredSessions:
    """Load and save callables for the dispatcher, and the store's locks as the dispatcher's locks."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    async def load(self, session_id: str) -> Session | None:
        record = await self.store.get(session_id)
        if record is None:
            return None
        session = Session.from_json(record.data)
        session.revision = record.revision
        return session

    async def save(self, session: Session) -> None:
        expected = session.revision or None  # revision 0: never stored
        session.revision = await self.store.put(to_record(session), expected_revision=expected)

    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        return self.store.lock(key)
