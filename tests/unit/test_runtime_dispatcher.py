"""The dispatcher: events of one session one at a time, sessions concurrently, duplicates once."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from flowengine.errors import SessionNotFound
from flowengine.flow.build import build_flow
from flowengine.flow.loader import load_flow_or_raise
from flowengine.flow.model import Flow
from flowengine.logformat import FIELDS, JsonFormatter
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


COUNTER_DOC: dict[str, Any] = {
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
}
COUNTER = build_flow(COUNTER_DOC)


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


# -- what the log lines of a step say, and which version runs a session --------------------------------------
SAYS = build_flow({
    "flow": "says", "version": 1, "initial": "start",
    "states": {
        "start": {"on": {"call.answered": "talking"}},
        "talking": {"entry": [{"log": {"message": "now talking"}}],
                    "on": {"dtmf.captured": {"actions": [{"log": {"message": "pressed"}}]}}},
    },
})


class JsonLines(logging.Handler):
    """The JSON log lines, formatted as they are written (the scope is that of the moment)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


async def test_log_lines_written_while_a_session_is_held_say_which_session_state_event_and_call() -> None:
    d, _, _ = dispatcher(SAYS)
    handler, logger = JsonLines(), logging.getLogger("flowengine.flow")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)  # (not ``.level =``: that keeps the logger's cached verdicts)
    try:
        await d.dispatch("s-1", event("call.received", call_id="c-1"))
        await d.dispatch("s-1", event("call.answered", call_id="c-1"))
        await d.dispatch("s-1", event("dtmf.captured", call_id="c-1", digits="1"))
        logger.info("between steps")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = handler.lines
    about = [{k: v for k, v in line.items() if k in FIELDS} for line in lines]
    assert [line["message"] for line in lines] == ["s-1: now talking", "s-1: pressed", "between steps"]
    assert about == [
        # the state the entry action runs in, not the one the event came to
        {"session": "s-1", "flow": "says", "state": "talking", "event": "call.answered", "call": "c-1"},
        {"session": "s-1", "flow": "says", "state": "talking", "event": "dtmf.captured", "call": "c-1"},
        {},  # no session held: nothing to say
    ]


async def test_a_session_runs_on_the_version_it_started_on_and_a_new_one_on_the_current() -> None:
    store, provider = JsonStore(), RecordingProvider()
    old = Executor(Engine(COUNTER, ManualClock(), version="a" * 16))
    text = json.dumps(COUNTER_DOC).replace('"{{ event.digits }}"', '"v2 {{ event.digits }}"')
    changed = build_flow(json.loads(text))
    new = Executor(Engine(changed, ManualClock(), version="b" * 16))
    asked: list[tuple[str, str]] = []

    async def versions(flow: str, version: str) -> Executor:  # the service's catalog of held versions
        asked.append((flow, version))
        return old if version == old.engine.version else new

    started = Dispatcher(old, provider, store.load, store.save)
    await started.dispatch("held", event("call.received", call_id="c1"))
    upgraded = Dispatcher(new, provider, store.load, store.save, versions=versions)
    held = await upgraded.dispatch("held", event("dtmf.captured", call_id="c1", digits="1"))
    await upgraded.dispatch("fresh", event("call.received", call_id="c2"))
    fresh = await upgraded.dispatch("fresh", event("dtmf.captured", call_id="c2", digits="2"))
    assert (held.flow_hash, fresh.flow_hash) == (old.engine.version, new.engine.version)
    assert [args["text"] for action, args in provider.calls if action == "say"] == ["1", "v2 2"]
    assert asked == [("counter", old.engine.version)]  # the current version is never looked up


async def test_a_session_from_before_versions_runs_on_the_current_one_without_a_lookup() -> None:
    store, provider = JsonStore(), RecordingProvider()
    unversioned = Dispatcher(Executor(Engine(COUNTER, ManualClock())), provider, store.load, store.save)
    await unversioned.dispatch("old", event("call.received", call_id="c1"))
    asked: list[str] = []

    async def versions(flow: str, version: str) -> Executor:
        asked.append(version)
        raise SessionNotFound(f"no version {version}")

    current = Executor(Engine(COUNTER, ManualClock(), version="b" * 16))
    session = await Dispatcher(current, provider, store.load, store.save, versions=versions).dispatch(
        "old", event("dtmf.captured", call_id="c1", digits="1"))
    assert (session.flow_hash, session.vars["count"], asked) == (None, 1, [])


async def test_a_dispatcher_of_several_flows_starts_a_session_on_the_flow_named() -> None:
    store, provider = JsonStore(), RecordingProvider()
    executors = {flow.name: Executor(Engine(flow, ManualClock())) for flow in (COUNTER, SAYS)}
    d = Dispatcher(executors, provider, store.load, store.save)
    await d.dispatch("s", event("call.received", call_id="c1"), flow="says")
    session = await d.dispatch("s", event("call.answered", call_id="c1"))  # its own flow, not the first
    assert (session.flow, session.state) == ("says", "talking")
    with pytest.raises(SessionNotFound, match=r"no flow 'other' here \(known: counter, says\)"):
        await d.dispatch("t", event("call.received", call_id="c2"), flow="other")
    with pytest.raises(SessionNotFound, match="no session 'u'"):
        await d.dispatch("u", event("call.received", call_id="c3"), create=False)


async def test_a_provider_given_to_a_call_carries_it_out() -> None:
    store, default, given = JsonStore(), RecordingProvider(), RecordingProvider()
    d = Dispatcher(Executor(Engine(COUNTER, ManualClock())), default, store.load, store.save)
    await d.dispatch("s", event("call.received", call_id="c1"), provider=given)
    await d.dispatch("s", event("dtmf.captured", call_id="c1", digits="1"), provider=given)
    assert (given.actions, default.actions) == (["answer", "say"], [])
    nowhere = Dispatcher(Executor(Engine(COUNTER, ManualClock())), None, store.load, store.save)
    with pytest.raises(ValueError, match="no provider given to the dispatcher or to this call"):
        await nowhere.dispatch("t", event("call.received", call_id="c2"))


async def test_a_change_made_while_a_step_runs_waits_for_it_and_is_not_lost() -> None:
    d, store, _ = dispatcher(COUNTER)  # its provider yields at every command, letting others in
    await d.dispatch("s", event("call.received", call_id="c1"))
    step = asyncio.create_task(d.dispatch("s", event("dtmf.captured", call_id="c1", digits="1")))
    await asyncio.sleep(0)  # the step holds the session and awaits its say
    await asyncio.gather(d.checked("s", 123.0), d.defer("s", event("call.finished", call_id="c1"), 5.0))
    await step
    saved = Session.from_json(json.loads(store.docs["s"]))
    assert (saved.vars["count"], saved.checked, len(saved.deferred)) == (1, 123.0, 1)
    with pytest.raises(SessionNotFound, match="no session 'gone'"):
        await d.checked("gone", 1.0)


TIMED = build_flow({
    "flow": "timed", "version": 1, "initial": "counting", "vars": {"order": []},
    "states": {
        "counting": {
            "entry": [{"answer": {"call": "caller"}}],
            "on": {"dtmf.captured": {"actions": [{"set": {"order": "{{ vars.order + [event.digits] }}"}}]}},
            "after": {"10s": {"actions": [{"set": {"order": "{{ vars.order + ['timer'] }}"}}]}},
        },
        "end": {"type": "final"},
    },
})


@pytest.mark.parametrize(
    ("deferred", "handled"),
    [
        ({"early": 5.0}, ["early", "timer"]),
        ({"late": 15.0}, ["timer", "late"]),
        ({"same": 10.0}, ["timer", "same"]),  # at one instant the flow's timer goes first
        ({"z-first": 12.0, "a-second": 12.0}, ["timer", "z-first", "a-second"]),  # as they were deferred
    ],
)
async def test_due_timers_and_deferred_events_are_handled_in_due_order(
    deferred: dict[str, float], handled: list[str],
) -> None:
    clock, store, provider = ManualClock(), JsonStore(), RecordingProvider()
    d = Dispatcher(Executor(Engine(TIMED, clock)), None, store.load, store.save)  # providers come per call
    await d.dispatch("s", event("call.received", call_id="c1"), provider=provider)
    start = clock.now()
    for digits, due in deferred.items():
        await d.defer("s", event("dtmf.captured", call_id="c1", digits=digits, event_id=digits), start + due)
    clock.advance(20)
    session = await d.fire_timers("s", provider=provider)
    assert session is not None and session.vars["order"] == handled and session.deferred == {}


async def test_instances_sharing_the_session_locks_take_one_sessions_events_in_turn() -> None:
    store, locks = JsonStore(), SessionLocks()
    instances = [Dispatcher(Executor(Engine(COUNTER, ManualClock())), RecordingProvider(yield_control=True),
                            store.load, store.save, locks=locks) for _ in range(2)]
    await instances[0].dispatch("s", event("call.received", call_id="c"))
    digits = [str(n) for n in range(10)]
    await asyncio.gather(*(instances[n % 2].dispatch("s", event("dtmf.captured", call_id="c", digits=x))
                           for n, x in enumerate(digits)))
    saved = Session.from_json(json.loads(store.docs["s"]))
    assert (saved.vars["count"], saved.vars["order"]) == (10, digits)


async def test_timers_fired_while_a_step_runs_wait_for_it() -> None:
    clock = ManualClock()
    d, store, _ = dispatcher(COUNTER, clock)
    await d.dispatch("s", event("call.received", call_id="c1"))
    await d.defer("s", event("dtmf.captured", call_id="c1", digits="later"), clock.now() + 5)
    clock.advance(10)
    step = asyncio.create_task(d.dispatch("s", event("dtmf.captured", call_id="c1", digits="now")))
    await asyncio.sleep(0)  # the step holds the session and awaits its say
    await d.fire_timers("s")
    await step
    saved = Session.from_json(json.loads(store.docs["s"]))
    assert (saved.vars["count"], saved.vars["order"], saved.deferred) == (2, ["now", "later"], {})


async def test_derived_events_are_handled_in_order_in_one_hold_after_a_step_under_way() -> None:
    store, provider = JsonStore(), RecordingProvider(yield_control=True)  # yields at every command
    d = Dispatcher(Executor(Engine(COUNTER, ManualClock())), None, store.load, store.save)
    await d.dispatch("s", event("call.received", call_id="c1"), provider=provider)
    seen: list[list[str]] = []

    def derive(session: Session) -> list[Event]:  # what the platform showed, found on the session as it is
        seen.append(list(session.vars["order"]))
        return [event("dtmf.captured", call_id="c1", digits=x) for x in ("a", "b")]

    step = asyncio.create_task(d.dispatch("s", event("dtmf.captured", call_id="c1", digits="now"),
                                          provider=provider))
    await asyncio.sleep(0)  # the step holds the session and awaits its say
    handled = await d.dispatch_derived("s", derive, provider=provider)
    await step
    assert seen == [["now"]] and [e.digits for e in handled] == ["a", "b"]
    saved = Session.from_json(json.loads(store.docs["s"]))
    assert (saved.vars["count"], saved.vars["order"]) == (3, ["now", "a", "b"])
    assert [args["text"] for action, args in provider.calls if action == "say"] == ["now", "a", "b"]
    assert await d.dispatch_derived("gone", derive, provider=provider) == [] and "gone" not in store.docs
