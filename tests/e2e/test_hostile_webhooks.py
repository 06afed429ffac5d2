"""Hostile webhook bodies, one by one, against the running engine and its simulator on 127.0.0.1, on both
platforms: JSON nested far too deep, lone surrogates in ids, wrong types and missing fields, and one
Infobip body carrying 1,000 inbound calls. Each gets a 4xx with a short reason, logged once on one line
without a traceback, and starts nothing. A store that is down gets 503 and a fault of the engine's own
500, both logged with their cause."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest

from flowengine.scenarios.stack import Stack, running_stack

from .conftest import FLOW
from .sender import authenticated, headers

PROVIDERS = ["infobip", "sinch"]
DEEP = b"[" * 1000 + b"]" * 1000


def received(provider: str, call_id: Any, **extra: Any) -> dict[str, Any]:
    """An inbound call's first event, as ``provider`` sends it."""
    if provider == "infobip":
        return {"type": "CALL_RECEIVED", "callId": call_id, "timestamp": "2026-01-01T00:00:00.000+00:00",
                "properties": {"call": {"from": "447700900001", "to": "4592457976"}}, **extra}
    return {"event": "ice", "callid": call_id, "cli": "447700900001", "to": {"endpoint": "4592457976"},
            "timestamp": "2026-01-01T00:00:00Z", **extra}


def ignored(provider: str, **extra: Any) -> dict[str, Any]:
    """An event the engine acknowledges without acting on it."""
    if provider == "infobip":
        return {"type": "CALL_RINGING", "callId": "c-ring", **extra}
    return {"event": "notify", "callid": "c-ring", "type": "other", **extra}


async def post(stack: Stack, body: bytes | dict[str, Any] | list[Any]) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    path = f"/webhooks/{stack.provider}"
    async with (aiohttp.ClientSession() as http,
                http.post(stack.engine_url + path, data=raw, headers=headers(stack, path, raw)) as response):
        text = await response.text()
        return response.status, json.loads(text) if text.startswith("{") else {}


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("webhook refused:")]


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> bool:
    return not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def cases(provider: str) -> list[tuple[str, bytes | dict[str, Any] | list[Any], int, str]]:
    """(what, body, status, reason the answer gives)."""
    infobip = provider == "infobip"
    kind, call = ("Infobip event", "callId") if infobip else ("Sinch callback", "callid")
    def nested(levels: int) -> bytes:  # the event with a field nesting ``levels`` deep in all
        inner = b'{"a": ' * (levels - 2) + b"[]" + b"}" * (levels - 2)
        return json.dumps(ignored(provider))[:-1].encode() + b', "x": ' + inner + b"}"

    return [
        ("deep array", DEEP, 400, "the JSON nests deeper than 32 levels"),
        ("deep field", json.dumps(ignored(provider))[:-1].encode() + b', "x": ' + DEEP + b"}", 400,
         "the JSON nests deeper than 32 levels"),
        ("lone surrogate id", received(provider, "\ud800"), 400,
         f"the {kind} holds invalid Unicode (a lone surrogate escape)"),
        ("reversed pair", received(provider, "a\udc00\ud800"), 400,
         f"the {kind} holds invalid Unicode (a lone surrogate escape)"),
        ("encoded surrogate", json.dumps(received(provider, "X")).encode().replace(b'"X"', b'"\xed\xa0\x80"'),
         400, f"the {kind} is not UTF-8: invalid continuation byte at byte"),
        ("NaN", json.dumps(received(provider, "c-nan", duration=float("nan"))).encode(), 400,
         f"the {kind} is not valid JSON: NaN is not a JSON number"),
        ("id of the wrong type", received(provider, 123), 400,
         'an Infobip CALL_RECEIVED event needs a "callId" or a "conferenceId"' if infobip
         else 'a Sinch ice callback needs a "callid"'),
        ("type of the wrong type", {**received(provider, "c-1"), "type" if infobip else "event": ["x"]}, 400,
         'an Infobip event needs a "type"' if infobip else 'a Sinch callback needs an "event"'),
        ("not an object", [1, 2] if not infobip else [[1]], 400,
         f"a{'n' if infobip else ''} {kind} must be a JSON object"),
        ("no type", {call: "c-1"}, 400,
         'an Infobip event needs a "type"' if infobip else 'a Sinch callback needs an "event"'),
        ("no id", {"type": "CALL_ESTABLISHED"} if infobip else {"event": "ace"}, 400,
         'an Infobip CALL_ESTABLISHED event needs a "callId" or a "conferenceId"' if infobip
         else 'a Sinch ace callback needs a "callid"'),
        ("33 levels", nested(33), 400, "the JSON nests deeper than 32 levels"),
        ("32 levels", nested(32), 200, ""),
        ("surrogate pair", ignored(provider, note="\U0001f600"), 200, ""),
        ("optional fields of any type", ignored(provider, properties="x", to=5, custom=[1], amd=None), 200,
         ""),
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_hostile_bodies_get_a_4xx_with_a_reason_logged_once(
    provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running_stack(provider, FLOW, **authenticated(provider)) as stack:
        answers = [(what, *await post(stack, body)) for what, body, _, _ in cases(provider)]
        sessions = await stack.service.store.list_sessions()
    expected = [(what, status, reason) for what, _, status, reason in cases(provider)]
    reasons = [reason for _, _, reason in expected]  # the answer's error starts with it
    assert [(what, status, body.get("error", "")[: len(reason)])
            for (what, status, body), reason in zip(answers, reasons, strict=True)] == expected
    assert sessions == []  # nothing refused started anything
    refused = refusals(caplog)
    assert len(refused) == sum(1 for _, status, _ in expected if status != 200)
    assert all("\n" not in line and len(line) < 400 for line in refused)
    assert no_tracebacks(caplog)


async def test_a_recording_event_with_files_of_the_wrong_type_is_taken() -> None:
    # was a TypeError and a 500: ``files`` iterated whatever it was
    async with running_stack("infobip", FLOW, **authenticated("infobip")) as stack:
        status, _ = await post(stack, {"type": "CALL_RECORDING_READY", "callId": "c-1",
                                       "properties": {"recording": {"files": 5, "composedFiles": "abc"}}})
    assert status == 200


async def test_one_body_may_carry_only_max_events_events(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with running_stack("infobip", FLOW, **authenticated("infobip")) as stack:
        flood = await post(stack, [received("infobip", f"flood-{i}") for i in range(1000)])
        after_flood = await stack.service.store.list_sessions(limit=5000)
        api_calls = len(stack.simulator.requests)
        ten = await post(stack, [received("infobip", f"ten-{i}") for i in range(10)])
        sessions = await stack.service.store.list_sessions(limit=5000)
    assert flood == (413, {"error": "1000 events in one webhook body; at most 10 are taken", "status": 413})
    assert (after_flood, api_calls) == ([], 0)  # none of them started a session or reached the platform
    assert ten[0] == 200
    assert len(sessions) == 10
    assert len(refusals(caplog)) == 1 and no_tracebacks(caplog)


# -- the engine's own faults ------------------------------------------------------------------------
async def test_a_store_that_is_down_gets_503_logged_with_its_cause(caplog: pytest.LogCaptureFixture) -> None:
    down = "redis://127.0.0.1:1/0"  # nothing listens there
    async with running_stack("infobip", FLOW, store=down, **authenticated("infobip")) as stack:
        status, body = await post(stack, received("infobip", "c-store"))
        async with (aiohttp.ClientSession(headers=stack.api_headers) as http,
                    http.get(stack.engine_url + "/api/sessions") as response):
            read = response.status, await response.json()
    unavailable = {"error": "session store unavailable", "status": 503}
    assert (status, body) == (503, unavailable)
    assert read == (503, unavailable)  # the read API too, not a 500 with a chained traceback
    causes = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert [cause.split(": ")[0] for cause in causes] == [
        "store failed while handling a webhook", "store failed while answering GET /api/sessions"]
    assert all("Connect call failed ('127.0.0.1', 1)" in cause for cause in causes)
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_fault_of_the_engines_own_gets_500_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_stack("infobip", FLOW, **authenticated("infobip")) as stack:
        async def broken(*_: Any, **__: Any) -> Any:  # fault injection: stands for a bug in the engine
            raise KeyError("planted")

        monkeypatch.setattr(stack.service, "deliver", broken)
        status, body = await post(stack, received("infobip", "c-bug"))
    assert (status, body) == (500, {"error": "internal error", "status": 500})
    (fault,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert fault.getMessage() == "webhook failed on a fault of the engine's: KeyError('planted')"
    assert fault.exc_info is not None and fault.exc_info[0] is KeyError
