"""The running engine against what the internet sends besides the platform: strangers without the
webhook credentials, broken bodies, events it does not know, events for calls it never had, bodies too
large, and the platform delivering one event twice. Each is answered and logged, and none of it
disturbs the call in progress next to it. Plus the service's own endpoints: health, readiness, metrics
and the read API."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flowengine.providers.infobip.auth import sign
from flowengine.scenarios.runner import play
from flowengine.scenarios.stack import Stack, running_stack
from flowengine.server.serving import serving
from flowengine.simulator.infobip.simulator import InfobipSimulator

from .conftest import FLOW, FULL_CALL, Relay, Run, call_in, engine, platform, scenario

CASE = scenario(callee={"answer_after": "3s", "hangup_after": "30s"})
ESTABLISHED_ELSEWHERE = {"type": "CALL_ESTABLISHED", "callId": "never-seen-here", "timestamp":
                         "2026-01-01T00:00:01.000+00:00", "properties": {"call": {"id": "never-seen-here"}}}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def post(http: aiohttp.ClientSession, stack: Stack, body: bytes, **headers: str) -> int:
    async with http.post(f"{stack.engine_url}/webhooks/infobip", data=body,
                         headers={"Content-Type": "application/json", **headers}) as response:
        await response.read()
        return response.status


async def post_signed(http: aiohttp.ClientSession, stack: Stack, body: bytes) -> int:
    """``body`` with the credentials the platform's own webhooks carry (this stack's secret)."""
    async with http.post(f"{stack.engine_url}/webhooks/infobip", data=body,
                         headers=stack.simulator.webhooks.headers_for(body)) as response:
        await response.read()
        return response.status


async def alongside_a_call(stack: Stack, junk: Callable[[], Awaitable[list[int]]]) -> tuple[Run, list[int]]:
    """Play the full call while ``junk()`` runs against the same engine; both results."""
    result, sent = await asyncio.gather(play(stack, CASE), junk())
    assert isinstance(stack.simulator, InfobipSimulator)
    return Run.of(result, stack.simulator), sent


def assert_call_unharmed(run: Run) -> None:
    assert run.failures == []
    # what the engine sent about this call (hang-ups of strangers' orphan calls are not about it)
    assert [line for line in run.wire() if "never-seen-here" not in line] == FULL_CALL
    assert (run.session["state"], run.session["status"]) == ("closing", "ended")
    assert {event["status"] for event in run.webhooks} == {200}


def refusals(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [int(r.getMessage().split()[2]) for r in caplog.records
            if r.name == "flowengine.server" and r.getMessage().startswith("webhook refused:")]


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def metrics_text(http: aiohttp.ClientSession, stack: Stack) -> str:
    async with http.get(f"{stack.engine_url}/metrics", headers=stack.api_headers) as response:
        assert response.status == 200
        return await response.text()


# -- webhook authentication -----------------------------------------------------------------------
async def test_basic_auth_refuses_strangers_and_serves_the_platform(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    event = json.dumps(ESTABLISHED_ELSEWHERE).encode()
    async with running_stack(
        "infobip", FLOW, parties=CASE.parties, settings={"webhook_user": "fe", "webhook_password": "pw"},
        simulator_options={"webhook_headers": {"Authorization": basic("fe", "pw")}},
    ) as stack:
        async def strangers() -> list[int]:
            return [
                await post(http, stack, event),
                await post(http, stack, event, Authorization=basic("fe", "guess")),
                await post(http, stack, event, Authorization=basic("intruder", "pw")),
                await post(http, stack, event, Authorization="Basic !!not-base64!!"),
                await post(http, stack, event, Authorization="App pw"),
            ]

        run, statuses = await alongside_a_call(stack, strangers)
        text = await metrics_text(http, stack)
    assert statuses == [401] * 5
    assert_call_unharmed(run)
    assert refusals(caplog) == [401] * 5
    assert metric(text, "flowengine_webhooks_total", outcome="refused_401") == 5
    assert metric(text, "flowengine_webhooks_total", outcome="handled") > 0


async def test_hmac_refuses_unsigned_and_tampered_bodies(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    secret = "s3cret"
    event = json.dumps(ESTABLISHED_ELSEWHERE).encode()
    unknown = json.dumps({"type": "CALL_SOMETHING_NEW", "callId": "x"}).encode()
    async with running_stack(
        "infobip", FLOW, parties=CASE.parties, settings={"webhook_hmac_secret": secret},
        simulator_options={"webhook_hmac": ("X-Signature", secret)},
    ) as stack:
        async def strangers() -> list[int]:
            return [
                await post(http, stack, event),
                await post(http, stack, event, **{"X-Signature": sign(event, "other-secret")}),
                await post(http, stack, event + b" ", **{"X-Signature": sign(event, secret)}),  # tampered
                await post(http, stack, unknown, **{"X-Signature": "sha256=" + sign(unknown, secret)}),
            ]

        run, statuses = await alongside_a_call(stack, strangers)
    assert statuses == [401, 401, 401, 200]  # a well-signed body passes (its unknown type is ignored)
    assert_call_unharmed(run)
    assert refusals(caplog) == [401] * 3


# -- bodies the engine cannot use -------------------------------------------------------------------
JUNK: list[tuple[str, bytes, int]] = [
    ("malformed JSON", b'{"type": "CALL_ESTABLISHED", ', 400),
    ("not JSON at all", b"\xff\xfe binary", 400),
    ("no type", json.dumps({"callId": "x", "properties": {}}).encode(), 400),
    ("not an object", b"[1, 2]", 400),
    ("unknown event type", json.dumps({"type": "CALL_TELEPORTED", "callId": "x"}).encode(), 200),
    ("event without a handler", json.dumps({"type": "CALL_RINGING", "callId": "x"}).encode(), 200),
    # a live call no session owns: answered 200 and hung up (the platform does not know it either here)
    ("unknown call id", json.dumps(ESTABLISHED_ELSEWHERE).encode(), 200),
    ("oversized", b'{"type": "CALL_FINISHED", "pad": "' + b"x" * 300_000 + b'"}', 413),
]


async def test_junk_is_answered_and_logged_and_the_call_next_to_it_is_unharmed(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Junk as the platform would sign it (what is unsigned never gets past authentication)."""
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="flowengine.service")  # ignored webhooks are logged at debug
    rounds = 3
    async with running_stack("infobip", FLOW, parties=CASE.parties) as stack:
        async def junk() -> list[int]:
            statuses = []
            for _ in range(rounds):
                for _, body, _ in JUNK:
                    statuses.append(await post_signed(http, stack, body))
                await asyncio.sleep(0.005)  # spread over the call's run
            return statuses

        run, statuses = await alongside_a_call(stack, junk)
        text = await metrics_text(http, stack)
        sessions = await stack.service.store.list_sessions()
    assert statuses == [expected for _, _, expected in JUNK] * rounds
    assert_call_unharmed(run)
    assert [session.id for session in sessions] == [run.session["id"]]  # junk started nothing
    refused = [expected for _, _, expected in JUNK if expected != 200] * rounds
    assert sorted(refusals(caplog)) == sorted(refused)
    ignored = [r for r in caplog.records
               if r.name == "flowengine.service" and "webhook ignored" in r.getMessage()]
    platform_ignored = sum(1 for event in run.webhooks if event["body"]["type"] == "CALL_RINGING")
    assert len(ignored) == 2 * rounds + platform_ignored
    for status in (400, 404, 413):
        assert metric(text, "flowengine_webhooks_total", outcome=f"refused_{status}") == refused.count(status)
    assert metric(text, "flowengine_webhooks_total", outcome="ignored") == len(ignored)
    # The unknown call's webhook is handled once (the orphan hung up); the same bytes again are replays.
    handled = metric(text, "flowengine_webhooks_total", outcome="handled")
    assert handled == len(run.webhooks) - platform_ignored + 1
    assert metric(text, "flowengine_webhooks_total", outcome="replayed") == rounds - 1
    orphans = [r.getMessage() for r in caplog.records if r.name == "flowengine.orphans"]
    assert len(orphans) == 1 and "orphan call" in orphans[0]
    assert metric(text, "flowengine_orphans_hung_up_total", kind="call") == 1
    assert metric(text, "flowengine_events_total", outcome="orphan") == 1


# -- the platform delivering twice ---------------------------------------------------------------------
@pytest.mark.parametrize("together", [False, True], ids=["one-after-the-other", "at-once"])
async def test_a_webhook_delivered_twice_is_acted_on_once(together: bool) -> None:
    twice = {"CALL_RECEIVED", "CALL_ESTABLISHED"}
    relay = Relay(route=lambda _, body: [0, 0] if body["type"] in twice else [0], together=together)
    async with platform(CASE.parties) as side, engine(side, "memory://") as running:
        relay.targets = [running.webhook_url]
        async with serving(relay.app()) as relay_url:
            side.simulator.webhook_url = relay_url
            run = await call_in(side, running.service, CASE)
    assert run.wire() == FULL_CALL  # one answer, one conference, one dial
    assert (run.session["state"], run.session["status"]) == ("closing", "ended")
    # A copy arriving after the first was handled is known store-wide and not let in; one racing the first
    # is let in and recognised by the session (whose lock lets one copy in at a time).
    duplicates = [step["event"] for step in run.session["trace"] if step["note"] == "duplicate"]
    registry = running.service.metrics.registry
    replayed = [name for name in ("call.received", "call.answered")
                for _ in range(int(registry.get_sample_value(
                    "flowengine_events_total", {"event": name, "outcome": "replayed"}) or 0))]
    assert sorted(duplicates + replayed) == ["call.answered", "call.answered", "call.received"]
    if not together:
        assert duplicates == []
    assert [kind for kind, _, _ in relay.delivered].count("CALL_ESTABLISHED") == 4
    assert {status for _, _, status in relay.delivered} == {200}


# -- the service's own endpoints ------------------------------------------------------------------------
async def test_health_metrics_and_the_read_api(http: aiohttp.ClientSession) -> None:
    async with running_stack("infobip", FLOW, parties=CASE.parties) as stack:
        result = await play(stack, CASE)
        base = stack.engine_url
        async with http.get(f"{base}/healthz") as response:
            assert (response.status, await response.json()) == (200, {"status": "ok"})
        async with http.get(f"{base}/readyz") as response:
            ready = await response.json()
            assert response.status == 200
        text = await metrics_text(http, stack)
        async with http.get(f"{base}/api/sessions", headers=stack.api_headers) as response:
            assert response.status == 200
            listed = (await response.json())["sessions"]
        session_id = result.session["id"]
        async with http.get(f"{base}/api/sessions/{session_id}", headers=stack.api_headers) as response:
            assert response.status == 200
            view = await response.json()
        async with http.get(f"{base}/api/sessions/s-nobody", headers=stack.api_headers) as response:
            assert response.status == 404
        async with http.get(f"{base}/api/flows", headers=stack.api_headers) as response:
            assert response.status == 200
            flows = (await response.json())["flows"]
    assert ready == {"status": "ready", "store": True, "flows": ["two-party-conference"]}
    webhooks = len(result.webhooks)
    assert metric(text, "flowengine_webhooks_total", provider="infobip", outcome="handled") + metric(
        text, "flowengine_webhooks_total", provider="infobip", outcome="ignored") == webhooks
    assert metric(text, "flowengine_timers_fired_total", kind="flow") == 0  # the platform drove it all
    assert [(s["id"], s["flow"], s["state"], s["status"]) for s in listed] == [
        (session_id, "two-party-conference", "closing", "ended")
    ]
    assert (view["state"], view["status"]) == ("closing", "ended")
    assert view["vars"]["callee"] == "447415784323" and view["vars"]["hold_music"]
    assert view["trace"] == result.session["trace"] and view["revision"] >= 1
    assert [s["to"] for s in view["trace"] if s["to"] and s["to"] != s["from"]] == [
        "answering", "opening_room", "greeting", "dialing", "connected", "closing"
    ]
    (flow,) = flows
    assert (flow["name"], flow["initial"]) == ("two-party-conference", "answering")
    assert flow["states"]["closing"] == {"final": True, "transitions": []}
    dialing = flow["states"]["dialing"]["transitions"]
    assert {"event": "after 75s", "target": "callee_unavailable", "when": None} in dialing
    assert {"event": "participant.join_failed", "target": "callee_unavailable", "when": None} in dialing


async def test_readyz_says_503_while_the_store_is_unreachable(http: aiohttp.ClientSession) -> None:
    async with running_stack("infobip", FLOW, store="redis://127.0.0.1:1/0") as stack:
        async with http.get(f"{stack.engine_url}/readyz") as response:
            assert response.status == 503
            assert (await response.json())["store"] is False
        async with http.get(f"{stack.engine_url}/healthz") as response:
            assert response.status == 200  # alive, just not ready


async def test_webhooks_the_store_failed_and_bodies_never_received_are_counted(
    http: aiohttp.ClientSession,
) -> None:
    """``webhooks_total``'s two outcomes no call produces: a store that fails (503, the platform retries)
    and a sender that leaves before its body arrived; /metrics still answers with the store down."""
    async with running_stack("infobip", FLOW, store="redis://127.0.0.1:1/0") as stack:
        body = json.dumps(ESTABLISHED_ELSEWHERE).encode()
        assert await post_signed(http, stack, body) == 503
        host, port = stack.engine_url.removeprefix("http://").split(":")
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST /webhooks/infobip HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n" + body[:10])
        await writer.drain()
        writer.close()  # 990 bytes short: the engine's read of the body fails
        await writer.wait_closed()

        async def counted() -> bool:
            text = await metrics_text(http, stack)
            return metric(text, "flowengine_webhooks_total", outcome="abandoned") == 1

        for _ in range(100):
            if await counted():
                break
            await asyncio.sleep(0.02)
        text = await metrics_text(http, stack)
    assert metric(text, "flowengine_webhooks_total", provider="infobip", outcome="failed_503") == 1
    assert metric(text, "flowengine_webhooks_total", provider="infobip", outcome="abandoned") == 1
    assert metric(text, "flowengine_webhook_seconds_count") == 2
