"""Pacing under the platform's rate limit, end to end: the Infobip simulator caps call creation (429 past
2 a second), and two engine instances sharing the real Redis dial ten callees between them. Paced, the
combined rate holds and the platform refuses nothing; unpaced, it refuses. A paced dial is written ahead
before it waits: an instance that loses its session while waiting stops before dialling, and the call is
placed once. Virtual time throughout; the queue and the waits show in /metrics and GET /api/pacing."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from flowengine.config import ServiceConfig
from flowengine.scenarios.stack import provider_settings
from flowengine.server.app import SERVICE, create_app
from flowengine.server.service import Service
from flowengine.server.serving import serving
from flowengine.simulator.faults import Faults
from flowengine.simulator.parties import PartyBook, PartyScript
from flowengine.stores.base import Pace
from flowengine.testing import wipe_redis

from .conftest import Platform, Relay, platform, until

REDIS = "redis://127.0.0.1:6379/14"
CALLEE = "447415784323"
FLOW = """\
flow: paced-dial
version: 1
initial: answering
states:
  answering:
    entry: [{answer: {call: caller}}]
    on: {call.answered: dialing}
    after: {30s: done}
  dialing:
    entry: [{dial: {to: "447415784323", as: callee, timeout: 30s}}]
    on:
      call.answered: {target: talking, when: "event.call == 'callee'"}
      call.failed: done
      action.failed: refused
    after: {2m: done}
  talking:
    entry: [{hangup: {call: callee}}, {hangup: {call: caller}}]
    type: final
  refused:
    entry: [{hangup: {call: caller}}]
    type: final
  done:
    entry: [{hangup: {call: caller}}]
    type: final
"""
PACE = {"rate": 2, "burst": 1, "max_wait": 20}
CREATE = "POST /calls/1/calls"


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    prefix = f"fe-pacing-{uuid.uuid4().hex[:12]}:"
    yield f"{REDIS}?prefix={prefix}"
    await wipe_redis(REDIS, prefix)


@asynccontextmanager
async def engine(side: Platform, flow: Path, store: str, pacing: dict[str, Any] | None,
                 timer_poll: float | None = None) -> AsyncIterator[tuple[Service, str]]:
    config = ServiceConfig(provider="infobip", port=0, store=store, default_flow=flow,
                           provider_settings=provider_settings(side.simulator, side.url),
                           api_tokens=("pacing-test-token-0123456789",),
                           pacing={"infobip": pacing} if pacing else {})
    app = create_app(config, clock=side.clock, timer_poll=timer_poll)
    async with serving(app) as url:
        yield app[SERVICE], url


def by_call(owner: dict[str, int]) -> Any:
    """Each call's webhooks to one engine: the callers' as placed, every other call's by its id's hash."""
    def route(_: int, body: dict[str, Any]) -> list[int]:
        call_id = str(body.get("callId") or "")
        return [owner.get(call_id, int(hashlib.sha256(call_id.encode()).hexdigest(), 16) % 2)]
    return route


@dataclass
class Outcome:
    creations: list[tuple[float, int]]  # (virtual time, status) of each call creation the platform saw
    views: list[dict[str, Any]]  # each engine's GET /api/pacing entry for infobip
    waits_observed: float  # pacing waits in the engines' metrics, together
    states: list[str]  # the sessions' final states


async def dial_ten(tmp_path: Path, store: str, pacing: dict[str, Any] | None) -> Outcome:
    """Ten inbound calls at once, five through each of two engines; each flow dials the callee."""
    flow = tmp_path / "paced.yaml"
    flow.write_text(FLOW)
    parties = PartyBook({CALLEE: PartyScript(answer_after=1.0)})
    owner: dict[str, int] = {}
    relay = Relay(route=by_call(owner))
    async with AsyncExitStack() as stack:
        side = await stack.enter_async_context(platform(parties))
        side.simulator.faults = Faults(create_rate=2, create_burst=1, retry_after=1)
        services = []
        for _ in range(2):
            service, url = await stack.enter_async_context(engine(side, flow, store, pacing))
            services.append(service)
            relay.targets.append(f"{url}/webhooks/infobip")
        side.simulator.webhook_url = await stack.enter_async_context(serving(relay.app()))
        with side.clock.busy():  # all ten placed at the same virtual moment
            for n in range(10):
                call_id = await side.simulator.place_inbound_call(f"4470090000{n:02d}", "4592457976")
                owner[call_id] = n % 2

        async def over() -> bool:
            sessions = await services[0].store.list_sessions(limit=50)
            return len(sessions) == 10 and all(r.status != "active" for r in sessions) and all(
                c.ended for c in side.simulator.calls.values())

        await until(over, "every session and call to end")
        await side.clock.settle()
        return Outcome(
            creations(side),
            [(await s.pacer.view())["providers"][0] for s in services if s.pacer.rules],
            sum(s.metrics.registry.get_sample_value("flowengine_pacing_wait_seconds_count",
                                                    {"provider": "infobip"}) or 0 for s in services),
            [r.state for r in await services[0].store.list_sessions(limit=50)],
        )


def creations(side: Platform) -> list[tuple[float, int]]:
    return [(r.at, r.status) for r in side.simulator.requests if f"{r.method} {r.path}" == CREATE]


@pytest.mark.redis
async def test_two_instances_hold_the_combined_rate_and_the_platform_refuses_nothing(
    tmp_path: Path, redis_url: str
) -> None:
    outcome = await dial_ten(tmp_path, redis_url, PACE)
    assert [status for _, status in outcome.creations] == [201] * 10  # not one 429
    times = sorted(at for at, _ in outcome.creations)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.5 - 1e-6  # 2 a second, store-wide: no two instances took the same turn
    assert times[-1] - times[0] == pytest.approx(4.5, abs=0.2)  # ... and no slower than that
    for view in outcome.views:  # both instances dialled, and waited their turns
        assert view["paced"] == 5 and view["wait_seconds_total"] > 0 and view["queue_depth"] == 0
    assert outcome.waits_observed == 10
    assert sorted(outcome.states) == ["talking"] * 10


@pytest.mark.redis
async def test_unpaced_dials_run_into_the_platforms_limit(tmp_path: Path, redis_url: str) -> None:
    outcome = await dial_ten(tmp_path, redis_url, None)
    refused = [at for at, status in outcome.creations if status == 429]
    assert len(refused) >= 5, "without pacing the platform's 429s show"


async def take_over(service: Service, session_id: str) -> None:
    """Finish the session's unfinished plan, as the timer loop of the instance does once it is due."""
    with service.clock.busy():
        await service.dispatcher.finish_pending(session_id, provider=service.adapter.channel(None))


@pytest.mark.redis
async def test_a_paced_dial_is_written_ahead_and_placed_once_when_its_instance_loses_the_session(
    tmp_path: Path, redis_url: str
) -> None:
    """Engine A's dial waits ~10 s for its turn, its outbox saying the dial is next. A's lock on the
    session is lost meanwhile (as a lease running out would) and engine B takes the plan over, writing
    it, and waits for its own turn (~20 s); A, waking at ~10 s, finds the session written since and
    stops before dialling; B, resuming, asks the platform first, and dials."""
    flow = tmp_path / "paced.yaml"
    flow.write_text(FLOW)
    slow = {"rate": 1 / 10, "burst": 1, "max_wait": 25}
    parties = PartyBook({CALLEE: PartyScript(answer_after=1.0)})
    async with platform(parties) as side, \
            engine(side, flow, redis_url, slow, timer_poll=None) as (a, a_url), \
            engine(side, flow, redis_url, slow, timer_poll=1.0) as (b, _):
        side.simulator.webhook_url = f"{a_url}/webhooks/infobip"
        placed_at = side.clock.now()
        await a.store.take_slot("infobip", Pace(10.0, 1, 25.0), placed_at)  # the turn ahead is taken
        call_id = await side.simulator.place_inbound_call("447009000001", "4592457976")
        session_id = a.session_id_for(call_id)

        async def dial_pending() -> bool:
            record = await a.store.get(session_id)
            outbox = record.data.get("outbox") if record is not None else None
            return bool(outbox) and outbox["commands"][outbox["next"]]["action"] == "dial"

        await until(dial_pending, "the dial written ahead")
        with side.clock.busy():
            assert creations(side) == []  # written ahead, waiting its turn: not sent
            assert (await a.pacer.view())["providers"][0]["queue_depth"] == 1
            redis = Redis.from_url(REDIS)
            try:
                prefix = redis_url.split("prefix=", 1)[1]
                assert await redis.delete(f"{prefix}lock:{session_id}") == 1
            finally:
                await redis.aclose()
            side.clock.spawn(take_over(b, session_id))

        async def over() -> bool:
            record = await b.store.get(session_id)
            return record is not None and record.status == "ended" and not side.simulator.live_calls()

        await until(over, "the session to end")
        # Time runs on a while, so a late second dial would show (``settle`` cannot be used: B's timer
        # loop wakes every virtual second, so the clock is never quiet for long, and it raced that).
        await side.clock.run_until(lambda: False, limit=30)
        record = await b.store.get(session_id)
    assert record is not None and record.state == "talking"
    made = creations(side)
    assert len(made) == 1 and made[0][1] == 201  # one dial, though two instances got to it
    # Not at A's turn, ~10 s (A found the session written since and stopped), but at B's, ~20 s.
    assert made[0][0] - placed_at == pytest.approx(20.0, abs=1.0)
    dials = [c for s in record.data["trace"] for c in s["commands"] if c[0] == "dial"]
    assert [c[1] for c in dials] == ["ok"] and "paced: waited" in dials[0][2]


@pytest.mark.redis
async def test_the_api_and_metrics_show_the_queue(tmp_path: Path, redis_url: str) -> None:
    flow = tmp_path / "paced.yaml"
    flow.write_text(FLOW)
    async with platform(PartyBook({CALLEE: PartyScript(answer_after=1.0)})) as side, \
            engine(side, flow, redis_url, {"rate": 0.5, "burst": 2, "max_wait": 3}) as (service, url), \
            aiohttp.ClientSession() as http:
        side.simulator.webhook_url = f"{url}/webhooks/infobip"
        headers = {"Authorization": "Bearer pacing-test-token-0123456789"}
        with side.clock.busy():  # time stands still: four turns taken (0, 0, 2, 4 s), the next is 6 s off
            for _ in range(4):
                await service.store.take_slot("infobip", Pace(2.0, 2, 10.0), side.clock.now())
            async with http.get(f"{url}/api/pacing", headers=headers) as response:
                view = await response.json()
            async with http.get(f"{url}/api/pacing") as refused:
                assert refused.status == 401
        (infobip,) = view["providers"]
        assert infobip["rate"] == 0.5 and infobip["burst"] == 2 and infobip["queued_store_wide"] == 2
        assert infobip["next_slot_in"] == pytest.approx(6.0)
        # A dial now would wait 6 s, past max_wait 3 s: refused, and the flow hears action.failed (429).
        call_id = await side.simulator.place_inbound_call("447009000001", "4592457976")

        async def refused_dial() -> bool:
            record = await service.store.get(service.session_id_for(call_id))
            return record is not None and record.status == "ended"

        await until(refused_dial, "the dial to be refused")
        record = await service.store.get(service.session_id_for(call_id))
        async with http.get(f"{url}/metrics", headers=headers) as response:
            metrics = await response.text()
    assert record is not None and record.state == "refused"
    errors = [c[2] for s in record.data["trace"] for c in s["commands"] if c[:2] == ["dial", "error"]]
    assert "would wait more than max_wait (3 s)" in errors[0]
    assert 'flowengine_pacing_refused_total{provider="infobip"} 1.0' in metrics
    assert 'flowengine_pacing_queue_depth{provider="infobip"} 0.0' in metrics
    assert creations(side) == []
