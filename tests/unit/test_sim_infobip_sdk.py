"""The Infobip simulator against the official SDK models (infobip-api-python-client 6.0.0): requests
built by the SDK are accepted, and responses and event payloads parse with the SDK's response models."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from infobip_api_client.models.call import Call
from infobip_api_client.models.call_endpoint_type import CallEndpointType
from infobip_api_client.models.call_log import CallLog
from infobip_api_client.models.call_recording import CallRecording
from infobip_api_client.models.call_request import CallRequest
from infobip_api_client.models.calls_action_call_request import CallsActionCallRequest
from infobip_api_client.models.calls_action_response import CallsActionResponse
from infobip_api_client.models.calls_add_new_call_request import CallsAddNewCallRequest
from infobip_api_client.models.calls_conference import CallsConference
from infobip_api_client.models.calls_conference_and_call import CallsConferenceAndCall
from infobip_api_client.models.calls_conference_request import CallsConferenceRequest
from infobip_api_client.models.calls_dtmf_capture_request import CallsDtmfCaptureRequest
from infobip_api_client.models.calls_file_play_content import CallsFilePlayContent
from infobip_api_client.models.calls_language import CallsLanguage
from infobip_api_client.models.calls_participant import CallsParticipant
from infobip_api_client.models.calls_phone_endpoint import CallsPhoneEndpoint
from infobip_api_client.models.calls_play_content_type import CallsPlayContentType
from infobip_api_client.models.calls_play_request import CallsPlayRequest
from infobip_api_client.models.calls_say_request import CallsSayRequest
from infobip_api_client.models.calls_update_call_request import CallsUpdateCallRequest
from pydantic import BaseModel

from flowengine.runtime.clock import VirtualClock
from flowengine.simulator import InfobipSimulator, PartyBook, PartyScript
from flowengine.simulator.testing import Harness, harness

CALLEE, PRESSER = "41792036727", "41792036728"
H = Harness[InfobipSimulator]


def make(clock: VirtualClock, url: str) -> InfobipSimulator:
    book = PartyBook({PRESSER: PartyScript(answer_after=1, press=((1.0, "42"),))})
    return InfobipSimulator(clock, webhook_url=url, api_key="secret", parties=book)


@pytest.fixture
async def h() -> AsyncIterator[H]:
    async with harness(make, headers={"Authorization": "App secret"}) as running:
        yield running


def wire(model: BaseModel) -> Any:
    """What the SDK would put on the wire."""
    return json.loads(model.to_json())  # type: ignore[attr-defined]


async def send(h: H, method: str, path: str, model: BaseModel | None, status: int) -> Any:
    got_status, body = await h.client.request(method, path, wire(model) if model is not None else {})
    assert got_status == status, body
    return body


async def test_calls_built_and_parsed_with_the_sdk(h: H) -> None:
    request = CallRequest(
        endpoint=CallsPhoneEndpoint(type=CallEndpointType.PHONE, phone_number=PRESSER),
        var_from="41793026834",
        connect_timeout=30,
        calls_configuration_id="cfg",
        custom_data={"role": "callee"},
    )
    call = Call.from_dict(await send(h, "POST", "/calls/1/calls", request, 201))
    assert call is not None and call.state == "CALLING" and call.custom_data == {"role": "callee"}
    await h.wait_events("CALL_ESTABLISHED")
    for body in h.bodies("CALL_RINGING") + h.bodies("CALL_ESTABLISHED"):
        parsed = Call.from_dict(body["properties"]["call"])
        assert parsed is not None and parsed.id == call.id

    base = f"/calls/1/calls/{call.id}"
    say = CallsSayRequest(
        text="Hello from the SDK", language=CallsLanguage.EN_MINUS_GB, speech_rate=1.5, loop_count=2
    )
    assert CallsActionResponse.from_dict(
        await send(h, "POST", base + "/say", say, 200)
    ) == CallsActionResponse(status="PENDING")
    play = CallsPlayRequest(
        loop_count=3,
        content=CallsFilePlayContent(
            type=CallsPlayContentType.FILE, file_id="a8b4cc89-a2d7-4a4c-adaf-c7d921b9f52a"
        ),
    )
    await send(h, "POST", base + "/play", play, 200)
    capture = CallsDtmfCaptureRequest(max_length=2, timeout=5000)
    await send(h, "POST", base + "/capture/dtmf", capture, 200)
    await h.wait_events("DTMF_CAPTURED", "PLAY_FINISHED")
    assert h.bodies("DTMF_CAPTURED")[0]["properties"]["dtmf"] == "42"
    assert h.bodies("SAY_FINISHED")[0]["properties"]["playedCompletely"] is False  # the play cut it short

    await send(h, "POST", base + "/start-recording", None, 200)
    hung = Call.from_dict(await send(h, "POST", base + "/hangup", None, 200))
    assert hung is not None and hung.state == "FINISHED"
    await h.wait_events("CALL_RECORDING_READY")
    log = CallLog.from_dict(h.bodies("CALL_FINISHED")[0]["properties"]["callLog"])
    assert log is not None and log.error_code is not None and log.error_code.name == "NORMAL_HANGUP"
    assert log.hangup_source == "API" and log.duration == 15  # three 5 s loops of the file
    recording = CallRecording.from_dict(h.bodies("CALL_RECORDING_READY")[0]["properties"]["recording"])
    assert (
        recording is not None
        and recording.call_id == call.id
        and recording.files
        and recording.files[0].file_format == "WAV"
    )


async def test_conferences_built_and_parsed_with_the_sdk(h: H) -> None:
    created = await send(
        h,
        "POST",
        "/calls/1/conferences",
        CallsConferenceRequest(name="room", calls_configuration_id="cfg"),
        201,
    )
    conference = CallsConference.from_dict(created)
    assert conference is not None and conference.name == "room" and conference.calls_configuration_id == "cfg"

    add = CallsAddNewCallRequest(
        call_request=CallsActionCallRequest(
            endpoint=CallsPhoneEndpoint(type=CallEndpointType.PHONE, phone_number=CALLEE),
            var_from="41793026834",
            connect_timeout=30,
            max_duration=28800,
        ),
        connect_on_early_media=False,
    )
    both = CallsConferenceAndCall.from_dict(
        await send(h, "POST", f"/calls/1/conferences/{conference.id}/call", add, 200)
    )
    assert both is not None and both.call is not None and both.conference is not None
    assert both.conference.participants and both.conference.participants[0].state == "JOINING"
    await h.wait_events("PARTICIPANT_JOINED")
    for name in ("PARTICIPANT_JOINING", "PARTICIPANT_JOINED"):
        participant = CallsParticipant.from_dict(h.bodies(name)[0]["properties"]["participant"])
        assert participant is not None and participant.call_id == both.call.id

    update = CallsUpdateCallRequest(muted=True)
    await send(h, "PATCH", f"/calls/1/conferences/{conference.id}/call/{both.call.id}", update, 200)
    got = CallsConference.from_dict(await send(h, "GET", f"/calls/1/conferences/{conference.id}", None, 200))
    assert got is not None and got.participants is not None
    media = got.participants[0].media
    assert media is not None and media.audio is not None and media.audio.muted is True

    await send(h, "POST", f"/calls/1/conferences/{conference.id}/hangup", None, 200)
    await h.wait_events("CONFERENCE_FINISHED")
    finished = CallsConference.from_dict(h.bodies("CONFERENCE_FINISHED")[0]["properties"]["conference"])
    assert finished is not None and finished.id == conference.id
    removed = CallsParticipant.from_dict(h.bodies("PARTICIPANT_REMOVED")[0]["properties"]["participant"])
    assert removed is not None and removed.state == "LEFT" and removed.leave_time is not None
