"""Which plans are written ahead, and with what deadline: every plan the executor runs (an event's, a
failure's, an ``always`` transition's, one learnt by asking the platform, a resumed one) writes each
command that reaches out before sending it, due ``RESUME_AFTER`` seconds later; a resumed plan renews
that deadline (no other instance takes it over while this one works) and marks only its first command
``resumed``."""

from __future__ import annotations

import json
from typing import Any

from flowengine.flow.build import build_flow
from flowengine.flow.model import Flow
from flowengine.runtime.engine import Engine
from flowengine.runtime.events import Event
from flowengine.runtime.executor import RESUME_AFTER, Executor, Observe
from flowengine.runtime.outbox import write_ahead
from flowengine.runtime.reconcile import CallSeen, Observation
from flowengine.runtime.session import Session
from flowengine.testing import ManualClock, RecordingProvider, event

CALLER, AGENT = "caller-1", "call-1"
RECEIVED = event("call.received", call_id=CALLER)


def flow_of(states: dict[str, Any], **top: Any) -> Flow:
    return build_flow({"flow": "t", "version": 1, "initial": "start", "vars": top.pop("vars", {}),
                       "states": {**states, "end": {"type": "final"}}, **top})


class Writes:
    """A checkpoint that keeps what each write-ahead stored: (the command about to go, its due time)."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.docs: list[dict[str, Any]] = []

    async def __call__(self, session: Session) -> None:
        assert session.outbox is not None
        self.docs.append(json.loads(json.dumps(session.outbox)))  # as a store keeps it

    def sent(self) -> list[tuple[str, Any]]:
        return [(doc["commands"][doc["next"]]["action"], doc["due"]) for doc in self.docs]


async def run(flow: Flow, events: list[Event], *, provider: RecordingProvider | None = None,
              observe: Observe | None = None) -> tuple[Session, Writes, RecordingProvider]:
    clock = ManualClock()
    engine, writes = Engine(flow, clock), Writes(clock)
    executor, provider = Executor(engine, observe=observe), provider or RecordingProvider()
    session = engine.new_session("s")
    for sent in events:
        clock.advance(1)
        session, plan = engine.handle(session, sent)
        session = await executor.run(session, plan, provider, checkpoint=writes)
    return session, writes, provider


async def test_each_command_is_written_ahead_due_resume_after_from_then() -> None:
    flow = flow_of({"start": {"entry": [{"answer": {"call": "caller"}}, {"set": {"x": 1}},
                                        {"conference_create": {"as": "room"}}]}})
    session, writes, _ = await run(flow, [RECEIVED])
    due = session.updated + RESUME_AFTER
    assert writes.sent() == [("answer", due), ("conference_create", due)]  # ``set`` reaches nothing
    assert session.outbox is None


async def test_a_failure_plan_is_written_ahead_too() -> None:
    entry = [{"dial": {"to": "4477", "as": "agent"}}, {"say": {"call": "caller", "text": "hi"}}]
    flow = flow_of({"start": {"entry": entry}})
    provider = RecordingProvider()
    provider.fail("say")
    session, writes, _ = await run(flow, [RECEIVED], provider=provider)
    assert session.status == "failed"
    assert [action for action, _ in writes.sent()] == ["dial", "say", "hangup", "hangup"]  # caller, agent


async def test_an_always_transitions_plan_is_written_ahead_too() -> None:
    flow = flow_of({
        "start": {"always": {"target": "greet", "when": "vars.go"}, "on": {"call.finished": "end"}},
        "greet": {"entry": [{"say": {"call": "caller", "text": "hi"}}], "on": {"call.finished": "end"}},
    }, vars={"go": True})
    session, writes, provider = await run(flow, [RECEIVED])
    assert (session.state, provider.actions, [a for a, _ in writes.sent()]) == ("greet", ["say"], ["say"])


async def test_a_plan_learnt_by_asking_the_platform_is_written_ahead_too() -> None:
    async def observe(calls: list[str], conferences: list[str]) -> Observation:
        return Observation({AGENT: CallSeen(ended=True, reason="hangup")}, {})

    flow = flow_of({
        "start": {"entry": [{"dial": {"to": "4477", "as": "agent"}}], "on": {"call.answered": "talk"}},
        "talk": {"entry": [{"say": {"call": "agent", "text": "hello"}}],
                 "on": {"call.finished": {"target": "bye", "when": "event.call == 'agent'"}}},
        "bye": {"entry": [{"say": {"call": "caller", "text": "goodbye"}}], "on": {"call.finished": "end"}},
    })
    provider = RecordingProvider()
    provider.fail("say", times=1, status=404)  # the agent is gone: the platform is asked, the flow moves on
    session, writes, _ = await run(flow, [RECEIVED, event("call.answered", call_id=AGENT)], provider=provider,
                                   observe=observe)
    assert session.state == "bye"
    assert [a for a, _ in writes.sent()] == ["dial", "say", "say"]
    assert writes.docs[-1]["commands"][0]["params"]["text"] == "goodbye"


async def test_a_resumed_plan_renews_its_deadline_and_marks_only_its_first_command_resumed() -> None:
    flow = flow_of({"start": {"entry": [{"answer": {"call": "caller"}}, {"conference_create": {"as": "room"}},
                                        {"conference_join": {"conference": "room", "call": "caller"}}]}})
    clock = ManualClock()
    engine = Engine(flow, clock)
    session, plan = engine.handle(engine.new_session("s"), RECEIVED)
    written = write_ahead(plan, 1, 0, clock.now() + RESUME_AFTER)  # the engine died sending command 1
    session.outbox = json.loads(json.dumps(written))
    clock.advance(RESUME_AFTER + 5)  # nobody came back: the timer loop resumes it
    writes, provider = Writes(clock), RecordingProvider()
    loaded = session  # as a store's cache may hand it out: shared
    session = await Executor(engine).resume(loaded, provider, checkpoint=writes)
    assert loaded.outbox is not None and loaded.conferences == {}  # the loaded session is left as it was
    renewed = clock.now() + RESUME_AFTER
    assert writes.sent() == [("conference_create", renewed), ("conference_join", renewed)]
    assert [(c.action, c.resumed) for c in provider.commands] == [
        ("conference_create", True), ("conference_join", False)]
    assert session.outbox is None and session.conferences == {"room": "conf-1"}


async def test_a_resumed_plan_still_marks_a_command_it_could_not_take_back() -> None:
    """The flow changed while the engine was down, so the stored (redacted) request cannot be restored;
    the plan written again on resuming must still say so, or a second interruption would send it masked."""
    def lookup(token: str) -> Flow:
        return flow_of({"start": {"entry": [{"answer": {"call": "caller"}},
                                            {"http": {"url": f"https://crm.example.com/x?token={token}"}}]}})

    clock = ManualClock()
    before = Engine(lookup("PLANTED1"), clock)
    session, plan = before.handle(before.new_session("s"), RECEIVED)
    session.outbox = json.loads(json.dumps(write_ahead(plan, 0, 0, clock.now() + RESUME_AFTER)))
    writes = Writes(clock)
    await Executor(Engine(lookup("PLANTED2"), clock)).resume(session, RecordingProvider(), checkpoint=writes)
    resumed = [doc for doc in writes.docs if len(doc["commands"]) == 2]  # then the failure's own plan
    assert [(doc["next"], doc["commands"][1].get("redacted")) for doc in resumed] == [(0, True), (1, True)]
    assert "PLANTED" not in json.dumps(writes.docs)
