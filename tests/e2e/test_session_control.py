"""Sessions driven from outside, end to end on both simulators (real HTTP on 127.0.0.1): a custom event
delivered through the API changes a session's course as the flow says; a session ended through the API
has its calls hung up on the platform, also while its call is still ringing; and the write routes want
the bearer token."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from flowengine.config import ServiceConfig
from flowengine.providers import PROVIDERS
from flowengine.runtime.clock import VirtualClock
from flowengine.server.app import create_app
from flowengine.server.serving import serving

from .conftest import FLOW, REAL_GUARD
from .outbound import CUSTOMER, REMINDER, Outbound, outbound, said

GREETING = "Hello Ada, your appointment is at 9:30."


async def step_until(side: Outbound, clock: VirtualClock, check: Callable[[dict[str, Any]], bool],
                     session_id: str, step: float = 0.5) -> dict[str, Any]:
    """Move time on by ``step`` seconds at a time (the clock moves only when told) until ``check`` holds
    for the session as stored."""
    deadline = time.monotonic() + REAL_GUARD
    while True:
        record = await side.record(session_id)
        if record is not None and check(record.data):
            return record.data
        assert time.monotonic() < deadline, f"gave up waiting; session {record and record.data['state']}"
        clock.advance(step)
        await clock.settle()


async def answered_and_waiting(side: Outbound, clock: VirtualClock) -> str:
    status, started = await side.call(vars={"name": "Ada", "slot": "9:30"})
    assert status == 201, started
    await step_until(side, clock, lambda s: s["state"] == "waiting", started["id"])
    return str(started["id"])


# -- events --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_event_delivered_through_the_api_changes_the_session_s_course(provider: str) -> None:
    clock = VirtualClock(auto_advance=False)
    async with outbound(provider, {CUSTOMER: {"answer_after": "3s"}}, clock=clock) as side:
        session_id = await answered_and_waiting(side, clock)
        waited_from = clock.now()
        path = f"/api/sessions/{session_id}/events"
        event = {"name": "agent.free", "data": {"agent": "Grace"}, "id": "crm-7"}
        status, delivered = await side.send("POST", path, event)
        again = await side.send("POST", path, event)
        session = await step_until(side, clock, lambda s: s["status"] == "ended", session_id)
        texts, over_after = said(side.stack), clock.now() - waited_from
    assert status == 200, delivered
    assert (delivered["event"], delivered["outcome"]) == ("agent.free", "handled")
    assert delivered["state"] == "goodbye"
    assert again[0] == 200 and again[1]["outcome"] == "duplicate"
    assert session["state"] == "done" and session["vars"]["agent"] == "Grace"
    assert texts == [GREETING, "Agent Grace will call you back."]
    assert over_after < 60  # the flow's 10-minute wait never ran out: the event moved it on
    steps = [(s["event"], s["from"], s["to"]) for s in session["trace"] if s["to"] is not None]
    assert ("agent.free", "waiting", "goodbye") in steps
    assert [s["event"] for s in session["trace"]].count("agent.free") == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_event_the_state_does_not_handle_changes_nothing(provider: str) -> None:
    clock = VirtualClock(auto_advance=False)
    async with outbound(provider, {CUSTOMER: {"answer_after": "3s"}}, clock=clock) as side:
        _, started = await side.call(vars={"name": "Ada", "slot": "9:30"})
        await step_until(side, clock, lambda s: s["state"] == "reminding", started["id"])
        answered = await side.send("POST", f"/api/sessions/{started['id']}/events", {"name": "agent.free"})
    assert answered[0] == 200 and answered[1]["outcome"] == "ignored" and answered[1]["state"] == "reminding"


async def test_events_a_session_cannot_take_are_refused_with_the_reason() -> None:
    async with outbound("infobip", {CUSTOMER: {"answer_after": "30s"}}) as side:
        _, ringing = await side.call()
        path = f"/api/sessions/{ringing['id']}/events"
        not_begun = await side.send("POST", path, {"name": "agent.free"})
        undeclared = await side.send("POST", path, {"name": "agent.busy"})
        neutral = await side.send("POST", path, {"name": "call.answered"})
        bad = await side.send("POST", path, {"name": "agent.free", "data": [1], "when": "now"})
        nobody = await side.send("POST", "/api/sessions/o-nobody/events", {"name": "agent.free"})
        await side.send("DELETE", f"/api/sessions/{ringing['id']}")
        ended = await side.send("POST", path, {"name": "agent.free"})
    assert not_begun[0] == 409 and "has not begun (its call is still being dialled)" in not_begun[1]["error"]
    assert undeclared[0] == 400
    assert undeclared[1]["error"] == ('flow "reminder" declares no event "agent.busy"; did you mean '
                                      '"agent.free"?')
    assert neutral[0] == 400 and "declares no event" in neutral[1]["error"]
    assert bad[0] == 400 and bad[1]["error"] == ('unknown field "when" (expected name, data, id); data must '
                                                 'be an object')
    assert nobody[0] == 404 and nobody[1]["error"] == 'no session "o-nobody"'
    assert ended[0] == 409 and "has ended" in ended[1]["error"]


# -- ending a session ------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_session_ended_through_the_api_hangs_up_its_call(provider: str) -> None:
    clock = VirtualClock(auto_advance=False)
    async with outbound(provider, {CUSTOMER: {"answer_after": "3s"}}, clock=clock) as side:
        session_id = await answered_and_waiting(side, clock)
        status, ended = await side.send("DELETE", f"/api/sessions/{session_id}")
        # Until the platform's report of the hang-up has come and been dropped: the session is over.
        await step_until(side, clock, lambda s: s["trace"][-1]["note"] == "session ended", session_id)
        again = await side.send("DELETE", f"/api/sessions/{session_id}")
        session = await side.session(session_id)
        calls = list(side.stack.simulator.calls.values())
    assert status == 200, ended
    assert (ended["status"], ended["state"], ended["hung_up"], ended["failed"]) == ("ended", "waiting",
                                                                                   ["customer"], [])
    assert again == (200, {**ended, "hung_up": [], "failed": []})
    assert len(calls) == 1 and calls[0].ended
    assert session["status"] == "ended" and session["state"] == "waiting"
    end = next(s for s in session["trace"] if s["event"] == "end")
    assert end["note"] == "ended through the API" and [c[:2] for c in end["commands"]] == [["hangup", "ok"]]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_session_ended_while_its_call_rings_cancels_the_call(provider: str) -> None:
    async with outbound(provider, {CUSTOMER: {"answer_after": "30s"}}) as side:
        _, started = await side.call()
        status, ended = await side.send("DELETE", f"/api/sessions/{started['id']}")
        session = await side.until_over(started["id"])
        calls = list(side.stack.simulator.calls.values())
    assert status == 200 and ended["hung_up"] == ["customer"] and ended["state"] == "calling"
    assert session["status"] == "ended" and "call.answered" not in [s["event"] for s in session["trace"]]
    assert len(calls) == 1 and calls[0].ended


async def test_ending_a_session_nobody_has_is_404() -> None:
    async with outbound("sinch") as side:
        status, body = await side.send("DELETE", "/api/sessions/o-nobody")
    assert (status, body) == (404, {"error": 'no session "o-nobody"', "status": 404})


# -- who may write ---------------------------------------------------------------------------------------
WRITES = [("POST", "/api/calls", {"flow": "reminder", "to": CUSTOMER}),
          ("POST", "/api/sessions/o-1/events", {"name": "agent.free"}),
          ("DELETE", "/api/sessions/o-1", None)]
SETTINGS = {"base_url": "http://127.0.0.1:9", "api_key": "k", "calls_configuration_id": "c",
            "webhook_hmac_secret": "hook-secret"}


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
async def test_a_write_route_wants_the_token(method: str, path: str, body: Any) -> None:
    token = secrets.token_urlsafe(24)
    common = {"provider": "infobip", "port": 0, "store": "memory://", "default_flow": FLOW,
              "flows": (REMINDER,), "provider_settings": SETTINGS}
    answers = []
    for tokens in ((token,), ()):
        config = ServiceConfig(**common, api_tokens=tokens)  # type: ignore[arg-type]
        async with serving(create_app(config, timer_poll=None)) as url, aiohttp.ClientSession() as http:
            for headers in ({}, {"Authorization": f"Bearer {token}x"}):
                async with http.request(method, url + path, json=body, headers=headers) as response:
                    answers.append((response.status, (await response.json())["error"]))
    assert [status for status, _ in answers] == [401, 401, 403, 403]
    assert "api_tokens" in answers[2][1]
