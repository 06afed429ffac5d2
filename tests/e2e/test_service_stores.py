"""The service on its real stores: the seed scenario end to end on a SQLite file and on Redis, an engine
replaced mid-dial (its durable timer and the session carry over through the SQLite file), and two engine
instances sharing one Redis, taking turns or both getting every webhook."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from flowengine.scenarios.model import Scenario
from flowengine.server.service import Service
from flowengine.server.serving import serving
from flowengine.stores.base import open_store

from .conftest import (
    CALLER,
    CALLER_ID,
    FULL_CALL,
    REDIS,
    Relay,
    Run,
    call_in,
    engine,
    platform,
    run_seed,
    scenario,
    until_over,
    until_state,
)

TALK = scenario(callee={"answer_after": "3s", "hangup_after": "30s"})
NO_ANSWER = scenario(callee={"answer_after": None})
CONNECTED = ["answering", "opening_room", "greeting", "dialing", "connected", "closing"]
APOLOGISED = ["answering", "opening_room", "greeting", "dialing", "callee_unavailable", "closing"]
DIAL = FULL_CALL.index("POST /calls/1/conferences/{room}/call")


def sample(service: Service, name: str, **labels: str) -> float:
    wanted = {"provider": "infobip", **labels} if "outcome" in labels else labels
    value = service.metrics.registry.get_sample_value(name, wanted)
    return value or 0.0


async def test_seed_scenario_on_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "fe.db"
    run = await run_seed(TALK, store=f"sqlite:///{path}")
    assert run.failures == [] and run.wire() == FULL_CALL and run.entered() == CONNECTED
    # The file outlives the service: another process opening it finds the finished session.
    store = open_store(f"sqlite:///{path}")
    try:
        record = await store.get(run.session["id"])
        assert record is not None and (record.state, record.status) == ("closing", "ended")
        assert record.data["trace"] == run.session["trace"]
        assert await store.session_for_call(run.session["calls"]["callee"]) == run.session["id"]
        assert await store.session_for_conference(run.session["conferences"]["room"]) == run.session["id"]
        assert await store.next_due() is None  # no timer left behind
    finally:
        await store.close()


@pytest.mark.redis
async def test_seed_scenario_on_redis(redis_prefix: str) -> None:
    url = f"{REDIS}?prefix={redis_prefix}"
    run = await run_seed(TALK, store=url)
    assert run.failures == [] and run.wire() == FULL_CALL and run.entered() == CONNECTED
    store = open_store(url)
    client = Redis.from_url(REDIS)
    try:
        record = await store.get(run.session["id"])
        assert record is not None and (record.state, record.status) == ("closing", "ended")
        assert await store.session_for_call(run.session["calls"]["caller"]) == run.session["id"]
        assert await store.next_due() is None
        keys = [key async for key in client.scan_iter(match=redis_prefix + "*")]
        assert keys and all(key.decode().startswith(redis_prefix) for key in keys)
    finally:
        await store.close()
        await client.aclose()


# -- an engine replaced mid-dial ---------------------------------------------------------------------------
async def replace_engine_mid_dial(tmp_path: Path, route: Any) -> tuple[Run, Relay, list[Service]]:
    """Engine A takes the call up to dialing; then, with virtual time standing still, A is stopped and a
    new engine B on the same SQLite file takes its place behind the relay. Returns the run, the relay
    and both engines' services."""
    store = f"sqlite:///{tmp_path / 'fe.db'}"
    relay = Relay(route=route)
    async with AsyncExitStack() as outer:
        side = await outer.enter_async_context(platform(NO_ANSWER.parties))
        relay_url = await outer.enter_async_context(serving(relay.app()))
        side.simulator.webhook_url = relay_url
        first = AsyncExitStack()
        outer.push_async_callback(first.aclose)  # if anything below fails
        a = await first.enter_async_context(engine(side, store))
        relay.targets = [a.webhook_url]
        started_at = side.clock.now()
        call_id = await side.simulator.place_inbound_call(CALLER, CALLER_ID, NO_ANSWER.caller)
        session_id = a.service.session_id_for(call_id)
        await until_state(a.service, session_id, "dialing")
        with side.clock.busy():  # no event, no timer and no party moves while the engine is swapped
            await first.aclose()
            b = await outer.enter_async_context(engine(side, store))
            relay.targets = [b.webhook_url]
        record = await until_over(b.service, side, session_id)
        return Run.observed(side, record, started_at), relay, [a.service, b.service]


async def test_a_restarted_engine_takes_the_no_answer_outcome(tmp_path: Path) -> None:
    run, _, (a, b) = await replace_engine_mid_dial(tmp_path, lambda _, __: [0])
    assert run.wire() == FULL_CALL and run.entered() == APOLOGISED
    # B asked the platform at start-up about every call and conference the session believed live
    assert sorted(run.reads()) == ["GET /calls/1/calls/{callee}", "GET /calls/1/calls/{caller}",
                                   "GET /calls/1/conferences/{room}"]
    assert ("call.failed", "dialing", "callee_unavailable") in run.steps()
    assert (run.session["state"], run.session["status"]) == ("closing", "ended")
    assert run.call("callee") == ("NO_ANSWER", "NO_ANSWER", "PLATFORM")
    assert run.call("caller") == ("FINISHED", "NORMAL_HANGUP", "API")
    assert run.at(DIAL + 1) - run.at(DIAL) >= 60.0
    # A took the six events up to the greeting's end (CALL_RECEIVED ... SAY_FINISHED), B all the rest.
    assert run.webhook_types()[5] == "SAY_FINISHED"
    assert sample(a, "flowengine_webhooks_total", outcome="handled") == 6
    handled_by_b = sample(b, "flowengine_webhooks_total", outcome="handled")
    ignored_by_b = sample(b, "flowengine_webhooks_total", outcome="ignored")
    assert 6 + handled_by_b + ignored_by_b == len(run.webhooks)
    assert sample(b, "flowengine_timers_fired_total", kind="flow") == 0


async def test_a_restarted_engine_fires_the_durable_safety_net_timer(tmp_path: Path) -> None:
    """The callee's failure events never arrive (lost between platform and engine); the 75 s timer the
    first engine armed in the SQLite file fires on the second one and ends the wait."""
    lost = {"CALL_FAILED", "PARTICIPANT_JOIN_FAILED"}
    run, relay, (a, b) = await replace_engine_mid_dial(
        tmp_path, lambda _, body: [] if body["type"] in lost else [0]
    )
    assert relay.lost == ["CALL_FAILED", "PARTICIPANT_JOIN_FAILED"]
    assert run.entered() == APOLOGISED
    (fired,) = [s for s in run.session["trace"] if s["event"].startswith("after:")]
    assert fired["event"] == "after:dialing:75s"
    assert (fired["from"], fired["to"]) == ("dialing", "callee_unavailable")
    dialled = run.started_at + run.at(DIAL)
    assert fired["at"] - dialled == pytest.approx(75.0, abs=0.01)  # the flow's `after: 75s`, in virtual time
    assert run.wire() == FULL_CALL
    assert (run.session["state"], run.session["status"]) == ("closing", "ended")
    assert run.call("callee") == ("NO_ANSWER", "NO_ANSWER", "PLATFORM")
    assert sample(b, "flowengine_timers_fired_total", kind="flow") == 1
    assert sample(a, "flowengine_timers_fired_total", kind="flow") == 0


async def down_while(tmp_path: Path, talk: Scenario, state: str) -> tuple[Run, Relay, Service]:
    """Engine A takes the call to ``state`` and goes down; every webhook the platform sends until a
    CALL_FINISHED is lost (no redelivery); then engine B starts on the same SQLite file and the run
    goes on to its end. Returns the run, the relay (what it lost) and B's service."""
    store = f"sqlite:///{tmp_path / 'fe.db'}"
    relay = Relay()
    async with AsyncExitStack() as outer:
        side = await outer.enter_async_context(platform(talk.parties))
        side.simulator.webhook_url = await outer.enter_async_context(serving(relay.app()))
        first = AsyncExitStack()
        outer.push_async_callback(first.aclose)
        a = await first.enter_async_context(engine(side, store))
        relay.targets = [a.webhook_url]
        started_at = side.clock.now()
        call_id = await side.simulator.place_inbound_call(CALLER, CALLER_ID, talk.caller)
        session_id = a.service.session_id_for(call_id)
        await until_state(a.service, session_id, state)
        with side.clock.busy():
            await first.aclose()
            relay.route = lambda _, __: []  # down: whatever the platform sends now is lost
        await side.clock.run_until(lambda: "CALL_FINISHED" in relay.lost, limit=60)
        with side.clock.busy():
            b = await outer.enter_async_context(engine(side, store))
            relay.targets, relay.route = [b.webhook_url], lambda _, __: [0]
        record = await until_over(b.service, side, session_id)
        return Run.observed(side, record, started_at), relay, b.service


def reconciled(service: Service, event: str) -> float | None:
    return service.metrics.registry.get_sample_value("flowengine_reconciled_events_total", {"event": event})


async def test_a_hang_up_lost_while_the_engine_was_down_is_recovered_at_start_up(tmp_path: Path) -> None:
    """Engine A connects the two parties and goes down; the caller hangs up while nobody listens (the
    webhooks are lost, the platform does not redeliver). Engine B starts on the same SQLite file, asks
    the platform about the live session's calls and conference, and ends the call as the flow says: the
    callee is not left alone in the room."""
    talk = scenario(caller={"hangup_after": "20s"}, callee={"answer_after": "3s"})
    run, relay, b = await down_while(tmp_path, talk, "connected")
    assert "CALL_FINISHED" in relay.lost
    assert run.entered() == CONNECTED
    assert (run.session["state"], run.session["status"]) == ("closing", "ended")
    assert ("call.finished", "connected", "closing") in run.steps()
    assert run.call("caller") == ("FINISHED", "NORMAL_HANGUP", "ENDPOINT")
    assert run.call("callee") == ("FINISHED", "NORMAL_HANGUP", "API")  # the flow's conference hang-up
    assert run.room()[0] is True
    assert reconciled(b, "call.finished") == 1
    assert run.wire()[-1] == "POST /calls/1/conferences/{room}/hangup"


async def test_a_whole_answer_lost_while_down_is_read_from_the_call_logs(tmp_path: Path) -> None:
    """Down while the callee rang: it answered, joined the room and hung up, every webhook lost. GET
    answers 404 for an ended call; the call history says it was answered and in the room, so the flow
    is told all of it in order and ends the call the way it ends a finished conversation."""
    talk = scenario(callee={"answer_after": "3s", "hangup_after": "5s"})
    run, relay, b = await down_while(tmp_path, talk, "dialing")
    assert {"CALL_ESTABLISHED", "PARTICIPANT_JOINED", "CALL_FINISHED"} <= set(relay.lost)
    assert run.entered() == CONNECTED
    assert ("participant.joined", "dialing", "connected") in run.steps()
    assert (run.session["state"], run.session["status"]) == ("closing", "ended")
    for name in ("call.answered", "participant.joined", "call.finished"):
        assert reconciled(b, name) == 1


# -- two engines, one Redis ---------------------------------------------------------------------------------
def alternate(index: int, _: dict[str, Any]) -> Sequence[int]:
    return [index % 2]


def both(_: int, __: dict[str, Any]) -> Sequence[int]:
    return [0, 1]


@pytest.mark.redis
@pytest.mark.parametrize(
    "route, together", [(alternate, False), (both, True)], ids=["taking-turns", "both-at-once"]
)
async def test_two_engines_sharing_redis_handle_one_call(
    redis_prefix: str, route: Any, together: bool
) -> None:
    url = f"{REDIS}?prefix={redis_prefix}"
    relay = Relay(route=route, together=together)
    async with platform(TALK.parties) as side, engine(side, url) as a, engine(side, url) as b:
        relay.targets = [a.webhook_url, b.webhook_url]
        async with serving(relay.app()) as relay_url:
            side.simulator.webhook_url = relay_url
            run = await call_in(side, a.service, TALK)
    assert run.wire() == FULL_CALL and run.entered() == CONNECTED  # every command sent once
    assert (run.session["state"], run.session["status"]) == ("closing", "ended")
    assert run.call("callee") == ("FINISHED", "NORMAL_HANGUP", "ENDPOINT")
    assert {status for _, _, status in relay.delivered} == {200}
    engines = [index for _, index, _ in relay.delivered]
    assert engines.count(0) > 0 and engines.count(1) > 0
    duplicates = [s["event"] for s in run.session["trace"] if s["note"] == "duplicate"]
    if route is both:  # each event reached both instances: the second was recognised and dropped
        handled = len([e for e in run.webhooks if e["body"]["type"] != "CALL_RINGING"])
        assert len(duplicates) == handled
    else:
        assert duplicates == []
