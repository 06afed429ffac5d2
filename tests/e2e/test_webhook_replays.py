"""Forged, stale and replayed webhooks on both platforms, against two engine instances sharing one Redis
(db 14, a key prefix of the test's own): a webhook instance A took, sent again to instance B (or to A),
is answered 200 and not acted on, also when the session's own short memory has long let it go; a forged
one is refused (401), and so is a well-signed one whose timestamp is older than the window (5 min)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from flowengine.config import ServiceConfig
from flowengine.providers.base import WebhookRequest
from flowengine.providers.infobip.auth import sign
from flowengine.providers.sinch import signing
from flowengine.runtime.clock import Clock
from flowengine.scenarios.runner import play
from flowengine.scenarios.stack import provider_settings, running_stack
from flowengine.server.app import CONFIG, SERVICE, create_app
from flowengine.server.service import Service
from flowengine.server.serving import serving
from flowengine.simulator.infobip import events as infobip_events
from flowengine.simulator.infobip.simulator import InfobipSimulator
from flowengine.simulator.parties import PartyScript
from flowengine.simulator.sinch.model import iso as sinch_iso
from flowengine.simulator.sinch.simulator import SinchSimulator
from flowengine.testing import wipe_redis

from .conftest import FLOW, platform, scenario, until_state

pytestmark = pytest.mark.redis

REDIS = "redis://127.0.0.1:6379/14"
WINDOW = 300.0  # the default timestamp window, both platforms
ECHO = """\
flow: echo
version: 1
initial: answering
states:
  answering:
    entry: [{answer: {call: caller}}]
    on: {call.answered: listening}
  listening:
    on:
      dtmf.captured:
        actions: [{send_dtmf: {call: caller, digits: "{{ event.digits }}"}}]
    after: {1h: done}
  done: {type: final}
"""


@pytest.fixture
async def shared_redis() -> AsyncIterator[str]:
    """A store URL on db 14 under a prefix of this test's own; every key under it is removed after."""
    prefix = f"fe-replay-{uuid.uuid4().hex[:12]}:"
    yield f"{REDIS}?prefix={prefix}"
    await wipe_redis(REDIS, prefix)


@dataclass(frozen=True)
class Sent:
    """One webhook as it went over the wire: what a capturing attacker has."""

    path: str
    raw: bytes
    headers: dict[str, str]


@dataclass
class Capture:
    """Stands between the platform and instance A, forwarding each webhook and keeping a copy."""

    target: str = ""
    taken: list[Sent] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._forward)
        return app

    async def _forward(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with aiohttp.ClientSession() as http, http.post(
            self.target + request.path, data=raw, headers=headers
        ) as answer:
            body = await answer.read()
            if answer.status == 200:
                self.taken.append(Sent(request.path, raw, headers))
            return web.Response(status=answer.status, body=body,
                                headers={"Content-Type": answer.headers.get("Content-Type", "text/plain")})


async def deliver(clock: Clock, url: str, raw: bytes, headers: dict[str, str]) -> int:
    """POST as the platform would, holding virtual time still while the engine answers."""
    with clock.busy():
        async with aiohttp.ClientSession() as http, http.post(url, data=raw, headers=headers) as answer:
            await answer.read()
            return answer.status


async def as_platform(sim: InfobipSimulator, target: Instance, raw: bytes) -> int:
    """``raw`` to ``target`` with the credentials the platform's own webhooks carry."""
    return await deliver(sim.clock, f"{target.url}/webhooks/infobip", raw, sim.webhooks.headers_for(raw))


def replayed(service: Service) -> float:
    return service.metrics.registry.get_sample_value(
        "flowengine_webhooks_total", {"provider": service.adapter.name, "outcome": "replayed"}) or 0.0


@dataclass
class Instance:
    app: web.Application
    url: str

    @property
    def service(self) -> Service:
        return self.app[SERVICE]


async def instance(stack: AsyncExitStack, config: ServiceConfig, clock: Clock) -> Instance:
    app = create_app(config, clock=clock, timer_poll=None)
    return Instance(app, await stack.enter_async_context(serving(app)))


# -- Infobip ---------------------------------------------------------------------------------------------
def dtmf(sim: InfobipSimulator, call_id: str, digits: str, at: float) -> bytes:
    call = sim.calls[call_id].to_json()
    body = infobip_events.envelope(
        "DTMF_CAPTURED", at, configuration=call["callsConfigurationId"], platform=call["platform"],
        properties={"dtmf": digits, "timeout": False, "customData": None}, call_id=call_id)
    return json.dumps(body, separators=(",", ":")).encode()


async def test_infobip_replays_forgeries_and_stale_events_across_two_instances(
    tmp_path: Path, shared_redis: str
) -> None:
    (flow := tmp_path / "echo.yaml").write_text(ECHO)
    async with platform() as side, AsyncExitStack() as stack:
        sim, clock = side.simulator, side.clock
        config = ServiceConfig(provider="infobip", port=0, store=shared_redis, default_flow=flow,
                               provider_settings=provider_settings(sim, side.url))
        a, b = await instance(stack, config, clock), await instance(stack, config, clock)
        sim.webhook_url = f"{a.url}/webhooks/infobip"
        call_id = await sim.place_inbound_call("447700900001", "4592457976", PartyScript())
        session_id = a.service.session_id_for(call_id)
        await until_state(a.service, session_id, "listening")

        def echoed() -> list[str]:
            return [r.body["dtmf"] for r in sim.requests if r.path.endswith("/send-dtmf")]

        # 40 key presses, as the platform signs them, to A: each echoed once.
        presses = [dtmf(sim, call_id, f"{n}#", clock.now()) for n in range(40)]
        for raw in presses:
            assert await as_platform(sim, a, raw) == 200
        assert echoed() == [f"{n}#" for n in range(40)]
        before = await a.service.store.get(session_id)
        assert before is not None
        [first] = a.service.adapter.parse_webhook(
            WebhookRequest("POST", "/webhooks/infobip", sim.webhooks.headers_for(presses[0]), presses[0]))
        assert first.dedupe_key() not in before.data["seen"]  # the session's own memory has let it go

        # Replayed, byte for byte, to B and to A: acknowledged, not acted on, the session untouched.
        for target, raw in ((b, presses[0]), (b, presses[17]), (a, presses[0])):
            assert await as_platform(sim, target, raw) == 200
        assert echoed() == [f"{n}#" for n in range(40)]
        assert (replayed(b.service), replayed(a.service)) == (2, 1)
        after = await b.service.store.get(session_id)
        assert after is not None and after.revision == before.revision

        # Forged: a new press signed with another secret, unsigned, or a captured one altered.
        secret_header, secret = sim.webhook_hmac or ("", "")
        forged = dtmf(sim, call_id, "666", clock.now())
        altered = presses[1].replace(b'"1#"', b'"9#"')
        for raw, headers in (
            (forged, {secret_header: sign(forged, "not-the-secret")}),
            (forged, {}),
            (altered, {secret_header: sign(presses[1], secret)}),
        ):
            headers = {"Content-Type": "application/json", **headers}
            assert await deliver(clock, f"{b.url}/webhooks/infobip", raw, headers) == 401

        # Stale: well signed, but stamped more than the window ago; and a captured press once it has aged.
        old = dtmf(sim, call_id, "777", clock.now() - WINDOW - 1)
        assert await as_platform(sim, b, old) == 401
        await clock.sleep(WINDOW + 1)
        assert await as_platform(sim, b, presses[5]) == 401
        assert echoed() == [f"{n}#" for n in range(40)]

        # The engine still takes what the platform sends now, on either instance.
        fresh = dtmf(sim, call_id, "42", clock.now())
        assert await as_platform(sim, b, fresh) == 200
        assert echoed()[-1] == "42" and len(echoed()) == 41


# -- Sinch -----------------------------------------------------------------------------------------------
TALK = scenario(callee={"answer_after": "3s", "hangup_after": "30s"})


async def test_sinch_replays_forgeries_and_stale_callbacks_across_two_instances(shared_redis: str) -> None:
    capture = Capture()
    async with running_stack("sinch", FLOW, store=shared_redis, parties=TALK.parties) as a, \
            AsyncExitStack() as stack:
        sim, clock = a.simulator, a.clock
        assert isinstance(sim, SinchSimulator)
        b = await instance(stack, a.app[CONFIG], clock)
        capture.target = a.engine_url
        relay = await stack.enter_async_context(serving(capture.app()))
        sim.webhook_url = f"{relay}/webhooks/sinch"
        result = await play(a, TALK)
        assert result.failures == []
        session_id = result.session["id"]
        before = await a.service.store.get(session_id)
        requests = len(sim.requests)
        taken = {json.loads(sent.raw)["event"]: sent for sent in capture.taken}
        assert {"ice", "ace", "dice"} <= taken.keys()

        # Each callback A took, sent again to B (and the ICE to A too): 200, nothing done, nothing saved.
        for kind in ("ice", "ace", "dice"):
            sent = taken[kind]
            assert await deliver(clock, b.url + sent.path, sent.raw, sent.headers) == 200
        ice = taken["ice"]
        assert await deliver(clock, a.engine_url + ice.path, ice.raw, ice.headers) == 200
        assert (replayed(b.service), replayed(a.service)) == (3, 1)
        assert len(sim.requests) == requests
        after = await b.service.store.get(session_id)
        assert before is not None and after is not None and after.revision == before.revision

        # Forged: the body altered under its signature, or signed with another secret.
        other = signing.signed_headers(sim.application_key, "c2VjcmV0LW90aGVy", method="POST", path=ice.path,
                                       body=ice.raw, content_type="application/json",
                                       timestamp=sinch_iso(clock.now()) or "")
        for raw, headers in ((ice.raw + b" ", ice.headers), (ice.raw, other)):
            assert await deliver(clock, b.url + ice.path, raw, headers) == 401

        # Stale: signed with the real secret but an x-timestamp older than the window; a captured callback
        # once it has aged.
        stale = signing.signed_headers(sim.application_key, sim.application_secret, method="POST",
                                       path=ice.path, body=ice.raw, content_type="application/json",
                                       timestamp=sinch_iso(clock.now() - WINDOW - 1) or "")
        assert await deliver(clock, b.url + ice.path, ice.raw, stale) == 401
        await clock.sleep(WINDOW + 1)
        dice = taken["dice"]
        assert await deliver(clock, b.url + dice.path, dice.raw, dice.headers) == 401
        assert len(sim.requests) == requests
