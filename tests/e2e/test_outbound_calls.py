"""Outbound calls started through the API, end to end on both simulators (real HTTP on 127.0.0.1, virtual
time): ``POST /api/calls`` dials through the platform's real API and the flow begins on the answer or the
failure; the request is checked before anything is dialled; a retried request (same idempotency key) is
the same session and never a second dial, also when it reaches another instance or follows a start that
died mid-dial."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from flowengine.providers import PROVIDERS
from flowengine.runtime.outbound import START
from flowengine.server.outbound import CallRequest, start_outbound

from .conftest import REDIS, until
from .outbound import CALLER_ID, CUSTOMER, Outbound, outbound, said, second_instance

# -- the call's outcomes reach the flow ---------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_answered_call_runs_the_flow_with_the_request_s_variables(provider: str) -> None:
    async with outbound(provider, {CUSTOMER: {"answer_after": "3s"}}) as side:
        status, started = await side.call(vars={"name": "Ada", "slot": "9:30"})
        assert status == 201, started
        assert started["status"] == "new" and started["flow"] == "reminder" and not started["replayed"]
        assert started["url"] == f"/api/sessions/{started['id']}"
        session = await side.until_over(started["id"])
        dials, texts = side.dials(), said(side.stack)
    assert session["status"] == "ended" and session["state"] == "done"
    assert [(s["event"], s["from"], s["to"]) for s in session["trace"] if s["to"] is not None] == [
        ("call.answered", None, "calling"), ("call.answered", "calling", "reminding"),
        ("say.finished", "reminding", "waiting"), ("after:waiting:10m", "waiting", "goodbye"),
        ("say.finished", "goodbye", "done")]
    assert session["vars"]["name"] == "Ada" and session["vars"]["tries"] == 1
    assert session["calls"] == {"customer": session["calls"]["customer"]}
    assert session["trace"][0]["event"] == START and session["trace"][0]["commands"][0][:2] == ["dial", "ok"]
    assert len(dials) == 1
    assert "Hello Ada, your appointment is at 9:30." in texts and "Somebody will call you back." in texts


def _destination(provider: str, dial: dict[str, Any]) -> tuple[str, str | None]:
    """(number dialled, caller id) as the platform's request carries them."""
    body = dial["body"]
    if provider == "infobip":
        return body["endpoint"]["phoneNumber"], body.get("from")
    spec = body["customCallout"]
    return spec["destination"]["endpoint"].lstrip("+"), spec.get("cli", "").lstrip("+") or None


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("script", "reasons"), [
    ({"busy": True}, {"infobip": "busy", "sinch": "busy"}),
    ({"answer_after": None}, {"infobip": "no_answer", "sinch": "no_answer"}),  # past the 20 s ring timeout
    ({"reject": True, "answer_after": "2s"}, {"infobip": "rejected", "sinch": "busy"}),  # Sinch: busy
])
async def test_a_call_that_is_not_answered_begins_the_flow_with_its_reason(
    provider: str, script: dict[str, Any], reasons: dict[str, str]
) -> None:
    reason = reasons[provider]
    async with outbound(provider, {CUSTOMER: script}) as side:
        status, started = await side.call(to="+44 7700 900123", **{"from": "441234567890"})
        assert status == 201, started
        session = await side.until_over(started["id"])
        dials = side.dials()
        calls = side.stack.simulator.calls
    assert (session["status"], session["state"]) == ("ended", "unreachable")
    assert session["vars"]["why"] == reason
    assert [s["to"] for s in session["trace"] if s["to"]] == ["calling", "unreachable"]
    assert len(dials) == 1 and _destination(provider, dials[0]) == (CUSTOMER, "441234567890")
    assert all(call.ended for call in calls.values())


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_flow_s_caller_id_is_used_when_the_request_gives_none(provider: str) -> None:
    async with outbound(provider, {CUSTOMER: {"busy": True}}) as side:
        status, started = await side.call()
        await side.until_over(started["id"])
        dials = side.dials()
    assert status == 201 and _destination(provider, dials[0]) == (CUSTOMER, CALLER_ID)


# -- a bad request is refused before anything is dialled ---------------------------------------------
BAD_REQUESTS: list[tuple[Any, int, str]] = [
    ({"flow": "reminder", "to": CUSTOMER, "vars": {"name": 7}},
     400, 'vars.name: expected a string (as declared: ""), got 7'),
    ({"flow": "reminder", "to": CUSTOMER, "vars": {"tries": "2"}},
     400, 'vars.tries: expected an integer (as declared: 1), got "2"'),
    ({"flow": "reminder", "to": CUSTOMER, "vars": {"nmae": "Ada"}},
     400, 'vars: unknown variable "nmae"; did you mean "name"? (the flow declares: name, slot, tries)'),
    ({"flow": "reminder", "to": CUSTOMER, "vars": ["Ada"]}, 400, "vars must be an object"),
    ({"flow": "reminders", "to": CUSTOMER}, 400, 'no flow "reminders" here (outbound flows here: reminder)'),
    ({"flow": "two-party-conference", "to": CUSTOMER}, 400,
     'flow "two-party-conference" starts on inbound calls, not by dialling'),
    ({"to": CUSTOMER}, 400, "flow is required"),
    ({"flow": "reminder"}, 400, "to is required"),
    ({"flow": "reminder", "to": "call me"}, 400, "to must be a phone number in international format"),
    ({"flow": "reminder", "to": "12"}, 400, "to must be a phone number"),
    ({"flow": "reminder", "to": {"sip": "a@b", "phone": "1"}}, 400, "to is required"),
    ({"flow": "reminder", "to": CUSTOMER, "from": ""}, 400, "from must be a string of 1 to 256"),
    ({"flow": "reminder", "to": CUSTOMER, "idempotency_key": 5}, 400, "idempotency_key must be a string"),
    ({"flow": "reminder", "to": CUSTOMER, "callback": "x"}, 400, 'unknown field "callback"'),
    ([], 400, "the body must be a JSON object"),
]


@pytest.mark.parametrize(("body", "status", "reason"), BAD_REQUESTS, ids=[r[2][:40] for r in BAD_REQUESTS])
async def test_a_bad_request_is_refused_with_its_reason_and_nothing_is_dialled(
    body: Any, status: int, reason: str
) -> None:
    async with outbound("infobip") as side:
        answered = await side.call(body)
        dials = side.dials()
        sessions = await side.stack.service.store.list_sessions()
    assert answered[0] == status and reason in answered[1]["error"], answered
    assert answered[1]["status"] == status
    assert dials == [] and sessions == []


async def test_every_problem_of_a_request_is_listed_at_once() -> None:
    async with outbound("sinch") as side:
        status, body = await side.call({"flow": "reminder", "to": "x", "vars": {"name": 1, "age": 3}})
    problems = body["error"].split("; ")
    assert status == 400 and len(problems) == 3, problems
    assert problems[0].startswith("to must be a phone number") and problems[1].startswith("vars.name:")
    assert problems[2].startswith('vars: unknown variable "age"')


async def test_bodies_that_are_no_json_object_or_too_big_are_refused() -> None:
    async with outbound("infobip") as side:
        not_json = await side.send("POST", "/api/calls", raw=b"{flow: reminder}")
        nan = await side.send("POST", "/api/calls", raw=b'{"flow": "reminder", "to": NaN}')
        huge_number = await side.send("POST", "/api/calls", raw=b'{"flow": "reminder", "vars": {"n": 1e999}}')
        deep = await side.send("POST", "/api/calls", raw=b"[" * 40 + b"]" * 40)
        huge = await side.send("POST", "/api/calls", raw=b'{"flow": "' + b"r" * 70_000 + b'"}')
        dials = side.dials()
    assert not_json[0] == 400 and "not JSON" in not_json[1]["error"]
    assert nan[0] == 400 and "NaN is not a JSON number" in nan[1]["error"]
    assert huge_number[0] == 400 and "1e999 is out of range" in huge_number[1]["error"]
    assert deep[0] == 400 and "nests deeper" in deep[1]["error"]
    assert huge[0] == 413 and "over 65536 bytes" in huge[1]["error"]
    assert dials == []


# -- idempotency -----------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_retried_request_is_the_same_session_and_never_a_second_call(provider: str) -> None:
    key = f"reminder-{uuid.uuid4()}"
    async with outbound(provider, {CUSTOMER: {"answer_after": "3s"}}) as side:
        same = {"idempotency_key": key, "vars": {"name": "Ada"}}
        together = await asyncio.gather(*(side.call(**same) for _ in range(3)))
        later = await side.call(idempotency_key=key, vars={"name": "Ada"})
        other = await side.call(idempotency_key=key, vars={"name": "Bob"})
        session = await side.until_over(later[1]["id"])
        again = await side.call(idempotency_key=key, vars={"name": "Ada"})  # after the session has ended
        dials = side.dials()
    answers = [*together, later, again]
    assert {status for status, _ in answers} == {201}
    assert len({body["id"] for _, body in answers}) == 1
    assert sorted(body["replayed"] for _, body in together) == [False, True, True]
    assert later[1]["replayed"] and again[1]["replayed"] and again[1]["status"] == "ended"
    assert other[0] == 422 and "used for another call" in other[1]["error"]
    assert len(dials) == 1 and session["state"] == "done"


async def test_a_retry_after_its_session_is_gone_is_refused_not_dialled() -> None:
    key = f"reminder-{uuid.uuid4()}"
    async with outbound("infobip", {CUSTOMER: {"busy": True}}) as side:
        _, started = await side.call(idempotency_key=key)
        await side.until_over(started["id"])
        await side.stack.service.store.delete(started["id"])  # an operator purged finished sessions
        status, body = await side.call(idempotency_key=key)
        dials = side.dials()
    assert status == 409 and "no longer kept" in body["error"] and len(dials) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("retried", [True, False], ids=["retried", "timer"])
async def test_a_start_that_died_mid_dial_is_finished_without_a_second_call(
    provider: str, retried: bool
) -> None:
    """The engine dies (its task is cancelled) after writing the start ahead and sending the dial, before it
    hears the answer. The client's retry, or else the timer loop once the plan is due (10 s), finishes the
    start, asking the platform what the dial did (Infobip: finds the call by the key in its customData;
    Sinch, which cannot be asked: binds it under a stand-in until the call's first callback names it),
    and the flow runs on that one call."""
    key = f"reminder-{uuid.uuid4()}"
    dial_path = {"infobip": "POST /calls/1/calls$", "sinch": "POST /calling/v1/callouts$"}[provider]
    async with outbound(provider, {CUSTOMER: {"answer_after": "20s"}}) as side:
        side.stack.simulator.faults = _slow(dial_path)
        call = CallRequest("reminder", CUSTOMER, None, {"name": "Ada"}, key)
        dying = asyncio.ensure_future(start_outbound(side.stack.service, call))
        await until(_has_dialled(side), "the dial to reach the platform")
        dying.cancel()
        await asyncio.gather(dying, return_exceptions=True)
        left = await side.record(call.session_id())
        # An instance coming up (or polling) reads the store's timers, the written-ahead start among them;
        # this stack's timer loop does not poll, so it is told to look, as a restarted one would.
        side.stack.service.timers.poke()
        status, again = await side.call(idempotency_key=key, vars={"name": "Ada"}) if retried else (201, {})
        session = await side.until_over(call.session_id())
        dials, texts = side.dials(), said(side.stack)
        asked = [r.path for r in side.stack.simulator.requests if r.method == "GET"]
        placed = list(side.stack.simulator.calls)
    assert left is not None and left.data["outbox"] is not None and left.data["calls"] == {}
    assert not retried or (status == 201 and again["replayed"] and again["id"] == call.session_id())
    assert len(dials) == 1 and session["calls"] == {"customer": placed[0]}
    if provider == "infobip":  # the resumed dial asked before it could send again: the call was there
        assert asked[0] == "/calls/1/calls"
    assert session["state"] == "done" and "Hello Ada, your appointment is at ." in texts


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_retry_to_another_instance_sharing_the_store_is_the_same_session(
    provider: str, redis_prefix: str
) -> None:
    """Two engine instances on one Redis store: the same request sent to both at once, and again to each,
    starts one session and one call."""
    key = f"reminder-{uuid.uuid4()}"
    store = f"{REDIS}?prefix={redis_prefix}"
    body = {"flow": "reminder", "to": CUSTOMER, "idempotency_key": key, "vars": {"name": "Ada"}}
    async with outbound(provider, {CUSTOMER: {"answer_after": "3s"}}, store=store) as side, \
            second_instance(side) as other:
        first, second = await asyncio.gather(side.call(body), other.call(body))
        again = [await side.call(body), await other.call(body)]
        session = await side.until_over(first[1]["id"])
        dials = side.dials()
    answers = [first, second, *again]
    assert {status for status, _ in answers} == {201}, answers
    assert len({body["id"] for _, body in answers}) == 1
    assert sorted(body["replayed"] for _, body in answers) == [False, True, True, True]
    assert len(dials) == 1 and session["state"] == "done"


def _slow(match: str) -> Any:
    from flowengine.simulator.faults import Faults

    return Faults(slow_rate=1.0, slow_seconds=1.0, match=match, times=1)


def _has_dialled(side: Outbound) -> Any:
    async def check() -> bool:
        return bool(side.dials())
    return check
