"""The ``/_simulator/`` control API, standalone serving, undeliverable webhooks, and the promise that
bad input never makes either simulator answer 500."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import pytest

from flowengine.providers.sinch import signing
from flowengine.runtime.clock import SystemClock, VirtualClock
from flowengine.simulator import (
    InfobipSimulator,
    PartyBook,
    Simulator,
    SinchSimulator,
    build_simulator,
    run_simulator,
)
from flowengine.simulator.testing import harness

SECRET = "BeIukql3pTKJ8RGL5zo0DA=="


def infobip(clock: VirtualClock, url: str) -> InfobipSimulator:
    return InfobipSimulator(clock, webhook_url=url, api_key="secret")


def sinch(clock: VirtualClock, url: str) -> SinchSimulator:
    return SinchSimulator(clock, callback_url=url, application_key="k", application_secret=SECRET)


async def test_control_api_drives_a_simulator() -> None:
    async with harness(infobip, headers={"Authorization": "App secret"}) as h:
        ctl = "/_simulator"
        status, placed = await h.client.request(
            "POST", ctl + "/calls", {"from": "447415784323", "to": "4592", "script": {"hangup_after": 5}}
        )
        assert status == 201
        await h.wait_events("CALL_RECEIVED")
        await h.client.request("POST", f"/calls/1/calls/{placed['callId']}/answer", {})
        await h.wait_events("CALL_FINISHED")  # the scripted caller hangs up 5 s after the answer
        calls = (await h.client.request("GET", ctl + "/calls"))[1]
        assert calls[placed["callId"]]["state"] == "FINISHED"
        events = (await h.client.request("GET", ctl + "/events"))[1]
        assert [e["body"]["type"] for e in events] == ["CALL_RECEIVED", "CALL_ESTABLISHED", "CALL_FINISHED"]
        assert all(e["status"] == 200 for e in events)
        requests = (await h.client.request("GET", ctl + "/requests"))[1]
        assert [(r["method"], r["status"]) for r in requests] == [
            ("POST", 200)
        ]  # control calls are not logged

        assert (await h.client.request("PUT", ctl + "/parties/447000", {"busy": True}))[0] == 200
        assert (await h.client.request("PUT", ctl + "/parties/default", {"answer_after": "5s"}))[0] == 200
        parties = (await h.client.request("GET", ctl + "/parties"))[1]
        assert parties["447000"]["busy"] is True and parties["default"]["answer_after"] == 5.0
        status, problem = await h.client.request("PUT", ctl + "/parties/447000", {"busy": "sometimes"})
        assert (status, problem) == (
            400,
            {"error": "party script: busy must be true or false, got 'sometimes'"},
        )
        assert (await h.client.request("DELETE", ctl + "/parties/447000"))[0] == 204
        assert (await h.client.request("DELETE", ctl + "/parties/447000"))[0] == 404
        assert (await h.client.request("PUT", ctl + "/parties", {"123": {"unreachable": True}}))[0] == 200
        assert h.sim.parties.script_for("+123").unreachable

        assert (await h.client.request("PUT", ctl + "/faults", {"error_rate": 1.0}))[1]["error_rate"] == 1.0
        assert (await h.client.request("GET", "/calls/1/calls/x"))[0] == 503
        assert (await h.client.request("PUT", ctl + "/faults", {"error_rate": 7}))[0] == 400
        assert (await h.client.request("PUT", ctl + "/faults", {}))[0] == 200
        # 429 with Retry-After, limited to the requests matched and to one fault in all.
        throttle = {"throttle_rate": 1.0, "retry_after": 4, "match": "^GET /calls/1/calls/", "times": 1}
        assert (await h.client.request("PUT", ctl + "/faults", throttle))[1]["throttle_rate"] == 1.0
        assert (await h.client.request("GET", "/calls/1/calls/x"))[0] == 429
        assert (await h.client.request("GET", "/calls/1/calls/x"))[0] == 404  # once only
        assert h.sim.requests[-2].fault == "throttle"
        lost = {"lost_rate": 1.0, "lost_as": 500, "slow_rate": 0.5, "slow_seconds": 0.01, "seed": 3}
        assert (await h.client.request("PUT", ctl + "/faults", lost))[1]["lost_as"] == 500
        assert (await h.client.request("PUT", ctl + "/faults", {"lost_as": "sometimes"}))[0] == 400
        assert (await h.client.request("PUT", ctl + "/faults", {"match": "("}))[0] == 400
        assert (await h.client.request("PUT", ctl + "/faults", {}))[0] == 200

        assert (await h.client.request("POST", ctl + "/calls", {"from": 1}))[0] == 400
        assert await h.client.request("POST", ctl + "/reset") == (204, None)
        assert h.sim.calls == {} and h.sim.events == [] and h.sim.requests == []
        assert (await h.client.request("GET", ctl + "/conferences"))[1] == {}
        assert (await h.client.request("GET", ctl + "/health"))[1]["provider"] == "infobip"


async def test_control_api_on_sinch() -> None:
    async def ice(_: Any) -> tuple[int, Any]:
        return 200, {"instructions": [], "action": {"name": "connectConf", "conferenceId": "c1"}}

    async with harness(sinch, responder=ice) as h:
        status, placed = await h.client.request("POST", "/_simulator/calls", {"from": "+4411", "to": "+4592"})
        assert status == 201
        await h.until(lambda: "c1" in h.sim.conferences)
        conferences = (await h.client.request("GET", "/_simulator/conferences"))[1]
        assert conferences["c1"]["participants"][0]["id"] == placed["callId"]
        assert (await h.client.request("GET", "/_simulator/calls"))[1][placed["callId"]][
            "status"
        ] == "ONGOING"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_run_simulator_serves_with_wall_clock_time() -> None:
    port, stop = free_port(), asyncio.Event()
    seen: list[Any] = []

    async def ready(sim: Simulator, base_url: str) -> None:
        headers = {"Authorization": signing.basic_header("k", SECRET)}
        url = base_url + "/calling/v1/calls/id/nope"
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
            seen.append((resp.status, (await resp.json())["errorCode"], sim.provider, base_url))
        stop.set()

    await asyncio.wait_for(
        run_simulator(
            "sinch",
            "127.0.0.1",
            port,
            "http://127.0.0.1:9/cb",
            ready=ready,
            stop=stop,
            application_key="k",
            application_secret=SECRET,
        ),
        timeout=5,
    )
    assert seen == [(404, 40400, "sinch", f"http://127.0.0.1:{port}")]


def test_build_simulator() -> None:
    clock = SystemClock()
    assert isinstance(build_simulator("infobip", clock, "http://x/w", api_key="k"), InfobipSimulator)
    assert isinstance(build_simulator("sinch", clock, "http://x/w", parties=PartyBook()), SinchSimulator)
    with pytest.raises(ValueError, match="unknown provider 'twilio'"):
        build_simulator("twilio", clock, "http://x/w")
    with pytest.raises(ValueError, match="base64"):
        SinchSimulator(clock, callback_url="http://x", application_secret="not base64!")


async def test_unreachable_webhook_is_recorded_not_fatal() -> None:
    clock = VirtualClock()
    clock.start()
    sim = InfobipSimulator(clock, webhook_url=f"http://127.0.0.1:{free_port()}/hook")
    try:
        call_id = await sim.place_inbound_call("447415784323", "4592")
        await clock.run_until(lambda: len(sim.events) == 1, real_timeout=5)
        assert sim.events[0]["status"] is None and sim.events[0]["error"]
        assert sim.calls[call_id].state == "RINGING"
    finally:
        await sim.close()
        await clock.stop()


BODIES: list[Any] = [
    None,
    [],
    "text",
    7,
    {"x": 1},
    {"text": 5, "language": [], "callRequest": "x", "endpoint": 1},
    {"method": "ttsCallout", "ttsCallout": {"destination": "x"}},
    {"instructions": "x", "action": 1},
    {"command": ["mute"], "moh": 5},
    {"callIds": ["a", "b"]},
]


@pytest.mark.parametrize(
    ("factory", "auth"),
    [
        (infobip, {"Authorization": "App secret"}),
        (sinch, {"Authorization": signing.basic_header("k", SECRET)}),
    ],
)
async def test_bad_input_never_yields_500(factory: Any, auth: dict[str, str]) -> None:
    async with harness(factory, headers=auth) as h:
        call_id = await h.sim.place_inbound_call("447415784323", "4592")
        paths = set()
        for resource in h.sim.app.router.resources():
            info = resource.get_info()
            template = info.get("formatter") or info.get("path") or ""
            if not template.startswith("/_simulator"):
                paths.add(
                    template.replace("{callId}", call_id)
                    .replace("{conferenceId}", "c1")
                    .replace("{leg}", "caller")
                )
        assert len(paths) >= 5
        for path in sorted(paths):
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                for body in BODIES:
                    status, _ = await h.client.request(method, path, body)
                    assert status < 500, (method, path, body)
