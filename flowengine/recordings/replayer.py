"""``flowengine replay``: a recorded session's inputs fed again to the service core, in-process, against a
flow (the recorded one or a new version), with every command answered from the recording.

The service is the production one (``server.service.Service``) with a memory store, on a virtual clock
that starts when the recording did: each input is fed at its recorded offset and the flow's own timers
fire in between as they fall due, so a replay takes milliseconds. The adapter parses webhooks as the
platform's adapter does but checks no signature (the file is trusted input, and its credentials were
never kept); its channel answers each command from the recording (``script``), emits the events the
platform's adapter derived from it then (Sinch's implied answers, joins, ends of says) and builds no
SVAML. Nothing reaches a platform or an ``http`` host.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowengine.errors import FlowEngineError, ProviderError, RecordingError, SessionNotFound
from flowengine.flow.loader import load_flow_or_raise
from flowengine.flow.model import Flow
from flowengine.providers import capabilities, platform
from flowengine.providers.base import FollowUp, WebhookReply, WebhookRequest
from flowengine.recordings import fileformat as ff
from flowengine.recordings.script import CURRENT, Divergence, Point, Script
from flowengine.runtime.clock import VirtualClock
from flowengine.runtime.events import Event
from flowengine.runtime.outbox import event_from_json
from flowengine.runtime.ports import ActionResult, HttpAnswer, HttpRequest, ProviderCommand
from flowengine.runtime.reconcile import Observation
from flowengine.server.routing import Router
from flowengine.server.service import Service
from flowengine.stores.memory import MemoryStore

TAIL = 300.0  # virtual seconds the flow may go on after the recording's last entry
REAL_LIMIT = 30.0  # wall-clock seconds one file may take before the replay gives up on it
FINISHED = ("ended", "failed")


def _parser(provider: str) -> Callable[[bytes], list[Event]]:
    """The platform adapter's own parsing, without its authentication."""
    if provider == "sinch":
        from flowengine.providers.sinch.callbacks import parse_callback

        return parse_callback
    from flowengine.providers.infobip.webhooks import parse_events

    return parse_events


class ReplayChannel:
    def __init__(self, script: Script, provider: str) -> None:
        self.script = script
        self.name = provider
        self.capabilities = capabilities(provider)
        self._derived: list[FollowUp] = []

    async def execute(self, command: ProviderCommand) -> ActionResult:
        entry = self.script.command(command.action, command.args)
        if entry is None:
            return ActionResult(id=self.script.new_id(command.action))
        self._derived.extend(FollowUp(event_from_json(f["event"]), float(f.get("delay") or 0.0))
                             for f in entry.get("follow_ups", ()))
        if "error" in entry:
            raise ff.error_from_json(entry["error"])
        return ff.result_from_json(entry.get("result") or {})

    def reply(self) -> WebhookReply:
        return WebhookReply()

    def follow_ups(self) -> list[FollowUp]:
        handed, self._derived = self._derived, []
        return handed


class ReplayAdapter:
    webhook_auth_enabled = True  # nothing is served: no request reaches this but the recording's
    replay_window = None

    def __init__(self, provider: str, script: Script) -> None:
        self.name = provider
        self.capabilities = capabilities(provider)
        self.script = script
        self._parse = _parser(provider)

    def parse_webhook(self, request: WebhookRequest) -> list[Event]:
        events = self._parse(request.body)
        point = CURRENT.get()
        if point is not None and point.n is not None:
            point.label = ", ".join(e.name for e in events) or "nothing flowengine handles"
            self.script.labels[point.n] = point.label
        return events

    def channel(self, trigger: Event | None) -> ReplayChannel:
        return ReplayChannel(self.script, self.name)

    async def observe(self, calls: Iterable[str], conferences: Iterable[str]) -> Observation:
        entry = self.script.observation(list(calls), list(conferences))
        if entry is None:
            raise ProviderError("the recording holds no answer to this question to the platform")
        return ff.observation_from_json(entry["seen"])

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class ReplayHttp:
    def __init__(self, script: Script) -> None:
        self.script = script

    async def request(self, request: HttpRequest) -> HttpAnswer:
        entry = self.script.exchange(ff.http_request_json(request))
        if entry is None:
            return HttpAnswer(200)
        if "error" in entry:
            raise ff.error_from_json(entry["error"])
        return ff.answer_from_json(entry.get("answer") or {})


@dataclass
class Outcome:
    """One file's replay: its divergences, or ``error`` when it could not be replayed at all."""

    path: Path
    flow: str = ""
    flow_path: str = ""
    divergences: list[Divergence] = field(default_factory=list)
    recorded_commands: int = 0
    replayed_commands: int = 0
    end: dict[str, Any] = field(default_factory=dict)  # {"recorded": {...}, "replayed": {...}}
    error: str | None = None

    @property
    def diverged(self) -> bool:
        return bool(self.divergences)


def load_recording(path: Path, flow_path: Path | None) -> tuple[dict[str, Any], Flow]:
    """The file and the flow to replay it against (``flow_path``, else the one it was recorded with);
    ``RecordingError`` or ``FlowError`` saying what is wrong."""
    document = ff.load(path)
    if flow_path is None:
        named = document["flow"].get("path")
        if not named:
            raise RecordingError(f"{path}: the recording names no flow file: give --flow")
        flow_path = Path(named)
        if not flow_path.is_file():
            raise RecordingError(f"{path}: the flow it was recorded with, {named}, is not here: give --flow")
    flow = load_flow_or_raise(flow_path, platform=platform(document["provider"]))
    return document, flow


async def replay(path: Path, document: Mapping[str, Any], flow: Flow) -> Outcome:
    """Replay one recording against ``flow``."""
    script = Script(document)
    outcome = Outcome(path, flow.name, flow.source, recorded_commands=len(script.commands.entries)
                      + len(script.http.entries))
    clock = VirtualClock(start=float(document["started"]))
    clock.start()
    store = MemoryStore(now=clock.now)
    service = Service(
        flows={flow.name: flow}, router=Router((), flow.name), store=store,
        adapter=ReplayAdapter(str(document["provider"]), script), clock=clock, timer_poll=None,
        http=ReplayHttp(script), trace_limit=100_000,
    )
    timers = asyncio.get_running_loop().create_task(service.timers.run())
    try:
        await asyncio.wait_for(_feed(service, document, flow, script), REAL_LIMIT)
    except TimeoutError:
        script.divergences.append(Divergence("unfinished", "replay", f"after {REAL_LIMIT:g} s of real time",
                                             replayed="the flow kept going (a timer loop?)"))
    finally:
        timers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timers
        await clock.stop()
    script.finish()
    outcome.end = await _end(store, document, script)
    outcome.divergences, outcome.replayed_commands = script.divergences, script.replayed
    return outcome


async def _feed(service: Service, document: Mapping[str, Any], flow: Flow, script: Script) -> None:
    clock = service.clock
    assert isinstance(clock, VirtualClock)
    started = float(document["started"])
    entries = document["entries"]
    for entry in entries:
        if entry["kind"] not in ("webhook", "api"):
            continue
        await clock.sleep(started + float(entry["t"]) - clock.now())
        point = Point(int(entry["n"]), float(entry["t"]), entry["kind"])
        CURRENT.set(point)
        with clock.busy():
            problem = await _input(service, entry, flow)
        CURRENT.set(None)
        if problem is not None:
            script.divergences.append(Divergence("input", entry["kind"], point.describe(), replayed=problem))
    last = max((float(e["t"]) for e in entries), default=0.0)
    await _run_out(service, started + last)


async def _input(service: Service, entry: Mapping[str, Any], flow: Flow) -> str | None:
    """Feed one recorded input; what went wrong, if it was refused."""
    try:
        if entry["kind"] == "webhook":
            body = json.dumps(entry["body"]).encode() if "body" in entry else entry.get("text", "").encode()
            request = WebhookRequest(entry["method"], entry["path"], dict(entry.get("headers") or {}), body,
                                     dict(entry.get("query") or {}))
            await service.handle_webhook(request)
        else:
            event = event_from_json(entry["event"])
            await service.drive(str(entry["session"]), event, flow=flow.name if entry.get("flow") else None)
    except SessionNotFound as exc:
        return f"no session took it: {exc}"
    except FlowEngineError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def _run_out(service: Service, last: float) -> None:
    """Let the flow's timers run after the last input, until its sessions are over or nothing is due
    before ``TAIL`` seconds past the recording's last entry (a flow that keeps going stops there)."""
    clock, deadline = service.clock, last + TAIL
    await clock.sleep(max(0.0, last - clock.now()) + 0.5)  # due work, derived events, first
    while True:
        sessions = await service.store.list_sessions()
        if all(s.status in FINISHED for s in sessions):
            return
        due = await service.store.next_due()
        if due is None or due > deadline:
            return
        await clock.sleep(max(1.0, due - clock.now() + 0.01))  # the timer loop fires it meanwhile


async def _end(store: MemoryStore, document: Mapping[str, Any], script: Script) -> dict[str, Any]:
    sessions = await store.list_sessions()
    first = min(sessions, key=lambda s: s.data.get("created") or 0.0) if sessions else None
    replayed = {"state": first.state, "status": first.status} if first is not None else {}
    recorded = dict(document.get("end") or {})
    if document.get("complete", True) and recorded and {k: recorded.get(k) for k in ("state", "status")} \
            != {k: replayed.get(k) for k in ("state", "status")}:
        script.divergences.append(Divergence("end", "session", "at the end", recorded=recorded,
                                             replayed=replayed or "no session started"))
    return {"recorded": recorded, "replayed": replayed}
