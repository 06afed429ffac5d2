"""The Infobip simulator's calls over real HTTP on loopback: auth, errors, outbound and inbound call
lifecycles driven by scripted parties, media, DTMF, recording and fault injection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from flowengine.runtime.clock import VirtualClock
from flowengine.simulator import Faults, InfobipSimulator, PartyBook, PartyScript
from flowengine.simulator.infobip.model import iso
from flowengine.simulator.testing import Harness, harness

AUTH = {"Authorization": "App secret"}
ANSWERS, NEVER, BUSY, REJECTS, UNREACHABLE = (
    "447000000001",
    "447000000002",
    "447000000003",
    "447000000004",
    "447000000005",
)
HANGS_UP, PRESSES = "447000000006", "447000000007"
BOOK = PartyBook(
    {
        NEVER: PartyScript(answer_after=None),
        BUSY: PartyScript(busy=True),
        REJECTS: PartyScript(reject=True, answer_after=3),
        UNREACHABLE: PartyScript(unreachable=True),
        HANGS_UP: PartyScript(answer_after=1, hangup_after=30),
        PRESSES: PartyScript(answer_after=1, press=((2.0, "1"), (3.0, "23#"))),
    }
)
H = Harness[InfobipSimulator]


def make(clock: VirtualClock, url: str, **options: Any) -> InfobipSimulator:
    return InfobipSimulator(clock, webhook_url=url, api_key="secret", parties=BOOK, **options)


@pytest.fixture
async def h() -> AsyncIterator[H]:
    async with harness(make, headers=AUTH) as running:
        yield running


def call_request(number: str, timeout: int = 60, **extra: Any) -> dict[str, Any]:
    return {
        "endpoint": {"type": "PHONE", "phoneNumber": number},
        "from": "4592457976",
        "connectTimeout": timeout,
        "callsConfigurationId": "cfg-1",
        **extra,
    }


async def dial(h: H, number: str, timeout: int = 60) -> str:
    status, body = await h.client.request("POST", "/calls/1/calls", call_request(number, timeout))
    assert status == 201, body
    return str(body["id"])


async def inbound_answered(h: H, script: PartyScript | None = None) -> str:
    call_id = await h.sim.place_inbound_call(from_="447415784323", to="4592457976", script=script)
    await h.wait_events("CALL_RECEIVED")
    assert await h.client.request("POST", f"/calls/1/calls/{call_id}/answer", {}) == (
        200,
        {"status": "PENDING"},
    )
    await h.wait_events("CALL_ESTABLISHED")
    return call_id


def error(message_id: str, text: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    exception: dict[str, Any] = {"messageId": message_id, "text": text}
    if fields:
        exception["validationErrors"] = fields
    return {"requestError": {"serviceException": exception}}


async def test_requests_need_the_api_key(h: H) -> None:
    unauthorized = (401, error("UNAUTHORIZED", "Invalid login details"))
    assert await h.client.request("GET", "/calls/1/calls/x", headers={"Authorization": ""}) == unauthorized
    assert (
        await h.client.request("GET", "/calls/1/calls/x", headers={"Authorization": "App nope"})
        == unauthorized
    )
    assert (await h.client.request("GET", "/calls/1/calls/x"))[0] == 404


async def test_basic_auth_when_configured() -> None:
    async with harness(lambda c, u: make(c, u, basic_auth=("user", "pw"))) as h:
        good = "Basic " + base64.b64encode(b"user:pw").decode()
        bad = "Basic " + base64.b64encode(b"user:no").decode()
        assert (await h.client.request("GET", "/calls/1/calls/x", headers={"Authorization": good}))[0] == 404
        assert (await h.client.request("GET", "/calls/1/calls/x", headers={"Authorization": bad}))[0] == 401


async def test_outbound_call_rings_then_is_established(h: H) -> None:
    status, body = await h.client.request("POST", "/calls/1/calls", call_request(ANSWERS))
    assert status == 201
    assert (body["state"], body["direction"], body["to"], body["callsConfigurationId"]) == (
        "CALLING",
        "OUTBOUND",
        ANSWERS,
        "cfg-1",
    )
    await h.wait_events("CALL_ESTABLISHED")
    assert h.names() == ["CALL_RINGING", "CALL_ESTABLISHED"]
    ringing, established = (e["body"] for e in h.sim.events)
    start = h.clock.now() - h.elapsed()
    assert ringing["timestamp"] == iso(start + 0.5) and established["timestamp"] == iso(start + 2.0)
    assert established["callId"] == body["id"] and established["callsConfigurationId"] == "cfg-1"
    assert established["properties"]["call"]["state"] == "ESTABLISHED"
    assert all(e["status"] == 200 for e in h.sim.events)
    status, got = await h.client.request("GET", f"/calls/1/calls/{body['id']}")
    assert (status, got["state"], got["answerTime"]) == (200, "ESTABLISHED", iso(start + 2.0))
    assert h.sim.calls[body["id"]].state == "ESTABLISHED"


async def test_sixty_second_no_answer_runs_in_virtual_time(h: H) -> None:
    started = time.monotonic()
    call_id = await dial(h, NEVER, timeout=60)
    await h.wait_events("CALL_FAILED")
    assert time.monotonic() - started < 1.0
    assert h.names() == ["CALL_RINGING", "CALL_FAILED"]
    log = h.bodies("CALL_FAILED")[0]["properties"]["callLog"]
    assert (log["state"], log["errorCode"]["name"], log["hangupSource"], log["duration"]) == (
        "NO_ANSWER",
        "NO_ANSWER",
        "PLATFORM",
        0,
    )
    assert log["endTime"] == iso(h.clock.now() - h.elapsed() + 60)
    assert h.sim.calls[call_id].state == "NO_ANSWER"
    assert (await h.client.request("GET", f"/calls/1/calls/{call_id}"))[0] == 404


@pytest.mark.parametrize(
    ("number", "names", "state", "code", "source"),
    [
        (BUSY, ["CALL_FAILED"], "BUSY", "BUSY", "ENDPOINT"),
        (REJECTS, ["CALL_RINGING", "CALL_FAILED"], "FAILED", "REJECTED", "ENDPOINT"),
        (UNREACHABLE, ["CALL_FAILED"], "FAILED", "DESTINATION_UNAVAILABLE", "PLATFORM"),
    ],
)
async def test_failed_dials(h: H, number: str, names: list[str], state: str, code: str, source: str) -> None:
    call_id = await dial(h, number)
    await h.wait_events("CALL_FAILED")
    assert h.names() == names
    log = h.bodies("CALL_FAILED")[0]["properties"]["callLog"]
    assert (log["state"], log["errorCode"]["name"], log["hangupSource"]) == (state, code, source)
    assert h.sim.calls[call_id].state == state


async def test_party_hangs_up_after_its_script(h: H) -> None:
    await dial(h, HANGS_UP)
    await h.wait_events("CALL_FINISHED")
    assert h.names() == ["CALL_RINGING", "CALL_ESTABLISHED", "CALL_FINISHED"]
    log = h.bodies("CALL_FINISHED")[0]["properties"]["callLog"]
    assert (log["errorCode"]["name"], log["hangupSource"], log["duration"]) == (
        "NORMAL_HANGUP",
        "ENDPOINT",
        30,
    )
    assert log["errorCode"] == {
        "id": 10000,
        "name": "NORMAL_HANGUP",
        "description": "The call has ended with hangup initiated by caller, callee or API",
    }


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            {k: v for k, v in call_request(ANSWERS).items() if k != "callsConfigurationId"},
            {"callsConfigurationId": ["must not be null"]},
        ),
        (call_request(ANSWERS, timeout=61), {"connectTimeout": ["must be less than or equal to 60"]}),
        (
            {**call_request(ANSWERS), "endpoint": {"type": "PHONE"}},
            {"endpoint.phoneNumber": ["must not be null"]},
        ),
        ({**call_request(ANSWERS), "endpoint": {"type": "FAX"}}, {"endpoint.type": ["invalid value"]}),
        ({"callsConfigurationId": "c"}, {"endpoint": ["must not be null"]}),
        ([1, 2], {"body": ["must be a JSON object"]}),
    ],
)
async def test_create_call_validation(h: H, body: Any, fields: dict[str, list[str]]) -> None:
    assert await h.client.request("POST", "/calls/1/calls", body) == (
        400,
        error("BAD_REQUEST", "Bad request", fields),
    )
    assert h.sim.calls == {}


async def test_malformed_json_and_unknown_resources(h: H) -> None:
    assert await h.client.request("POST", "/calls/1/calls", raw=b'{"endpoint":') == (
        400,
        error("BAD_REQUEST", "Request body is not valid JSON."),
    )
    assert await h.client.request("POST", "/calls/1/calls/nope/say", {"text": "x", "language": "en"}) == (
        404,
        error("NOT_FOUND", "Call with ID nope not found."),
    )
    assert await h.client.request("GET", "/calls/1/conferences/nope") == (
        404,
        error("NOT_FOUND", "Conference with ID nope not found."),
    )
    assert await h.client.request("GET", "/calls/1/unknown") == (
        404,
        error("NOT_FOUND", "Resource not found."),
    )
    status, body = await h.client.request("DELETE", "/calls/1/calls")
    assert status == 405 and body["requestError"]["serviceException"]["messageId"] == "METHOD_NOT_ALLOWED"


async def test_say_needs_text_and_language_and_an_established_call(h: H) -> None:
    call_id = await dial(h, NEVER)
    say = f"/calls/1/calls/{call_id}/say"
    fields = {"text": ["must not be null"], "language": ["must not be null"]}
    assert await h.client.request("POST", say, {}) == (400, error("BAD_REQUEST", "Bad request", fields))
    status, body = await h.client.request("POST", say, {"text": "Hi", "language": "en"})
    assert status == 400 and "needs ESTABLISHED" in body["requestError"]["serviceException"]["text"]
    status, body = await h.client.request("POST", say, {"text": "Hi", "language": "xx", "speechRate": 3})
    assert body["requestError"]["serviceException"]["validationErrors"] == {
        "language": ["invalid value"],
        "speechRate": ["must be between 0.5 and 2.0"],
    }


async def test_inbound_call_answer_media_and_hangup(h: H) -> None:
    call_id = await inbound_answered(h)
    received = h.bodies("CALL_RECEIVED")[0]
    call = received["properties"]["call"]
    assert (call["direction"], call["state"], call["from"], call["to"]) == (
        "INBOUND",
        "RINGING",
        "447415784323",
        "4592457976",
    )
    assert received["properties"]["apiBaseUrl"] == h.base_url
    base = f"/calls/1/calls/{call_id}"

    said_at = h.clock.now()
    assert await h.client.request("POST", base + "/say", {"text": "Hello", "language": "en"}) == (
        200,
        {"status": "PENDING"},
    )
    await h.wait_events("SAY_FINISHED")
    said = h.bodies("SAY_FINISHED")[0]
    assert said["properties"] == {"duration": 350, "playedCompletely": True, "customData": None}
    assert said["timestamp"] == iso(said_at + 0.35)

    music = {"loopCount": 3, "content": {"type": "FILE", "fileId": "a8b4cc89"}}
    await h.client.request("POST", base + "/play", music)
    await h.advance(2)
    await h.client.request("POST", base + "/stop-play", {})
    await h.wait_events("PLAY_FINISHED")
    assert h.bodies("PLAY_FINISHED")[0]["properties"]["playedCompletely"] is False

    status, body = await h.client.request("POST", base + "/hangup", {})
    assert (status, body["state"]) == (200, "FINISHED")
    await h.wait_events("CALL_FINISHED")
    log = h.bodies("CALL_FINISHED")[0]["properties"]["callLog"]
    assert (log["errorCode"]["name"], log["hangupSource"], log["direction"]) == (
        "NORMAL_HANGUP",
        "API",
        "INBOUND",
    )
    assert h.names() == [
        "CALL_RECEIVED",
        "CALL_ESTABLISHED",
        "SAY_FINISHED",
        "PLAY_FINISHED",
        "CALL_FINISHED",
    ]


async def test_play_loops_take_their_time(h: H) -> None:
    call_id = await inbound_answered(h)
    start = h.clock.now()
    await h.client.request(
        "POST",
        f"/calls/1/calls/{call_id}/play",
        {"loopCount": 2, "content": {"type": "URL", "fileUrl": "https://x/y.wav"}},
    )
    await h.wait_events("PLAY_FINISHED")
    finished = h.bodies("PLAY_FINISHED")[0]
    assert finished["properties"]["playedCompletely"] is True and finished["properties"]["duration"] == 10000
    assert finished["timestamp"] == iso(start + 10)


async def test_unanswered_inbound_call_gives_up(h: H) -> None:
    call_id = await h.sim.place_inbound_call(from_="447415784323", to="4592457976")
    await h.wait_events("CALL_FAILED")
    assert h.names() == ["CALL_RECEIVED", "CALL_FAILED"]
    assert h.elapsed() == pytest.approx(60.05)
    assert h.sim.calls[call_id].state == "NO_ANSWER"


async def test_hangup_before_answer(h: H) -> None:
    outbound = await dial(h, NEVER)
    inbound = await h.sim.place_inbound_call(from_="447415784323", to="4592457976")
    await h.client.request("POST", f"/calls/1/calls/{outbound}/hangup", {})
    await h.client.request("POST", f"/calls/1/calls/{inbound}/hangup", {"errorCode": "BUSY"})
    await h.until(lambda: len(h.bodies("CALL_FAILED")) == 2)
    assert (h.sim.calls[outbound].state, h.sim.calls[inbound].state) == ("CANCELLED", "BUSY")
    codes = [b["properties"]["callLog"]["errorCode"]["name"] for b in h.bodies("CALL_FAILED")]
    assert codes == ["CANCELLED", "BUSY"]
    status, body = await h.client.request("POST", f"/calls/1/calls/{outbound}/hangup", {"errorCode": "NOPE"})
    assert status == 400 and body["requestError"]["serviceException"]["validationErrors"] == {
        "errorCode": ["invalid value"]
    }


async def test_a_hangup_code_must_fit_the_call_state(h: H) -> None:
    """Infobip's hangup reference: NORMAL_HANGUP needs an established call; BUSY, REJECTED and the other
    codes a call not yet established. A code that does not fit is refused and the call is left as it was."""
    ringing = await dial(h, NEVER)
    status, body = await h.client.request("POST", f"/calls/1/calls/{ringing}/hangup",
                                          {"errorCode": "NORMAL_HANGUP"})
    assert status == 400 and "NORMAL_HANGUP needs an established call" in str(body)
    assert not h.sim.calls[ringing].ended
    up = await inbound_answered(h)
    for code in ("BUSY", "REJECTED", "NO_ANSWER"):
        status, body = await h.client.request("POST", f"/calls/1/calls/{up}/hangup", {"errorCode": code})
        assert status == 400 and f"{code} needs a call not yet established" in str(body)
    assert h.sim.calls[up].state == "ESTABLISHED"
    for call_id, code in ((up, "NORMAL_HANGUP"), (ringing, "BUSY")):
        status, _ = await h.client.request("POST", f"/calls/1/calls/{call_id}/hangup", {"errorCode": code})
        assert status == 200
    assert (h.sim.calls[up].state, h.sim.calls[ringing].state) == ("FINISHED", "BUSY")


async def test_dtmf_capture_uses_the_party_script(h: H) -> None:
    call_id = await dial(h, PRESSES)
    await h.wait_events("CALL_ESTABLISHED")
    capture = {"maxLength": 3, "timeout": 10000, "terminator": "#", "customData": {"k": "v"}}
    assert await h.client.request("POST", f"/calls/1/calls/{call_id}/capture/dtmf", capture) == (
        200,
        {"status": "PENDING"},
    )
    await h.wait_events("DTMF_CAPTURED")
    assert h.bodies("DTMF_CAPTURED")[0]["properties"] == {
        "dtmf": "123",
        "timeout": False,
        "customData": {"k": "v"},
    }
    await h.client.request(
        "POST", f"/calls/1/calls/{call_id}/capture/dtmf", {"maxLength": 2, "timeout": 5000}
    )
    await h.until(lambda: len(h.bodies("DTMF_CAPTURED")) == 2)
    assert h.bodies("DTMF_CAPTURED")[1]["properties"] == {"dtmf": "#", "timeout": True, "customData": None}
    status, body = await h.client.request("POST", f"/calls/1/calls/{call_id}/capture/dtmf", {"maxLength": 2})
    assert status == 400 and body["requestError"]["serviceException"]["validationErrors"] == {
        "timeout": ["must not be null"]
    }


async def test_recording_ready_after_stop_and_after_hangup(h: H) -> None:
    call_id = await inbound_answered(h)
    base = f"/calls/1/calls/{call_id}"
    await h.client.request("POST", base + "/start-recording", {"recording": {"recordingType": "AUDIO"}})
    await h.advance(5)
    await h.client.request("POST", base + "/stop-recording", {})
    await h.wait_events("CALL_RECORDING_READY")
    recording = h.bodies("CALL_RECORDING_READY")[0]["properties"]["recording"]
    assert (recording["callId"], recording["status"], recording["files"][0]["duration"]) == (
        call_id,
        "SUCCESSFUL",
        5,
    )
    assert (await h.client.request("POST", base + "/stop-recording", {}))[0] == 400
    await h.client.request("POST", base + "/start-recording", {})
    await h.client.request("POST", base + "/hangup", {})
    await h.until(lambda: len(h.bodies("CALL_RECORDING_READY")) == 2)
    assert h.names()[-2:] == ["CALL_FINISHED", "CALL_RECORDING_READY"]


async def test_injected_faults_answer_in_the_platform_shape(h: H) -> None:
    h.sim.faults = Faults(error_rate=1.0)
    assert await h.client.request("POST", "/calls/1/calls", call_request(ANSWERS)) == (
        503,
        error("SERVICE_UNAVAILABLE", "Injected fault: service unavailable."),
    )
    h.sim.faults = Faults(error_rate=1.0, error_status=500)
    assert (await h.client.request("GET", "/calls/1/calls/x"))[1] == error(
        "GENERAL_ERROR", "Injected fault: service unavailable."
    )
    h.sim.faults = Faults(latency=0.05)
    started = time.monotonic()
    assert (await h.client.request("POST", "/calls/1/calls", call_request(ANSWERS)))[0] == 201
    assert time.monotonic() - started >= 0.05
    assert [r.status for r in h.sim.requests] == [503, 500, 201]
    with pytest.raises(ValueError, match="error_rate"):
        Faults(error_rate=2)


async def test_request_log(h: H) -> None:
    call_id = await dial(h, NEVER)
    await h.client.request("GET", f"/calls/1/calls/{call_id}")
    first, second = h.sim.requests
    assert (first.method, first.path, first.status, first.body["from"]) == (
        "POST",
        "/calls/1/calls",
        201,
        "4592457976",
    )
    assert (second.method, second.path, second.status, second.body) == (
        "GET",
        f"/calls/1/calls/{call_id}",
        200,
        None,
    )


async def test_webhook_headers_and_hmac_signature() -> None:
    def with_security(clock: VirtualClock, url: str) -> InfobipSimulator:
        return make(
            clock, url, webhook_headers={"Authorization": "Basic dTpw"}, webhook_hmac=("X-Signature", "k3y")
        )

    async with harness(with_security, headers=AUTH) as h:
        await h.sim.place_inbound_call(from_="447415784323", to="4592457976")
        await h.wait_events("CALL_RECEIVED")
        got = h.hook.received[0]
        assert got.headers["Authorization"] == "Basic dTpw"
        assert got.headers["X-Signature"] == hmac.new(b"k3y", got.raw, hashlib.sha256).hexdigest()
        assert got.path == "/webhook" and got.body == h.sim.events[0]["body"]


async def test_unplayable_file_gives_an_error_event() -> None:
    async with harness(lambda c, u: make(c, u, missing_files={"gone.wav"}), headers=AUTH) as h:
        call_id = await inbound_answered(h)
        play = {"content": {"type": "URL", "fileUrl": "gone.wav"}}
        assert await h.client.request("POST", f"/calls/1/calls/{call_id}/play", play) == (
            200,
            {"status": "PENDING"},
        )
        await h.wait_events("ERROR")
        error_event = h.bodies("ERROR")[0]
        assert (error_event["callId"], error_event["properties"]["actionType"]) == (call_id, "PLAY")
        assert error_event["properties"]["errorCode"] == "FILE_NOT_FOUND"
        assert "PLAY_FINISHED" not in h.names()


async def test_machine_detection_reports_who_answered_after_listening(h: H) -> None:
    h.sim.parties.set("447000000010", PartyScript(answer_after=1, machine=True))
    status, body = await h.client.request("POST", "/calls/1/calls", call_request(
        "447000000010", machineDetection={"enabled": True, "detectionTime": 2.5}))
    assert status == 201, body
    await h.wait_events("MACHINE_DETECTION_FINISHED")
    delivered = {e["body"]["type"]: e for e in h.sim.events}
    detected = delivered["MACHINE_DETECTION_FINISHED"]
    assert detected["body"]["properties"]["detectionResult"] == "MACHINE"
    assert detected["at"] - delivered["CALL_ESTABLISHED"]["at"] == pytest.approx(2.5, abs=0.1)
    status, call = await h.client.request("GET", f"/calls/1/calls/{body['id']}")
    assert call["machineDetection"] == {"detectionResult": "MACHINE"}
    # A call dialled without it hears nothing of the kind.
    await dial(h, ANSWERS)
    await h.until(lambda: h.names().count("CALL_ESTABLISHED") == 2)
    await h.advance(10)
    assert h.names().count("MACHINE_DETECTION_FINISHED") == 1


async def test_machine_detection_without_enabled_is_a_400(h: H) -> None:
    status, body = await h.client.request("POST", "/calls/1/calls", call_request(
        ANSWERS, machineDetection={"detectionTime": 9}))
    assert status == 400
    fields = body["requestError"]["serviceException"]["validationErrors"]
    assert set(fields) == {"machineDetection.enabled", "machineDetection.detectionTime"}
