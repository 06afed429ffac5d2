"""How the simulators deliver webhooks: in order per lane and concurrently across lanes, redelivery with
backoff (or none), seeded duplicates and reordering, the ``/_simulator/delivery`` control route and the
scaled clock. Every webhook goes over real HTTP to a receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from flowengine.providers.sinch import signing
from flowengine.runtime.clock import VIRTUAL_EPOCH, Clock, SystemClock, VirtualClock
from flowengine.server.serving import serving
from flowengine.simulator import DeliveryPolicy, InfobipSimulator, ScaledClock, SinchSimulator
from flowengine.simulator.delivery import DeliveredEvent, WebhookSender
from flowengine.simulator.testing import Received, WebhookRecorder, harness

GUARD = 10.0  # real seconds before a wait gives up: a broken sender fails the test, never hangs it
Responder = Callable[[Received], Awaitable[tuple[int, Any]]]


async def _ok(_: Received) -> tuple[int, Any]:
    return 200, None


@asynccontextmanager
async def sender(
    clock: Clock, responder: Responder = _ok, *, delay: float = 0.05, policy: DeliveryPolicy | None = None
) -> AsyncIterator[tuple[WebhookSender, WebhookRecorder]]:
    """A sender posting to a real receiver on 127.0.0.1."""
    hook = WebhookRecorder(responder)
    async with serving(hook.app) as url:
        webhooks = WebhookSender(clock, url + "/hook", delay=delay, policy=policy)
        try:
            yield webhooks, hook
        finally:
            await webhooks.close()


def names(hook: WebhookRecorder) -> list[str]:
    return [r.body["n"] for r in hook.received]


async def settle(futures: list[asyncio.Future[DeliveredEvent]]) -> list[DeliveredEvent]:
    return list(await asyncio.wait_for(asyncio.gather(*futures), GUARD))


async def drain(webhooks: WebhookSender) -> None:
    """Until nothing is left to deliver (a webhook's future resolves with its first copy)."""

    async def empty() -> None:
        while webhooks.pending:
            await asyncio.sleep(0.005)

    await asyncio.wait_for(empty(), GUARD)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- lanes --------------------------------------------------------------------------------------------
async def test_a_slow_lane_does_not_hold_up_another_and_each_keeps_its_order() -> None:
    b_done = asyncio.Event()

    async def slow_a1(got: Received) -> tuple[int, Any]:
        if got.body["n"] == "a1":
            # Held until lane B is through: with one queue for everything this would never end.
            await asyncio.wait_for(b_done.wait(), GUARD)
        if got.body["n"] == "b3":
            b_done.set()
        return 200, None

    async with sender(SystemClock(), slow_a1, delay=0.0) as (webhooks, hook):
        sent = [webhooks.send({"n": f"a{i}"}, lane="A") for i in (1, 2, 3)]
        sent += [webhooks.send({"n": f"b{i}"}, lane="B") for i in (1, 2, 3)]
        delivered = await settle(sent)
    assert all(d["status"] == 200 for d in delivered)
    order = names(hook)
    assert order[:4] == ["a1", "b1", "b2", "b3"]  # a1 arrived first, and b went by while it was held
    assert order[4:] == ["a2", "a3"]  # lane A kept its order behind its slow head


async def test_merged_lanes_deliver_what_the_absorbed_lane_held_first() -> None:
    log: list[str] = []

    async def record(got: Received) -> tuple[int, Any]:
        log.append(f"{got.body['n']} start")
        if got.body["n"] == "call-1":
            await asyncio.sleep(0.05)  # widens the window a broken barrier would let conf-1 through
        log.append(f"{got.body['n']} end")
        return 200, None

    async with sender(SystemClock(), record, delay=0.0) as (webhooks, _):
        first = webhooks.send({"n": "call-1"}, lane="call")
        webhooks.link("call", into="conference")  # the call joins the conference
        after = webhooks.send({"n": "conf-1"}, lane="conference")
        await settle([first, after])
        assert webhooks.lane("call") == webhooks.lane("conference") == "conference"
    assert log == ["call-1 start", "call-1 end", "conf-1 start", "conf-1 end"]


async def test_max_in_flight_bounds_concurrent_posts() -> None:
    in_flight, peak = 0, 0

    async def count(_: Received) -> tuple[int, Any]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return 200, None

    policy = DeliveryPolicy(max_in_flight=3)
    async with sender(SystemClock(), count, delay=0.0, policy=policy) as (webhooks, hook):
        await settle([webhooks.send({"n": i}, lane=f"call-{i}") for i in range(12)])
    assert len(hook.received) == 12 and peak == 3


async def test_infobip_calls_share_a_lane_once_in_one_conference() -> None:
    def make(clock: VirtualClock, url: str) -> InfobipSimulator:
        return InfobipSimulator(clock, webhook_url=url, api_key="secret")

    async with harness(make, headers={"Authorization": "App secret"}) as h:
        caller = await h.sim.place_inbound_call(from_="447415784323", to="4592")
        other = await h.sim.place_inbound_call(from_="447415784399", to="4592")
        await h.wait_events("CALL_RECEIVED")
        assert h.sim.webhooks.lane(caller) != h.sim.webhooks.lane(other)
        await h.client.request("POST", f"/calls/1/calls/{caller}/answer", {})
        status, room = await h.client.request("POST", "/calls/1/conferences", {"callsConfigurationId": "c"})
        assert status == 201, room
        await h.client.request("PUT", f"/calls/1/conferences/{room['id']}/call/{caller}", {})
        dial = {"callRequest": {"endpoint": {"type": "PHONE", "phoneNumber": "447000"}, "from": "4592"}}
        status, dialled = await h.client.request("POST", f"/calls/1/conferences/{room['id']}/call", dial)
        assert status == 200, dialled
        lanes = {h.sim.webhooks.lane(key) for key in (caller, room["id"], dialled["call"]["id"])}
        assert len(lanes) == 1 and h.sim.webhooks.lane(other) not in lanes


async def test_sinch_callout_into_a_conference_is_in_the_conference_lane() -> None:
    async def ice(_: Received) -> tuple[int, Any]:
        return 200, {"instructions": [], "action": {"name": "connectConf", "conferenceId": "room"}}

    def make(clock: VirtualClock, url: str) -> SinchSimulator:
        return SinchSimulator(clock, callback_url=url)

    async with harness(make, responder=ice) as h:
        caller = await h.sim.place_inbound_call("+4411", "+4592")
        await h.until(lambda: "room" in h.sim.conferences)
        callout = {"method": "conferenceCallout", "conferenceCallout": {
            "conferenceId": "room", "destination": {"type": "number", "endpoint": "+4477"}}}
        headers = {"Authorization": signing.basic_header(h.sim.application_key, h.sim.application_secret)}
        status, placed = await h.client.request("POST", "/calling/v1/callouts", callout, headers=headers)
        assert status == 200, placed
        assert h.sim.webhooks.lane(placed["callId"]) == h.sim.webhooks.lane(caller)


# -- redelivery ---------------------------------------------------------------------------------------
async def test_retry_redelivers_after_500_with_backoff_and_the_lane_waits(clock: VirtualClock) -> None:
    failures = {"a1": 2}

    async def flaky(got: Received) -> tuple[int, Any]:
        n = got.body["n"]
        if failures.get(n, 0) > 0:
            failures[n] -= 1
            return 500, {"error": "try later"}
        return 200, None

    policy = DeliveryPolicy(redelivery="retry", attempts=4, initial_delay=1.0, factor=3.0, max_delay=5.0)
    async with sender(clock, flaky, policy=policy) as (webhooks, hook):
        start = clock.now()
        sent = [webhooks.send({"n": "a1"}, lane="A"), webhooks.send({"n": "a2"}, lane="A")]
        sent.append(webhooks.send({"n": "b1"}, lane="B"))
        results = await settle(sent)
        events = [
            (e["body"]["n"], e["attempt"], e["status"], round(e["at"] - start, 3)) for e in webhooks.events
        ]
    assert events == [
        ("a1", 1, 500, 0.05),
        ("b1", 1, 200, 0.05),  # lane B is not held up by lane A's retries
        ("a1", 2, 500, 1.05),  # backoff 1 s
        ("a1", 3, 200, 4.05),  # then 1 * 3
        ("a2", 1, 200, 4.05),  # a2 waited for its lane's head
    ]
    assert [r["status"] for r in results] == [200, 200, 200]
    assert [n for n in names(hook) if n.startswith("a")] == ["a1", "a1", "a1", "a2"]


async def test_retry_redelivers_to_an_unreachable_app_then_gives_up(clock: VirtualClock) -> None:
    policy = DeliveryPolicy(redelivery="retry", attempts=3, initial_delay=2.0, factor=2.0, max_delay=3.0)
    webhooks = WebhookSender(clock, f"http://127.0.0.1:{free_port()}/hook", policy=policy)
    try:
        start = clock.now()
        last = (await settle([webhooks.send({"n": 1}, lane="A")]))[0]
        events = [(e["attempt"], e["status"], round(e["at"] - start, 3)) for e in webhooks.events]
    finally:
        await webhooks.close()
    assert events == [
        (1, None, 0.05),
        (2, None, 2.05),
        (3, None, 5.05),  # the second wait would be 4 s, capped at max_delay 3 s
    ]
    assert last["status"] is None and last["error"] and last["attempt"] == 3


async def test_retry_redelivers_a_webhook_the_app_does_not_answer_in_time(clock: VirtualClock) -> None:
    stuck, release = False, asyncio.Event()

    async def stuck_once(got: Received) -> tuple[int, Any]:
        nonlocal stuck
        if not stuck:
            stuck = True
            await asyncio.wait_for(release.wait(), GUARD)  # no answer within the 0.2 s timeout
        return 200, None

    policy = DeliveryPolicy(redelivery="retry", attempts=2, initial_delay=1.0, timeout=0.2)
    async with sender(clock, stuck_once, policy=policy) as (webhooks, _):
        await settle([webhooks.send({"n": 1}, lane="A")])
        events = [(e["attempt"], e["status"], e["error"]) for e in webhooks.events]
        release.set()  # lets the first, abandoned request end before the receiver stops
    assert events == [(1, None, "no answer within 0.2 s"), (2, 200, None)]


async def test_off_never_redelivers(clock: VirtualClock) -> None:
    async def fail(_: Received) -> tuple[int, Any]:
        return 503, None

    async with sender(clock, fail) as (webhooks, hook):
        results = await settle([webhooks.send({"n": i}, lane="A") for i in range(3)])
        await clock.sleep(120)  # long past any backoff: nothing more comes
        attempts = [e["attempt"] for e in webhooks.events]
    assert [r["status"] for r in results] == [503, 503, 503]
    assert names(hook) == [0, 1, 2] and attempts == [1, 1, 1]


async def test_sinch_ice_is_not_redelivered_but_dice_is(clock: VirtualClock) -> None:
    async def refuse(_: Received) -> tuple[int, Any]:
        return 500, None

    policy = DeliveryPolicy(redelivery="retry", attempts=3, initial_delay=1.0)
    hook = WebhookRecorder(refuse)
    async with serving(hook.app) as url:
        sim = SinchSimulator(clock, callback_url=url + "/cb", delivery=policy)
        try:
            await sim.place_inbound_call("+4411", "+4592")
            await clock.run_until(lambda: len(sim.events) >= 4, limit=60, real_timeout=GUARD)
            await clock.sleep(60)  # nothing more comes
            events = [(e["body"]["event"], e["attempt"]) for e in sim.events]
            reason = sim.events[1]["body"]["reason"]
        finally:
            await sim.close()
    # The ICE got no SVAML: the call is dropped at once (as Sinch does), and its DiCE is redelivered.
    assert events == [("ice", 1), ("dice", 1), ("dice", 2), ("dice", 3)]
    assert reason == "CALLBACKERROR"


# -- faults -------------------------------------------------------------------------------------------
async def test_duplicates_and_reordering_follow_the_seed(clock: VirtualClock) -> None:
    # One POST at a time: held-back webhooks fall due together, and only then is their order fixed too.
    policy = DeliveryPolicy(duplicate_rate=0.3, reorder_rate=0.3, reorder_delay=1.0, seed=7, max_in_flight=1)
    async with sender(clock, policy=policy) as (webhooks, hook):
        start = clock.now()
        await settle([webhooks.send({"n": i}, lane="A") for i in range(10)])
        await drain(webhooks)
        at = {(e["body"]["n"], round(e["at"] - start, 3)) for e in webhooks.events}
    # Seed 7: 0, 1, 5 and 7 are held back a second (the rest of the lane overtakes them); 3, 4, 5 and 7
    # arrive twice, each copy right after the first.
    assert names(hook) == [2, 3, 3, 4, 4, 6, 8, 9, 0, 1, 5, 7, 5, 7]
    assert at == {(n, 1.05 if n in (0, 1, 5, 7) else 0.05) for n in range(10)}


async def test_fault_rates_hold_over_many_webhooks(clock: VirtualClock) -> None:
    policy = DeliveryPolicy(duplicate_rate=0.1, reorder_rate=0.2, reorder_delay=0.5, seed=3)
    async with sender(clock, policy=policy) as (webhooks, hook):
        await settle([webhooks.send({"n": i}, lane=f"call-{i % 8}") for i in range(300)])
        await drain(webhooks)
    got = names(hook)
    duplicated = len(got) - 300
    # A webhook of a lane that arrives after a later one of the same lane was overtaken.
    overtaken = {n for i, n in enumerate(got) if any(m > n and m % 8 == n % 8 for m in got[:i])}
    assert sorted(set(got)) == list(range(300))
    # Exact for seed 3: 27 duplicated (9 %); 61 held back (20.3 %), of which 58 had a later webhook of
    # their lane to overtake them.
    assert (duplicated, len(overtaken)) == (27, 58)


# -- control route and policy validation ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"attempts": 0}, "delivery: attempts must be at least 1"),
        ({"redelivery": "sometimes"}, "delivery: redelivery must be off or retry"),
        ({"duplicate_rate": "high"}, "delivery: duplicate_rate must be a number, got 'high'"),
        ({"duplicate_rate": 1.5}, "delivery: duplicate_rate must be between 0 and 1"),
        ({"max_in_flight": True}, "delivery: max_in_flight must be an integer, got True"),
        ({"factor": 0.5}, "delivery: factor must be at least 1"),
        ({"timeout": 0}, "delivery: timeout must be > 0"),
        ({"initial_delay": -1}, "delivery: delays must be >= 0"),
    ],
)
async def test_delivery_route_refuses_bad_values_with_a_reason(body: dict[str, Any], reason: str) -> None:
    def make(clock: VirtualClock, url: str) -> InfobipSimulator:
        return InfobipSimulator(clock, webhook_url=url)

    async with harness(make) as h:
        assert await h.client.request("PUT", "/_simulator/delivery", body) == (400, {"error": reason})
        assert h.sim.webhooks.policy == DeliveryPolicy()


async def test_delivery_route_reads_and_replaces_the_policy() -> None:
    def make(clock: VirtualClock, url: str) -> SinchSimulator:
        return SinchSimulator(clock, callback_url=url)

    async with harness(make) as h:
        assert await h.client.request("GET", "/_simulator/delivery") == (200, DeliveryPolicy().to_dict())
        chosen = {"redelivery": "retry", "seed": 4}
        status, set_ = await h.client.request("PUT", "/_simulator/delivery", chosen)
        assert status == 200 and set_ == {**DeliveryPolicy().to_dict(), **chosen}
        assert h.sim.webhooks.policy.tries == 5
        status, problem = await h.client.request("PUT", "/_simulator/delivery", {"retries": 3})
        assert status == 400 and problem["error"].startswith("delivery: unknown key(s) ['retries']")
        status, problem = await h.client.request("PUT", "/_simulator/delivery", raw=b"[1")
        assert status == 400 and "expected a JSON object" in problem["error"]


# -- the scaled clock ---------------------------------------------------------------------------------
async def test_scaled_clock_runs_n_times_faster() -> None:
    clock = ScaledClock(1000.0, start=VIRTUAL_EPOCH)
    await clock.sleep(30)  # 30 ms of real time
    assert clock.now() >= VIRTUAL_EPOCH + 30
    with pytest.raises(ValueError, match="speed must be > 0"):
        ScaledClock(0)
