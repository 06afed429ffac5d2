"""The dispatcher: events of one session one at a time, sessions concurrently, duplicates once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from flowengine.errors import SessionNotFound
from flowengine.flow.build import build_flow
from flowengine.flow.loader import load_flow_or_raise
from flowengine.flow.model import Flow
from flowengine.runtime.dispatcher import Dispatcher, SessionLocks
from flowengine.runtime.engine import Engine
from flowengine.runtime.events import Event
from flowengine.runtime.executor import Executor
from flowengine.runtime.session import Session
from flowengine.testing import ManualClock, RecordingProvider, event

FLOW_FILE = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"


class JsonStore:
    """Sessions kept as JSON text, as a store would, with an await on each side to let others in."""

    def __init__(self) -> None:
        self.docs: dict[str, str] = {}

    async def load(self, session_id: str) -> Session | None:
        await asyncio.sleep(0)
        doc = self.docs.get(session_id)
        return None if doc is None else Session.from_json(json.loads(doc))

    async def save(self, session: Session) -> None:
        await asyncio.sleep(0)
        self.docs[session.id] = json.dumps(session.to_json())


Wiring = tuple[Dispatcher, JsonStore, RecordingProvider]


def dispatcher(flow: Flow, clock: ManualClock | None = None) -> Wiring:
    store = JsonStore()
    provider = RecordingProvider(yield_control=True)
    executor = Executor(Engine(flow, clock or ManualClock()))
    return Dispatcher(executor, provider, store.load, store.save), store, provider


@pytest.fixture(scope="module")
def conference() -> Flow:
    return load_flow_or_raise(FLOW_FILE)


UNTIL_DIALING = ["answer", "conference_create", "conference_join", "say", "hold", "conference_dial"]
ENDINGS = {  # branch -> (final state, actions the session sent, in order)
    "connected": ("closing", [*UNTIL_DIALING, "resume", "say", "conference_hangup"]),
    "no_answer": ("closing", [*UNTIL_DIALING, "resume", "say", "conference_hangup"]),
    "abandoned": ("abandoned", [*UNTIL_DIALING, "hangup"]),
}


async def one_call(d: Dispatcher, n: int, branch: str) -> Session:
    sid, caller = f"s-{n}", f"caller-{n}"
    send = d.dispatch
    await send(sid, event("call.received", call_id=caller))
    session = await send(sid, event("call.answered", call_id=caller))
    room = session.conferences["room"]
    await send(sid, event("participant.joined", call_id=caller, conference_id=room))
    session = await send(sid, event("say.finished", call_id=caller))
    callee = session.calls["callee"]
    if branch == "connected":
        await send(sid, event("participant.joined", call_id=callee, conference_id=room))
        return await send(sid, event("call.finished", call_id=caller, reason="hangup"))
    if branch == "no_answer":
        failed = event("participant.join_failed", call_id=callee, conference_id=room, reason="no_answer")
        await send(sid, failed)
        return await send(sid, event("say.finished", call_id=caller))
    return await send(sid, event("call.finished", call_id=caller, reason="hangup"))


async def test_a_thousand_sessions_concurrently(conference: Flow) -> None:
    d, store, provider = dispatcher(conference)
    branches = [("connected", "no_answer", "abandoned")[n % 3] for n in range(1000)]
    results = await asyncio.gather(*(one_call(d, n, branch) for n, branch in enumerate(branches)))
    for session, branch in zip(results, branches, strict=True):
        state, actions = ENDINGS[branch]
        assert (session.state, session.status) == (state, "ended")
        assert [record[0] for step in session.trace for record in step.commands] == actions
        assert all(record[1] == "ok" for step in session.trace for record in step.commands)
        assert Session.from_json(json.loads(store.docs[session.id])) == session
    assert len(provider.calls) == sum(len(ENDINGS[b][1]) for b in branches)
    assert len(d.locks) == 0  # every lock dropped once its session went idle


COUNTER = build_flow({
    "flow": "counter", "version": 1, "initial": "counting", "vars": {"count": 0, "order": []},
    "states": {
        "counting": {
            "entry": [{"answer": {"call": "caller"}}],
            "on": {"dtmf.captured": {"actions": [
                {"set": {"count": "{{ vars.count + 1 }}", "order": "{{ vars.order + [event.digits] }}"}},
                {"say": {"call": "caller", "text": "{{ event.digits }}"}},
            ]}},
        },
    },
})


async def test_events_of_one_session_are_serialised_in_arrival_order() -> None:
    d, _, provider = dispatcher(COUNTER)
    await d.dispatch("s", event("call.received", call_id="c"))
    digits = [str(n) for n in range(40)]
    await asyncio.gather(*(d.dispatch("s", event("dtmf.captured", call_id="c", digits=x)) for x in digits))
    session = await d.dispatch("s", event("dtmf.captured", call_id="c", digits="last"))
    # Without the lock, concurrent load-handle-save would lose updates.
    assert session.vars["count"] == 41
    assert session.vars["order"] == [*digits, "last"]
    assert [kwargs["text"] for action, kwargs in provider.calls if action == "say"] == [*digits, "last"]
    assert len(d.locks) == 0


async def test_duplicate_delivery_is_acted_on_once() -> None:
    d, _, provider = dispatcher(COUNTER)
    await d.dispatch("s", event("call.received", call_id="c"))
    twice = Event("dtmf.captured", call_id="c", digits="5", event_id="provider-42")
    same_content = Event("dtmf.captured", call_id="c", digits="6", raw={"id": None, "digits": "6"})
    results = await asyncio.gather(*(d.dispatch("s", e) for e in (twice, twice, same_content, same_content)))
    assert results[-1].vars["count"] == 2
    assert provider.actions == ["answer", "say", "say"]
    assert [s.note for s in results[-1].trace[-4:]] == [None, "duplicate", None, "duplicate"]


async def test_unknown_session_is_not_created_unless_asked(conference: Flow) -> None:
    d, store, provider = dispatcher(conference)
    with pytest.raises(SessionNotFound):
        await d.dispatch("late", event("call.finished", call_id="c"), create=False)
    assert store.docs == {} and provider.calls == [] and len(d.locks) == 0


async def test_fire_timers_feeds_due_timers(conference: Flow) -> None:
    clock = ManualClock()
    d, _, provider = dispatcher(conference, clock)
    assert await d.fire_timers("nobody") is None
    await d.dispatch("s", event("call.received", call_id="c"))
    session = await d.fire_timers("s")
    assert session is not None and session.state == "answering"
    clock.advance(10)
    session = await d.fire_timers("s")
    assert session is not None and (session.state, session.status) == ("giving_up", "ended")
    assert provider.actions == ["answer", "hangup"]


async def test_session_locks_serialise_one_key_and_not_others() -> None:
    locks = SessionLocks()
    log: list[str] = []
    gate = asyncio.Event()

    async def hold(key: str, tag: str, wait: bool) -> None:
        async with locks.hold(key):
            log.append(f"{tag}+")
            if wait:
                await gate.wait()
            log.append(f"{tag}-")

    first = asyncio.create_task(hold("a", "a1", True))
    second = asyncio.create_task(hold("a", "a2", False))
    other = asyncio.create_task(hold("b", "b1", False))
    for _ in range(5):  # let every task run as far as it can
        await asyncio.sleep(0)
    assert log == ["a1+", "b1+", "b1-"] and len(locks) == 1
    gate.set()
    await asyncio.gather(first, second, other)
    assert log[3:] == ["a1-", "a2+", "a2-"] and len(locks) == 0


async def test_lock_is_released_when_handling_raises(conference: Flow) -> None:
    async def broken_load(_: str) -> Any:
        raise RuntimeError("store down")

    async def save(_: Session) -> None:
        return None

    d = Dispatcher(Executor(Engine(conference, ManualClock())), RecordingProvider(), broken_load, save)
    with pytest.raises(RuntimeError):
        await d.dispatch("s", event("call.received", call_id="c"))
    assert len(d.locks) == 0
