"""Recording real traffic as replay files (``record:`` in the config; ``flowengine replay`` plays them).

The seam is the service's edges, not the runtime: the adapter is wrapped (``RecordingAdapter``), so every
webhook request it parses is kept as it arrived and every command any channel carries out (over REST or
into Sinch's SVAML reply) is kept with the platform's answer or refusal and the events the adapter
derived from it; the ``http`` actions' client and the platform observations are wrapped the same way. The
service tells the recorder which sessions a webhook's events went to (``webhook_done``) and which event
the API brought (``api``); the sessions' saves say when one has ended.

The hot path only appends references to a list: converting, redacting (``recordings.redact``) and writing
happen once, when a session has been over for ``GRACE`` seconds (so trailing hang-up events still make it
into the file), or at shutdown for sessions still running (``"complete": false``). Commands are told apart
by session through their correlation key (``session:seq:index``); an http action or an observation, by the
session whose save came last in the same task (the executor writes ahead before each).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml

from flowengine.config import RecordSettings, ServiceConfig
from flowengine.errors import ProviderError
from flowengine.flow.model import Flow
from flowengine.providers.base import Adapter, Channel, FollowUp, WebhookReply, WebhookRequest
from flowengine.recordings import fileformat as ff
from flowengine.recordings.redact import Redactor, known_numbers
from flowengine.runtime.clock import Clock
from flowengine.runtime.dispatcher import SaveSession
from flowengine.runtime.events import Event
from flowengine.runtime.ports import ActionResult, HttpAnswer, HttpClient, HttpRequest, ProviderCommand
from flowengine.runtime.reconcile import Observation
from flowengine.runtime.session import Session
from flowengine.server.recorded_entries import Entry, SessionLog, entry_json, file_name

log = logging.getLogger("flowengine.recording")

GRACE = 2.0  # seconds after a session ends before its file is written: trailing events still count
MAX_OPEN = 10_000  # sessions recorded at once; beyond it the oldest is written as it stands
FINISHED = ("ended", "failed")
_SESSION: ContextVar[str | None] = ContextVar("recorded_session", default=None)
Save = SaveSession


class Recorder:
    def __init__(self, settings: RecordSettings, clock: Clock, *, provider: str, flows: Mapping[str, Flow],
                 keep_numbers: Iterable[str] = ()) -> None:
        self.settings = settings
        self.clock = clock
        self.provider = provider
        self.flows = dict(flows)
        self.keep = frozenset(keep_numbers)
        self.written: list[Path] = []
        self._logs: OrderedDict[str, SessionLog] = OrderedDict()
        self._done: OrderedDict[str, None] = OrderedDict()  # written: late entries are not recorded
        self._serial = itertools.count()
        self._parsed: tuple[list[Event], Entry] | None = None
        settings.dir.mkdir(parents=True, exist_ok=True)

    # -- wrapping the service's ports ------------------------------------------------------------------
    def wrap_adapter(self, adapter: Adapter) -> Adapter:
        return RecordingAdapter(adapter, self)

    def wrap_http(self, http: HttpClient | None) -> HttpClient | None:
        return None if http is None else RecordingHttp(http, self)

    def saving(self, save: Save) -> Save:
        async def recorded_save(session: Session, *, mark: str | None = None) -> None:
            await save(session, mark=mark)
            _SESSION.set(session.id)
            found = self._log(session.id)
            if found is not None:
                found.flow, found.state, found.status = session.flow, session.state, session.status
                if session.status in FINISHED and not found.over:
                    found.over = True
                    self.clock.spawn(self._write_later(session.id))

        return recorded_save

    # -- what the service tells ------------------------------------------------------------------------
    def webhook_done(self, channel: Channel, sessions: Iterable[str]) -> None:
        """The webhook whose reply ``channel`` built went to ``sessions``."""
        entry = channel.recorded if isinstance(channel, RecordingChannel) else None
        if entry is None:
            return
        for session_id in dict.fromkeys(sessions):
            found = self._logs.get(session_id)
            if found is not None:
                found.add(entry)

    def api(self, channel: Channel, session_id: str, event: Event, flow: str | None) -> None:
        """The API brought ``event`` for ``session_id`` (``flow``: it starts that flow's session)."""
        entry = self._input("api", {"session": session_id, "flow": flow, "event": event})
        if isinstance(channel, RecordingChannel):
            channel.recorded = entry
        # A start opens its session's recording; another event joins one, if its session is recorded here.
        found = self._log(session_id, flow) if flow is not None else self._logs.get(session_id)
        if found is not None:
            found.add(entry)

    async def close(self) -> None:
        """Write every session still recorded, finished or not."""
        for session_id in list(self._logs):
            self._write(session_id)

    # -- entries -----------------------------------------------------------------------------------------
    def _input(self, kind: str, doc: dict[str, Any], request: WebhookRequest | None = None) -> Entry:
        return Entry(next(self._serial), self.clock.now(), kind, doc, request)

    def parsed(self, request: WebhookRequest, events: list[Event]) -> None:
        self._parsed = (events, self._input("webhook", {}, request)) if events else None

    def input_for(self, trigger: Event | None) -> Entry | None:
        """The webhook just parsed, if ``trigger`` is its first event (the service opens its channel
        straight after parsing)."""
        if self._parsed is None or trigger is None or trigger is not self._parsed[0][0]:
            return None
        entry, self._parsed = self._parsed[1], None
        return entry

    def command(self, during: Entry | None, command: ProviderCommand, outcome: ActionResult | ProviderError,
                follow_ups: list[FollowUp]) -> None:
        # The executor saved the session before sending (write-ahead), so its recording is open; a command
        # of no session's (an orphan's hang-up) has none.
        found = self._logs.get(command.key.partition(":")[0])
        if found is not None:
            doc = {"during": during, "command": command, "outcome": outcome, "follow_ups": follow_ups}
            found.add(Entry(next(self._serial), self.clock.now(), "command", doc))

    def other(self, kind: str, doc: dict[str, Any]) -> None:
        """An http exchange or an observation, for the session being worked on in this task."""
        session_id = _SESSION.get()
        found = self._logs.get(session_id) if session_id is not None else None
        if found is not None:
            found.add(Entry(next(self._serial), self.clock.now(), kind, doc))

    def _log(self, session_id: str, flow: str | None = None) -> SessionLog | None:
        if session_id in self._done:
            return None
        found = self._logs.get(session_id)
        if found is None:
            if len(self._logs) >= MAX_OPEN:
                self._write(next(iter(self._logs)))
            found = self._logs[session_id] = SessionLog(session_id, flow)
        return found

    # -- writing -----------------------------------------------------------------------------------------
    async def _write_later(self, session_id: str) -> None:
        await self.clock.sleep(GRACE)
        self._write(session_id)

    def _write(self, session_id: str) -> None:
        found = self._logs.pop(session_id, None)
        if found is None:
            return
        self._done[session_id] = None
        while len(self._done) > MAX_OPEN:
            self._done.popitem(last=False)
        if not found.entries:
            return
        try:
            started = time.perf_counter()
            document = self._document(found)
            path = self.settings.dir / file_name(found, document["started"])
            ff.write(path, document)
        except Exception:  # a full disk must not stop calls: say so, once per session
            log.exception("could not write the replay file of session %s", session_id)
            return
        self.written.append(path)
        log.info("recorded session %s in %s (%d entries, %.1f ms)", session_id, path.name,
                 len(document["entries"]), (time.perf_counter() - started) * 1000)

    def _document(self, found: SessionLog) -> dict[str, Any]:
        redactor = Redactor(keep=self.keep, fields=self.settings.redact)
        ordered = sorted(found.entries, key=lambda e: e.n)
        started = min(e.t for e in ordered)
        entries = [entry_json(e, started, redactor) for e in ordered]
        flow = self.flows.get(found.flow or "")
        return {
            "format": ff.FORMAT, "provider": self.provider,
            "flow": {"name": found.flow, "path": flow.source if flow is not None else None},
            "session": found.session_id, "started": round(started, 3),
            "complete": found.over, "dropped": found.dropped,
            "end": {"state": found.state, "status": found.status},
            "redacted": {"numbers": redactor.numbers, "fields": list(self.settings.redact)},
            "entries": entries,
        }


class RecordingChannel:
    """A channel whose commands, answers and derived events are recorded; it behaves as the one it wraps."""

    def __init__(self, inner: Channel, recorder: Recorder, recorded: Entry | None) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        self.recorded = recorded  # the input being handled (its reply is noted here), None on a timer
        self._recorder = recorder
        self._derived: list[FollowUp] = []

    async def execute(self, command: ProviderCommand) -> ActionResult:
        try:
            result = await self.inner.execute(command)
        except ProviderError as exc:
            self._note(command, exc)
            raise
        self._note(command, result)
        return result

    def _note(self, command: ProviderCommand, outcome: ActionResult | ProviderError) -> None:
        derived = self.inner.follow_ups()  # what this command implied, told apart from the next one's
        self._derived.extend(derived)
        self._recorder.command(self.recorded, command, outcome, derived)

    def reply(self) -> WebhookReply:
        reply = self.inner.reply()
        if self.recorded is not None:
            self.recorded.reply = reply
        return reply

    def follow_ups(self) -> list[FollowUp]:
        handed, self._derived = [*self._derived, *self.inner.follow_ups()], []
        return handed


class RecordingAdapter:
    """The service's adapter, recorded: it parses, authenticates and carries out as the one it wraps."""

    def __init__(self, inner: Adapter, recorder: Recorder) -> None:
        self.inner = inner
        self.recorder = recorder
        self.name = inner.name
        self.capabilities = inner.capabilities

    @property
    def webhook_auth_enabled(self) -> bool:
        return self.inner.webhook_auth_enabled

    @property
    def replay_window(self) -> float | None:
        return self.inner.replay_window

    def parse_webhook(self, request: WebhookRequest) -> list[Event]:
        events = self.inner.parse_webhook(request)
        self.recorder.parsed(request, events)
        return events

    def channel(self, trigger: Event | None) -> Channel:
        return RecordingChannel(self.inner.channel(trigger), self.recorder, self.recorder.input_for(trigger))

    async def observe(self, calls: Iterable[str], conferences: Iterable[str]) -> Observation:
        calls, conferences = list(calls), list(conferences)
        seen = await self.inner.observe(calls, conferences)
        self.recorder.other("observe", {"calls": calls, "conferences": conferences,
                                        "seen": ff.observation_json(seen)})
        return seen

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()


class RecordingHttp:
    """The ``http`` actions' client, recorded."""

    def __init__(self, inner: HttpClient, recorder: Recorder) -> None:
        self.inner = inner
        self.recorder = recorder

    async def request(self, request: HttpRequest) -> HttpAnswer:
        doc: dict[str, Any] = {"request": ff.http_request_json(request)}
        try:
            answer = await self.inner.request(request)
        except ProviderError as exc:
            self.recorder.other("http", {**doc, "error": ff.error_json(exc)})
            raise
        self.recorder.other("http", {**doc, "answer": ff.answer_json(answer)})
        return answer


def recorder(config: ServiceConfig, clock: Clock, flows: Mapping[str, Flow]) -> Recorder:
    """The recorder ``config.record`` asks for. The numbers the service publishes stay as they are (its
    routes' called numbers, numbers written in its flows and provider settings): they route the calls and
    are what the flow dials, so a replay needs them, and they are nobody's private number."""
    assert config.record is not None
    texts = [route.to or "" for route in config.routes]
    texts += [str(value) for value in config.provider_settings.values()]
    texts += [_flow_text(flow) for flow in flows.values()]
    return Recorder(config.record, clock, provider=config.provider, flows=flows,
                    keep_numbers=known_numbers(texts))


def _flow_text(flow: Flow) -> str:
    """What a flow file says, but its scenarios: their callers are made up, and a real caller who happens
    to have one of those numbers must still be replaced."""
    try:
        document = yaml.safe_load(Path(flow.source).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):  # loaded a moment ago: gone or changed since, it keeps no number
        return ""
    if isinstance(document, dict):
        document.pop("scenarios", None)
    return json.dumps(document, default=str)
