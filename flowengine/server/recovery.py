"""Recovery by reconciliation: ask the platform what happened to a session's calls and conferences, and
deliver what no webhook brought (``runtime.reconcile``).

Two moments call for it. At start-up every live session is reconciled once, in the background: webhooks
sent while the engine was down are lost unless the platform redelivers them. And a live session nothing
has been heard of for ``quiet_after`` seconds is reconciled when its quiet timer (``QUIET_TIMER`` in the
store's timer index, so any instance fires it) comes due; each check re-arms it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from flowengine.errors import FlowEngineError
from flowengine.providers.base import Adapter, Channel
from flowengine.runtime.clock import Clock
from flowengine.runtime.dispatcher import Dispatcher
from flowengine.runtime.reconcile import Observation, missed_events, to_observe
from flowengine.server.metrics import Metrics
from flowengine.server.sessions import StoredSessions, quiet_due
from flowengine.stores.base import FINISHED

log = logging.getLogger("flowengine.reconcile")
PAGE = 200  # sessions listed per store read at start-up


class Reconciler:
    def __init__(
        self, *, sessions: StoredSessions, adapter: Adapter, dispatcher: Dispatcher, clock: Clock,
        metrics: Metrics, follow_up: Callable[[Channel], Awaitable[None]],
    ) -> None:
        self.sessions = sessions
        self.adapter = adapter
        self.dispatcher = dispatcher
        self.clock = clock
        self.metrics = metrics
        self._follow_up = follow_up

    async def reconcile(self, session_id: str) -> int:
        """Deliver to the session what the platform shows it missed; the number of events delivered."""
        channel = self.adapter.channel(None)  # no webhook to reply to
        # A plan cut short first: a call its interrupted dial created is asked about only once bound.
        await self.dispatcher.finish_pending(session_id, provider=channel)
        session = await self.sessions.load(session_id)
        if session is None or session.status in FINISHED:
            await self._follow_up(channel)
            return 0
        calls, conferences = to_observe(session)
        seen = await self.adapter.observe(calls, conferences) if calls or conferences else Observation({}, {})
        # What is missed is worked out under the session's lock, against the session as it is then: a
        # webhook that landed since the platform was asked is not delivered twice, and one arriving now
        # waits until the missed events, which came first on the platform, are handled.
        missed = await self.dispatcher.dispatch_derived(
            session_id, lambda current: missed_events(current, seen), provider=channel
        )
        for event in missed:
            log.warning("%s: reconciled %s for %s (no webhook brought it)", session_id, event.name,
                        event.call_id or event.conference_id)
            self.metrics.reconciled.labels(event.name).inc()
        await self._follow_up(channel)
        await self.dispatcher.checked(session_id, self.clock.now())  # re-arms the quiet timer
        return len(missed)

    async def when_quiet(self, session_id: str) -> None:
        """Reconcile a live session whose quiet timer is due (called by the timer loop)."""
        session = await self.sessions.load(session_id)
        quiet = self.sessions.quiet_after
        if session is None or session.status in FINISHED or quiet <= 0:
            return
        if quiet_due(session, quiet) <= self.clock.now():
            await self.reconcile(session_id)

    async def recover(self) -> int:
        """Reconcile every live session once (start-up); the number of events recovered."""
        ids: list[str] = []  # listed first: reconciling moves sessions out of "active", shifting pages
        while page := await self.sessions.store.list_sessions(status="active", limit=PAGE, offset=len(ids)):
            ids.extend(record.id for record in page)
        recovered = 0
        for session_id in ids:
            try:
                recovered += await self.reconcile(session_id)
            except FlowEngineError as exc:  # one session's trouble must not stop the others'
                log.warning("%s: could not reconcile: %s", session_id, exc)
        log.info("start-up reconciliation: %d live session(s), %d event(s) recovered", len(ids), recovered)
        return recovered
