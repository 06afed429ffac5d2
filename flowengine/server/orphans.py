"""No orphans: a call or conference the platform shows alive that no live session owns is ended.

Two ways one turns up. A webhook about a call or conference no session owns at all: a call created by
a command whose result arrived after its session had given up, or a leftover of a session purged from
the store. And a webhook that shows one of an ended session's calls alive: a callee who answers after
the flow ended. Either way nobody will ever drive that call, so the engine hangs it up (Infobip over
REST; Sinch in the SVAML reply when the webhook is a callback that takes one), logs and counts it.

A new call's first events can arrive a moment before the session that created it has saved its id; an
unknown call is therefore looked up once more after ``IN_FLIGHT`` before it is taken for an orphan.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from flowengine.errors import ProviderError, SessionNotFound
from flowengine.providers.base import Channel
from flowengine.runtime.clock import Clock
from flowengine.runtime.engine import ALIVE
from flowengine.runtime.events import Event
from flowengine.runtime.ports import ProviderCommand
from flowengine.runtime.session import ENDED, Session
from flowengine.server.metrics import Metrics
from flowengine.stores.base import FINISHED

log = logging.getLogger("flowengine.orphans")
IN_FLIGHT = 2.0  # seconds for a session to save the id of a call it has just created

Deliver = Callable[[Event, Channel], Awaitable[Session]]


class Orphans:
    def __init__(self, *, clock: Clock, metrics: Metrics) -> None:
        self.clock = clock
        self.metrics = metrics

    async def unowned(self, event: Event, channel: Channel, deliver: Deliver) -> None:
        """``event`` found no session: deliver it after all if one turns up, else end what it is about."""
        if event.name not in ALIVE:
            log.debug("%s for %s that no session owns: nothing to end", event.name, _subject(event))
            return
        await self.clock.sleep(IN_FLIGHT)
        try:
            await deliver(event, channel)
            return
        except SessionNotFound:
            pass
        await self._end(event, channel, "no session owns it")

    async def after(self, session: Session, event: Event, channel: Channel) -> None:
        """``event`` reached ``session``: if the session has ended and the event shows one of its calls
        still alive, end that call."""
        if session.status not in FINISHED or event.name not in ALIVE or event.call_id is None:
            return
        if session.call_states.get(event.call_id) == ENDED:
            return  # the session ended it already; this is a late echo
        await self._end(event, channel, f"its session {session.id} has ended")

    async def _end(self, event: Event, channel: Channel, why: str) -> None:
        kind = "call" if event.call_id else "conference"
        try:
            if event.call_id:
                args: dict[str, object] = {"call_id": event.call_id, "reason": None}
                command = ProviderCommand("hangup", args, f"orphan:{event.call_id}")
            elif event.conference_id:
                args = {"conference_id": event.conference_id}
                command = ProviderCommand("conference_hangup", args, f"orphan:{event.conference_id}")
            else:
                return
            await channel.execute(command)
        except ProviderError as exc:
            log.warning("could not hang up orphan %s %s (%s): %s", kind, _subject(event), why, exc)
            return
        log.warning("hung up orphan %s %s (%s; seen in %s)", kind, _subject(event), why, event.name)
        self.metrics.orphans.labels(kind).inc()


def _subject(event: Event) -> str:
    return event.call_id or event.conference_id or "?"
