"""The service core: a webhook in, the session's step taken, the reply out. No aiohttp here (the app
module adapts HTTP to this), so the same path serves webhooks, timers and follow-up events.

Replays: every webhook event handled is marked in the store (``claim``, for ``replay_ttl`` seconds), which
every instance shares, and an event already marked is acknowledged (the reply a duplicate gets: 200, so
a platform stops sending it) and not acted on. The mark is set once the event's step is saved, never
before: it goes with the step's last save (``put`` with a ``Claim``: one atomic step, SQLite's
transaction, Redis's script), so the two are never apart. An orphan's mark is set on its own once it is
dealt with; an engine killed in between loses nothing: the redelivery is handled as the first copy was.
Two copies racing to two instances are settled by the session's own short memory of the events it took
(``Session.seen``, saved with its state; the session lock lets one in at a time).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowengine.config import DEFAULT_REPLAY_TTL
from flowengine.errors import SessionNotFound, StoreError, WebhookError
from flowengine.flow.model import Flow
from flowengine.flow.platform import Platform
from flowengine.providers.base import Adapter, Channel, FollowUp, WebhookReply, WebhookRequest
from flowengine.providers.intake import IntakeLimits, check_depth, check_events
from flowengine.redaction import redact_json
from flowengine.runtime.binding import PLACED_BY, standin_id
from flowengine.runtime.clock import Clock
from flowengine.runtime.dispatcher import Dispatcher
from flowengine.runtime.engine import Engine
from flowengine.runtime.events import Event
from flowengine.runtime.executor import Executor, RetryPolicy
from flowengine.runtime.ports import HttpClient
from flowengine.runtime.session import TRACE_LIMIT, Session
from flowengine.server.catalog import Catalog
from flowengine.server.flows import FlowVersion, LoadedFlows
from flowengine.server.metrics import Metrics
from flowengine.server.observer import ServiceObserver
from flowengine.server.orphans import Orphans
from flowengine.server.pacing import Pacer
from flowengine.server.recovery import Reconciler
from flowengine.server.routing import Router
from flowengine.server.sessions import StoredSessions, timer_kind
from flowengine.server.timers import TimerLoop
from flowengine.stores.base import Pace, SessionStore

if TYPE_CHECKING:
    from flowengine.server.recording import Recorder

log = logging.getLogger("flowengine.service")

# The adapters already retry transport failures (honouring Retry-After); a second layer here would
# multiply attempts and could place a call twice.
NO_RETRY = RetryPolicy(attempts=1)


class Service:
    def __init__(
        self,
        *,
        flows: Mapping[str, Flow],
        router: Router,
        store: SessionStore,
        adapter: Adapter,
        clock: Clock,
        metrics: Metrics | None = None,
        http: HttpClient | None = None,
        timer_poll: float | None = 1.0,
        trace_limit: int = TRACE_LIMIT,
        quiet_after: float = 0.0,  # seconds of silence before reconciling a live session; 0: never
        replay_ttl: float = DEFAULT_REPLAY_TTL,  # seconds a handled webhook event is remembered store-wide
        limits: IntakeLimits | None = None,  # what a webhook body may hold (``providers.intake``)
        pacing: Mapping[str, Pace] | None = None,  # provider -> how fast calls may be created
        recorder: Recorder | None = None,  # keeps each session's traffic as a replay file (``record:``)
        versions: Mapping[str, FlowVersion] | None = None,  # flows' versions, kept per session (``catalog``)
        platform: Platform | None = None,  # the provider's table, to compile a stored version
    ) -> None:
        self.recorder = recorder
        if recorder is not None:  # what goes through these ports is what a replay file holds
            adapter, http = recorder.wrap_adapter(adapter), recorder.wrap_http(http)
        self.replay_ttl = replay_ttl
        self.flows = dict(flows)
        self.limits = limits if limits is not None else IntakeLimits()
        self.router = router
        self.store = store
        self.adapter = adapter
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.observer = ServiceObserver(self.metrics)
        self.timers = TimerLoop(store, self.fire_timers, clock, poll=timer_poll, fired=self._timers_fired)
        # The timer loop is woken only by a save that changed a timer table, not by every event.
        self.sessions = StoredSessions(
            store, on_timers_changed=self.timers.poke, quiet_after=quiet_after, mark_ttl=replay_ttl
        )
        # Dials wait for the platform's pace here; anything else creating calls uses the same pacer.
        self.pacer = Pacer(store, clock, pacing or {}, self.metrics)
        self._trace_limit, self._http = trace_limit, http
        self.catalog = Catalog(store, self._executor, self.flows, versions, platform)
        save = self.sessions.save if recorder is None else recorder.saving(self.sessions.save)
        self.dispatcher = Dispatcher(
            self.catalog.current, None, self.sessions.load, save, locks=self.sessions,
            versions=self.catalog.executor if versions else None,
        )
        self.orphans = Orphans(clock=clock, metrics=self.metrics)
        self.reconciler = Reconciler(
            sessions=self.sessions, adapter=adapter, dispatcher=self.dispatcher, clock=clock,
            metrics=self.metrics, follow_up=self._follow_up,
        )

    def _executor(self, flow: Flow, version: str | None) -> Executor:
        return Executor(
            Engine(flow, self.clock, trace_limit=self._trace_limit, version=version), clock=self.clock,
            retry=NO_RETRY, http=self._http, observe=self.adapter.observe,
            pacer=self.pacer if self.pacer.rules else None, observer=self.observer,
        )

    async def reload(self, loaded: LoadedFlows) -> list[dict[str, Any]]:
        """Serve ``loaded`` from now on: new sessions start on its versions, sessions in progress keep
        theirs. Its sources are in the store before anything changes (a store that fails raises
        ``StoreError`` and nothing changes). What changed, per flow."""
        async with self.catalog.reloading:
            await self.catalog.publish(loaded.versions.values())
            changes = self.catalog.replace(loaded)
            self.flows, self.router = loaded.flows, loaded.router
            self.dispatcher.executors = dict(self.catalog.current)
        return changes

    async def flow_of(self, session: Session) -> Flow:
        """The flow as the version the session holds has it."""
        return (await self.dispatcher.executor_of(session)).engine.flow

    # -- webhooks --------------------------------------------------------------------------------
    async def handle_webhook(self, request: WebhookRequest) -> WebhookReply:
        """Parse, take each event's step, run follow-ups that belong to this reply, answer."""
        check_depth(request.body, self.limits.max_depth)  # before anything parses it
        events = self.adapter.parse_webhook(request)
        check_events(len(events), self.limits.max_events)  # before any of them starts anything
        if not events:
            self.metrics.count("webhooks", self.adapter.name, "ignored")
            log.debug("webhook ignored: no event flowengine handles (%s)", _kind(request))  # e.g. ringing
            return WebhookReply()
        channel = self.adapter.channel(events[0])
        replayed, handled = 0, []
        for event in events:
            key = self.replay_key(event)
            if await self.store.claimed(key):
                replayed += 1
                self.metrics.count("events", event.name, "replayed")
                log.debug("%s event already handled (%s): acknowledged, not acted on", event.name, key)
                continue
            try:  # the mark is claimed in the commit that saves the step: from then on a replay
                session = await self.deliver(event, channel, mark=key)
            except SessionNotFound:
                self.metrics.count("events", event.name, "orphan")
                await self.orphans.unowned(event, channel, self.deliver)
                await self.store.claim(key, self.replay_ttl)
                continue
            await self.orphans.after(session, event, channel)
            handled.append(session.id)
        await self._follow_up(channel)
        outcome = "replayed" if replayed == len(events) else "handled"
        self.metrics.count("webhooks", self.adapter.name, outcome)
        reply = channel.reply()
        if self.recorder is not None:
            self.recorder.webhook_done(channel, handled)
        return reply

    def replay_key(self, event: Event) -> str:
        """The store-wide mark of a handled webhook event: the platform's id for it, or a hash of the
        signed bytes that brought it (``Event.dedupe_key``)."""
        return f"event:{self.adapter.name}:{event.dedupe_key()}"

    async def deliver(self, event: Event, channel: Channel, *, mark: str | None = None) -> Session:
        """Route ``event`` to its session (starting one for an inbound call) and take the step; ``mark``
        is claimed in the step's save."""
        flow, session_id = await self._locate(event)
        if flow is not None:
            await self.catalog.publish()  # a no-op once done: the version a new session keeps is stored
        return await self.dispatcher.dispatch(
            session_id, event, create=flow is not None, flow=flow, provider=channel, mark=mark
        )

    async def drive(
        self, session_id: str, event: Event, *, flow: str | None = None, mark: str | None = None
    ) -> Session:
        """Take the step of an event no webhook brought (the API: an outbound start, a custom event, an
        end): there is no callback to reply to, so every command goes over REST, and follow-ups are
        handled or kept as a webhook's are. ``flow`` starts a new session of that flow; without it the
        session must exist (``SessionNotFound``). ``mark`` is claimed in the step's save."""
        channel = self.adapter.channel(None)
        if self.recorder is not None:
            self.recorder.api(channel, session_id, event, flow)
        if flow is not None:
            await self.catalog.publish()
        session = await self.dispatcher.dispatch(
            session_id, event, create=flow is not None, flow=flow, provider=channel, mark=mark
        )
        await self._follow_up(channel)
        return session

    async def _locate(self, event: Event) -> tuple[str | None, str]:
        if event.name == "call.received":
            flow = self.router.flow_for(event)
            if flow is None:
                raise WebhookError(
                    f'no flow answers calls to "{event.data.get("to")}" and no default_flow', status=404
                )
            return flow, self.session_id_for(event.call_id or "")
        session_id = None
        if event.call_id:
            session_id = await self.store.session_for_call(event.call_id)
        if session_id is None and event.conference_id:
            session_id = await self.store.session_for_conference(event.conference_id)
        placed_by = event.data.get(PLACED_BY)
        if session_id is None and isinstance(placed_by, str):  # bound before the platform named it
            session_id = await self.store.session_for_call(standin_id(placed_by))
        if session_id is None:
            raise SessionNotFound(
                f'no session owns call "{event.call_id}" or conference "{event.conference_id}"'
            )
        return None, session_id

    def session_id_for(self, call_id: str) -> str:
        """Derived from the inbound call, so a repeated delivery of its first event finds the same
        session on any instance instead of starting a second one."""
        digest = hashlib.sha256(f"{self.adapter.name}:{call_id}".encode()).hexdigest()
        return f"s-{digest[:24]}"

    # -- follow-ups and timers ---------------------------------------------------------------------
    async def _follow_up(self, channel: Channel) -> None:
        """Immediate follow-ups join this reply (they may still add to it); delayed ones are kept with
        their session in the store and fired by the timer loop, so a restart does not lose them."""
        while pending := channel.follow_ups():
            for follow_up in pending:
                if follow_up.delay <= 0:
                    await self._deliver_quietly(follow_up.event, channel)
                else:
                    await self._defer(follow_up)

    async def _defer(self, follow_up: FollowUp) -> None:
        try:
            _, session_id = await self._locate(follow_up.event)
            await self.dispatcher.defer(session_id, follow_up.event, self.clock.now() + follow_up.delay)
        except SessionNotFound as exc:  # derived after its session ended: nothing is left to tell
            log.debug("follow-up %s dropped: %s", follow_up.event.name, exc)
            return
        except Exception:  # like a delivery: there is no webhook to answer with an error
            log.exception("follow-up %s could not be kept", follow_up.event.name)
            return
        self.timers.poke()

    async def _deliver_quietly(self, event: Event, channel: Channel) -> None:
        try:
            await self.deliver(event, channel)
        except SessionNotFound as exc:  # derived after its session ended: nothing is left to tell
            log.debug("follow-up %s dropped: %s", event.name, exc)
        except Exception:  # a follow-up has no webhook to answer with an error: log it
            log.exception("follow-up %s failed", event.name)

    async def fire_timers(self, session_id: str) -> None:
        await self.reconciler.when_quiet(session_id)
        channel = self.adapter.channel(None)
        session = await self.dispatcher.fire_timers(session_id, provider=channel)
        if session is not None:
            await self._follow_up(channel)

    def _timers_fired(self, timer_ids: list[str]) -> None:
        for timer_id in timer_ids:
            self.metrics.count("timers", timer_kind(timer_id))

    async def close(self) -> None:
        """Every pending event and timer is in the store; only the sessions being recorded are written."""
        if self.recorder is not None:
            await self.recorder.close()

    # -- read side -------------------------------------------------------------------------------
    async def scrape(self) -> tuple[bytes, str]:
        """The metrics' exposition, the live gauges read from the store now (left out if it fails)."""
        try:
            census = await self.store.census(timer_kind)
        except StoreError as exc:
            log.warning("metrics without the live gauges: the store did not answer: %s", exc)
            census = None
        states = {name: [s for s, state in flow.states.items() if not state.final]
                  for name, flow in self.flows.items()}
        self.metrics.take_census(census, states)
        return self.metrics.exposition()

    async def session_view(self, session_id: str) -> dict[str, Any] | None:
        record = await self.store.get(session_id)
        # Redacted: variables and platform payloads may hold URLs with tokens or credentials in them.
        return None if record is None else {**redact_json(record.data), "revision": record.revision}


def _kind(request: WebhookRequest) -> str:
    return f"{request.method} {request.path}, {len(request.body)} bytes"
