"""The outbox keeps no secret: a command whose parameters hold one is written ahead redacted, and a
resumed plan takes it back from the flow; if the flow no longer has it, it fails instead of going out
with masked values."""

from __future__ import annotations

import json

import pytest

from flowengine.flow.loader import load_flow_or_raise
from flowengine.flow.model import Flow
from flowengine.runtime.commands import Plan
from flowengine.runtime.dispatcher import Dispatcher
from flowengine.runtime.engine import Engine
from flowengine.runtime.executor import LOST, Executor
from flowengine.runtime.outbox import pending, write_ahead
from flowengine.runtime.ports import HttpAnswer, HttpRequest
from flowengine.runtime.session import Session
from flowengine.testing import ManualClock, RecordingProvider, event

CALLER = "caller-1"
TOKEN = "PLANTEDtoken42"
FLOW = """
flow: lookup
version: 1
initial: asking
states:
  asking:
    entry:
      - answer: {call: caller}
      - log: {message: "password=PLANTEDpw7"}
      - http: {url: "https://crm.example.com/lookup?token=PLANTEDtoken42&who={{ event.call_id }}", as: reply}
      - hangup: {call: caller}
    on: {call.finished: done, action.failed: done}
  done: {type: final}
"""


class Crash(BaseException):
    """The engine process dying while the http request is in flight."""


class Http:
    def __init__(self, crash: bool = False) -> None:
        self.crash = crash
        self.urls: list[str] = []

    async def request(self, request: HttpRequest) -> HttpAnswer:
        self.urls.append(request.url)
        if self.crash:
            raise Crash
        return HttpAnswer(200, {"ok": True})


class Store:
    def __init__(self) -> None:
        self.docs: dict[str, str] = {}

    async def load(self, session_id: str) -> Session | None:
        doc = self.docs.get(session_id)
        return None if doc is None else Session.from_json(json.loads(doc))

    async def save(self, session: Session) -> None:
        self.docs[session.id] = json.dumps(session.to_json())


def flow_of(text: str) -> Flow:
    return load_flow_or_raise(text, source="lookup.yaml")


def engine(store: Store, flow: Flow, http: Http) -> tuple[Dispatcher, RecordingProvider]:
    provider = RecordingProvider()
    executor = Executor(Engine(flow, ManualClock()), http=http)
    return Dispatcher(executor, provider, store.load, store.save), provider


async def crashed_in_http(flow: Flow) -> Store:
    store = Store()
    first, _ = engine(store, flow, Http(crash=True))
    with pytest.raises(Crash):
        await first.dispatch("s", event("call.received", call_id=CALLER))
    return store


async def test_the_outbox_holds_the_redacted_url_and_resuming_sends_the_real_one() -> None:
    flow = flow_of(FLOW)
    store = await crashed_in_http(flow)
    assert "PLANTED" not in store.docs["s"]
    outbox = json.loads(store.docs["s"])["outbox"]
    http_doc = outbox["commands"][2]
    # the template left after the masked query is no secret: only the URL up to its first space is one
    assert http_doc["params"]["url"] == "https://crm.example.com/lookup?token=***&who=*** event.call_id }}"
    assert http_doc["redacted"] is True and outbox["commands"][0].get("redacted") is None
    http = Http()
    second, provider = engine(store, flow, http)
    await second.finish_pending("s")
    assert http.urls == [f"https://crm.example.com/lookup?token={TOKEN}&who={CALLER}"]
    assert provider.actions == ["hangup"]  # the rest of the plan, after the command that was in flight
    session = await store.load("s")
    assert session is not None and session.outbox is None and session.vars["reply"] == {"ok": True}


async def test_a_redacted_command_the_flow_no_longer_has_fails_instead_of_going_out_masked() -> None:
    store = await crashed_in_http(flow_of(FLOW))
    changed = flow_of(FLOW.replace("/lookup?", "/v2/lookup?"))  # redeployed while the engine was down
    http = Http()
    second, _ = engine(store, changed, http)
    await second.finish_pending("s")
    assert http.urls == []
    session = await store.load("s")
    assert session is not None and session.state == "done"
    errors = [c for step in session.trace for c in step.commands if c[1] == "error"]
    assert errors == [("http", "error", f"invalid: http: not resumed: {LOST}")]


def test_commands_without_secrets_are_stored_as_they_are() -> None:
    engine_ = Engine(flow_of(FLOW), ManualClock())
    plan = engine_.program.entry["asking"]
    doc = write_ahead(Plan(plan), 0, 0, 1.0)
    assert doc["commands"][0] == {"action": "answer", "params": {"call": "caller"},
                                  "origin": "states.asking.entry[0]"}
    assert doc["commands"][1]["params"]["message"] == "password=***"
    left = pending(json.loads(json.dumps(doc)), engine_.program.by_origin.get)
    assert list(left.plan) == list(plan) and left.lost == frozenset()
    assert pending(json.loads(json.dumps(doc))).lost == {1, 2}  # nowhere to take them back from
