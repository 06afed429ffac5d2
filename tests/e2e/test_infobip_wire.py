"""What the engine puts on the wire to Infobip, checked against the official SDK's request models
(``infobip-api-python-client`` 6.0.0): every body it sent in every branch of the seed scenario parses
with the model of its endpoint and keeps every field we sent; every request carries ``App <key>``."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from aiohttp import web
from infobip_api_client.models.calls_add_existing_call_request import CallsAddExistingCallRequest
from infobip_api_client.models.calls_add_new_call_request import CallsAddNewCallRequest
from infobip_api_client.models.calls_answer_request import CallsAnswerRequest
from infobip_api_client.models.calls_conference_request import CallsConferenceRequest
from infobip_api_client.models.calls_file_play_content import CallsFilePlayContent
from infobip_api_client.models.calls_hangup_request import CallsHangupRequest
from infobip_api_client.models.calls_phone_endpoint import CallsPhoneEndpoint
from infobip_api_client.models.calls_play_request import CallsPlayRequest
from infobip_api_client.models.calls_say_request import CallsSayRequest
from infobip_api_client.models.calls_stop_play_request import CallsStopPlayRequest
from infobip_api_client.models.calls_update_call_request import CallsUpdateCallRequest

from .conftest import (
    BRANCHES,
    CALLEE,
    CALLER_ID,
    SORRY,
    Run,
    call_in,
    engine,
    platform,
    run_seed,
    scenario,
)

M = TypeVar("M")

ID = "[^/]+"
# (method, path pattern) -> the SDK model of the body (``calls_api.py``), or None: the SDK sends no body.
MODELS: dict[tuple[str, str], Any] = {
    ("POST", f"/calls/1/calls/{ID}/answer"): CallsAnswerRequest,
    ("POST", f"/calls/1/calls/{ID}/say"): CallsSayRequest,
    ("POST", f"/calls/1/calls/{ID}/play"): CallsPlayRequest,
    ("POST", f"/calls/1/calls/{ID}/stop-play"): CallsStopPlayRequest,
    ("POST", f"/calls/1/calls/{ID}/hangup"): CallsHangupRequest,
    ("POST", "/calls/1/conferences"): CallsConferenceRequest,
    ("PUT", f"/calls/1/conferences/{ID}/call/{ID}"): CallsAddExistingCallRequest,
    ("PATCH", f"/calls/1/conferences/{ID}/call/{ID}"): CallsUpdateCallRequest,
    ("POST", f"/calls/1/conferences/{ID}/call"): CallsAddNewCallRequest,
    ("POST", f"/calls/1/conferences/{ID}/hangup"): None,
    # Asking after a refusal that says the call is gone (the caller gave up before the answer).
    ("GET", f"/calls/1/calls/{ID}"): None,
}


def model_for(method: str, path: str) -> tuple[tuple[str, str], Any]:
    found = [(key, model) for key, model in MODELS.items() if key[0] == method and re.fullmatch(key[1], path)]
    assert len(found) == 1, f"no SDK model mapped for {method} {path}"
    return found[0]


def kept(sent: Any, parsed: Any, where: str = "body") -> list[str]:
    """Where ``parsed`` lost or changed something of ``sent`` (the SDK drops fields it does not know)."""
    if isinstance(sent, dict):
        if not isinstance(parsed, dict):
            return [f"{where}: became {parsed!r}"]
        return [problem for key, value in sent.items()
                for problem in (kept(value, parsed[key], f"{where}.{key}") if key in parsed
                                else [f"{where}.{key}: dropped by the SDK model"])]
    if isinstance(sent, list):
        if not isinstance(parsed, list) or len(parsed) != len(sent):
            return [f"{where}: became {parsed!r}"]
        pairs = enumerate(zip(sent, parsed, strict=True))
        return [problem for i, (a, b) in pairs for problem in kept(a, b, f"{where}[{i}]")]
    return [] if sent == parsed else [f"{where}: sent {sent!r}, the SDK reads {parsed!r}"]


def problems(run: Run) -> tuple[list[str], set[tuple[str, str]]]:
    found, used = [], set()
    for request in run.requests:
        key, model = model_for(request["method"], request["path"])
        used.add(key)
        body, what = request["body"], f"{request['method']} {request['path']}"
        if model is None:
            if body is not None:
                found.append(f"{what}: sent a body the SDK never sends: {body!r}")
            continue
        parsed = model.from_dict(body)  # raises on a body the model refuses
        found += [f"{what}: {p}" for p in kept(body, json.loads(parsed.to_json()))]
    return found, used


async def test_every_body_of_every_branch_is_an_sdk_request() -> None:
    used: set[tuple[str, str]] = set()
    for name, (caller, callee, options) in BRANCHES.items():
        run = await run_seed(scenario(caller, callee, name), simulator_options=options)
        found, keys = problems(run)
        assert found == [], name
        used |= keys
    assert used == set(MODELS)  # every mapped endpoint was exercised


def parsed(model: type[M], body: Any) -> M:
    found = model.from_dict(body)  # type: ignore[attr-defined]
    assert isinstance(found, model)
    return found


async def test_the_bodies_say_what_the_flow_says() -> None:
    caller, callee, options = BRANCHES["callee-never-answers"]
    run = await run_seed(scenario(caller, callee), simulator_options=options)
    bodies = {templated: r["body"] for templated, r in zip(run.wire(), run.requests, strict=True)}
    room = parsed(CallsConferenceRequest, bodies["POST /calls/1/conferences"])
    assert (room.name, room.calls_configuration_id) == (f"room-{run.session['id']}", "flowengine-sim")
    play = parsed(CallsPlayRequest, bodies["POST /calls/1/calls/{caller}/play"])
    assert play.loop_count == 3 and isinstance(play.content, CallsFilePlayContent)
    assert play.content.file_id == "a8b4cc89-a2d7-4a4c-adaf-c7d921b9f52a"  # the flow's hold music
    dial = parsed(CallsAddNewCallRequest, bodies["POST /calls/1/conferences/{room}/call"]).call_request
    assert isinstance(dial.endpoint, CallsPhoneEndpoint)
    assert (dial.endpoint.phone_number, dial.var_from, dial.connect_timeout) == (CALLEE, CALLER_ID, 60)
    say = parsed(CallsSayRequest, bodies["POST /calls/1/calls/{caller}/say"])
    assert (say.text, say.language, say.loop_count) == (SORRY, "en", 1)  # the last say: the apology
    mute = parsed(CallsUpdateCallRequest, bodies["PATCH /calls/1/conferences/{room}/call/{caller}"])
    assert (mute.muted, mute.deaf) == (False, False)  # the last PATCH: resumed from hold


async def test_every_request_carries_the_api_key_header() -> None:
    seen: list[tuple[str, str | None, str | None]] = []

    async def record(request: web.Request, _: web.StreamResponse) -> None:
        if request.path.startswith("/calls/"):
            headers = request.headers
            seen.append((request.path, headers.get("Authorization"), headers.get("Content-Type")))

    case = scenario(*BRANCHES["callee-answers-then-hangs-up"][:2])
    prepare = lambda app: app.on_response_prepare.append(record)  # noqa: E731
    async with platform(case.parties, prepare=prepare, api_key="k-123") as side, \
            engine(side, "memory://") as running:
        side.simulator.webhook_url = running.webhook_url
        run = await call_in(side, running.service, case)
    assert run.session["state"] == "closing"
    assert len(seen) == len(run.requests) == 11
    assert {auth for _, auth, _ in seen} == {"App k-123"}
    with_body = [kind for path, _, kind in seen if not path.endswith("/hangup")]
    assert set(with_body) == {"application/json"}


async def test_a_wrong_api_key_is_refused_and_the_session_fails() -> None:
    case = scenario()
    run = await run_seed(case, settings={"api_key": "not-the-key"})
    assert run.wire() == ["POST /calls/1/calls/{caller}/answer", "POST /calls/1/calls/{caller}/hangup"]
    assert run.statuses() == [401, 401]
    assert (run.session["state"], run.session["status"]) == ("failed", "failed")
    answer = run.session["trace"][0]["commands"][0]
    assert answer[:2] == ["answer", "error"] and "Invalid login details" in answer[2]
    assert run.call("caller") == ("NO_ANSWER", "NO_ANSWER", "PLATFORM")  # nobody answered it
