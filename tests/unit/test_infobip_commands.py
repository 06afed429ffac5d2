"""Every request the Infobip adapter builds, checked against Infobip's official client (6.0.0).

The SDK's own request serializer is fed the SDK model parsed from our body: the method and path must be
the SDK's, and the model must keep every field we send (pydantic drops unknown ones, so a misspelt or
made-up field shows up as missing).
"""

from __future__ import annotations

from typing import Any

import pytest
from infobip_api_client.api.calls_api import CallsApi
from infobip_api_client.api_client import ApiClient
from infobip_api_client.configuration import Configuration
from infobip_api_client.models.call_request import CallRequest
from infobip_api_client.models.calls_add_existing_call_request import CallsAddExistingCallRequest
from infobip_api_client.models.calls_add_new_call_request import CallsAddNewCallRequest
from infobip_api_client.models.calls_answer_request import CallsAnswerRequest
from infobip_api_client.models.calls_conference_play_request import CallsConferencePlayRequest
from infobip_api_client.models.calls_conference_request import CallsConferenceRequest
from infobip_api_client.models.calls_conference_say_request import CallsConferenceSayRequest
from infobip_api_client.models.calls_connect_with_new_call_request import CallsConnectWithNewCallRequest
from infobip_api_client.models.calls_dtmf_capture_request import CallsDtmfCaptureRequest
from infobip_api_client.models.calls_dtmf_send_request import CallsDtmfSendRequest
from infobip_api_client.models.calls_hangup_request import CallsHangupRequest
from infobip_api_client.models.calls_play_request import CallsPlayRequest
from infobip_api_client.models.calls_recording_start_request import CallsRecordingStartRequest
from infobip_api_client.models.calls_say_request import CallsSayRequest
from infobip_api_client.models.calls_stop_play_request import CallsStopPlayRequest
from infobip_api_client.models.calls_update_call_request import CallsUpdateCallRequest

from flowengine.errors import ProviderError
from flowengine.flow.vocabulary import ACTIONS
from flowengine.providers.infobip import commands
from flowengine.providers.infobip.capabilities import CAPABILITIES
from flowengine.providers.wire import Request
from flowengine.runtime.ports import Endpoint, Media

HOST = "https://sdk.invalid"
API = CallsApi(ApiClient(Configuration(host=HOST)))
CONFIG = "cfg-1"
CALL = "call 1/x"  # a space and a slash: both must be escaped like the SDK does
CONF = "conf-7"
PHONE = Endpoint("phone", "+447415784323")
# Fields the SDK models fill in with their defaults; we may leave them out.
SDK_DEFAULTS = {"maxDuration", "connectOnEarlyMedia", "beep", "detectionTime"}


def contains(full: Any, part: Any, where: str = "body") -> None:
    if isinstance(part, dict):
        assert isinstance(full, dict), where
        for key, value in part.items():
            assert key in full, f"{where}.{key} is not a field of the SDK model"
            contains(full[key], value, f"{where}.{key}")
        extra = set(full) - set(part) - SDK_DEFAULTS
        assert not extra, f"{where}: the SDK adds {extra}"
    else:
        assert full == part, where


def check(request: Request, serializer: str, ids: tuple[str, ...], model: Any | None) -> Any:
    args: list[Any] = list(ids)
    if model is not None:
        assert request.body is not None
        parsed = model.from_dict(request.body)
        assert parsed is not None
        args.append(parsed)
    method, url, _headers, body, _form = getattr(API, f"_{serializer}_serialize")(*args, None, None, None, 0)
    assert (request.method, request.path) == (method, url.removeprefix(HOST))
    if model is None:
        assert request.body is None
    else:
        contains(body, request.body)
    return body


CASES: list[tuple[str, Request, str, tuple[str, ...], Any]] = [
    ("answer", commands.answer(CALL), "answer_call", (CALL,), CallsAnswerRequest),
    ("hangup", commands.hangup(CALL, None), "hangup_call", (CALL,), CallsHangupRequest),
    ("hangup busy", commands.hangup(CALL, "BUSY"), "hangup_call", (CALL,), CallsHangupRequest),
    ("hangup normal", commands.hangup(CALL, "NORMAL_HANGUP"), "hangup_call", (CALL,), CallsHangupRequest),
    ("say", commands.say(CALL, "Hello <break/>", "en-GB", "female", 2), "call_say_text", (CALL,),
     CallsSayRequest),
    ("say plain", commands.say(CALL, "Hi", "de", None, 1), "call_say_text", (CALL,), CallsSayRequest),
    ("play file", commands.play(CALL, Media(file_id="a8b4cc89"), 3), "call_play_file", (CALL,),
     CallsPlayRequest),
    ("play url", commands.play(CALL, Media(url="https://x.test/a.wav"), 1), "call_play_file", (CALL,),
     CallsPlayRequest),
    ("stop_play", commands.stop_play(CALL), "call_stop_playing_file", (CALL,), CallsStopPlayRequest),
    ("record", commands.record(CALL, None, False), "call_start_recording", (CALL,),
     CallsRecordingStartRequest),
    ("record all", commands.record(CALL, 90.5, True), "call_start_recording", (CALL,),
     CallsRecordingStartRequest),
    ("stop_record", commands.stop_record(CALL), "call_stop_recording", (CALL,), None),
    ("capture_dtmf", commands.capture_dtmf(CALL, 4, 10, "#", None, "en"), "call_capture_dtmf", (CALL,),
     CallsDtmfCaptureRequest),
    ("capture_dtmf prompt", commands.capture_dtmf(CALL, 1, 5.5, None, "Press 1", "fr"), "call_capture_dtmf",
     (CALL,), CallsDtmfCaptureRequest),
    ("send_dtmf", commands.send_dtmf(CALL, "12#"), "call_send_dtmf", (CALL,), CallsDtmfSendRequest),
    ("dial", commands.dial(PHONE, "4592457976", 30, None, calls_configuration_id=CONFIG), "create_call", (),
     CallRequest),
    ("dial webrtc", commands.dial(Endpoint("webrtc", "agent-7"), None, 90, None,
                                  calls_configuration_id=CONFIG),
     "create_call", (), CallRequest),
    ("dial sip", commands.dial(Endpoint("sip", "sip:bob@pbx.test"), "alice", 20, None,
                               calls_configuration_id=CONFIG, sip_trunk_id="trunk-1"),
     "create_call", (), CallRequest),
    ("dial connect", commands.dial(PHONE, "4592457976", 45, CALL, calls_configuration_id=CONFIG),
     "connect_with_new_call", (CALL,), CallsConnectWithNewCallRequest),
    ("dial amd", commands.dial(PHONE, "4592457976", 30, None, calls_configuration_id=CONFIG, key="s:1:0",
                               machine_detection=True), "create_call", (), CallRequest),
    ("dial connect amd", commands.dial(PHONE, "4592457976", 45, CALL, calls_configuration_id=CONFIG,
                                       machine_detection=True),
     "connect_with_new_call", (CALL,), CallsConnectWithNewCallRequest),
    ("conference_dial amd", commands.conference_dial(CONF, PHONE, "4592457976", 30, machine_detection=True),
     "add_new_conference_call", (CONF,), CallsAddNewCallRequest),
    ("conference_create", commands.conference_create("room-1", calls_configuration_id=CONFIG),
     "create_conference", (), CallsConferenceRequest),
    ("conference_create unnamed", commands.conference_create(None, calls_configuration_id=CONFIG),
     "create_conference", (), CallsConferenceRequest),
    ("conference_join", commands.conference_join(CONF, CALL), "add_existing_conference_call", (CONF, CALL),
     CallsAddExistingCallRequest),
    ("conference_dial", commands.conference_dial(CONF, PHONE, "4592457976", 75), "add_new_conference_call",
     (CONF,), CallsAddNewCallRequest),
    ("conference_say", commands.conference_say(CONF, "Welcome", "EN"), "conference_say_text", (CONF,),
     CallsConferenceSayRequest),
    ("conference_play", commands.conference_play(CONF, Media(file_id="f1"), 2), "conference_play_file",
     (CONF,), CallsConferencePlayRequest),
    ("conference_stop_play", commands.conference_stop_play(CONF), "conference_stop_playing_file", (CONF,),
     None),
    ("conference_hangup", commands.conference_hangup(CONF), "hangup_conference", (CONF,), None),
    ("conference_info", commands.conference_info(CONF), "get_conference", (CONF,), None),
    ("mute", commands.update_participant(CONF, CALL, muted=True), "update_conference_call", (CONF, CALL),
     CallsUpdateCallRequest),
    ("undeafen", commands.update_participant(CONF, CALL, deaf=False), "update_conference_call", (CONF, CALL),
     CallsUpdateCallRequest),
    ("kick", commands.kick(CONF, CALL), "remove_conference_call", (CONF, CALL), None),
]


@pytest.mark.parametrize(("request_", "serializer", "ids", "model"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_request_matches_the_official_sdk(request_: Request, serializer: str, ids: tuple[str, ...],
                                          model: Any) -> None:
    check(request_, serializer, ids, model)


@pytest.mark.parametrize(("reason", "established", "code"), [
    ("hangup", True, "NORMAL_HANGUP"), ("hangup", False, None),
    ("busy", False, "BUSY"), ("busy", True, None),
    ("rejected", False, "REJECTED"), ("rejected", True, None),
    (None, True, None), (None, False, None),
])
def test_the_hangup_code_fits_the_call_state(reason: str | None, established: bool, code: str | None) -> None:
    """Infobip's hangup reference: NORMAL_HANGUP ends an established call; BUSY, REJECTED and the other
    codes a call not yet established. A reason that does not fit the state is not sent as a code."""
    assert commands.hangup_code(reason, established) == code


def test_say_fields_round_trip() -> None:
    body = check(commands.say(CALL, "Hi", "en-gb", "male", 2), "call_say_text", (CALL,), CallsSayRequest)
    assert body == {"text": "Hi", "language": "en-gb", "loopCount": 2, "preferences": {"voiceGender": "MALE"}}


def test_dial_body_is_the_article_scenario_on_todays_api() -> None:
    request = commands.dial(PHONE, "4592457976", 60, None, calls_configuration_id=CONFIG)
    assert request.body == {
        "endpoint": {"type": "PHONE", "phoneNumber": "447415784323"},
        "from": "4592457976", "connectTimeout": 60, "callsConfigurationId": CONFIG,
    }


def test_conference_dial_clamps_the_timeout_to_infobips_maximum() -> None:
    request = commands.conference_dial(CONF, PHONE, None, 75)
    assert request.body == {"callRequest": {"endpoint": {"type": "PHONE", "phoneNumber": "447415784323"},
                                            "connectTimeout": 60}}
    assert commands.connect_timeout(0.2) == 1
    assert commands.connect_timeout(29.1) == 30


def test_join_is_a_put_not_the_articles_post() -> None:
    assert commands.conference_join(CONF, "c1") == Request("PUT", "/calls/1/conferences/conf-7/call/c1", {})


def test_capture_dtmf_converts_seconds_to_milliseconds() -> None:
    body = commands.capture_dtmf("c", 3, 7.25, "#", "Enter your PIN", "en").body
    assert body == {"maxLength": 3, "timeout": 7250, "terminator": "#",
                    "playContent": {"type": "TEXT", "text": "Enter your PIN", "language": "en"}}


def test_play_needs_media_and_sip_needs_a_trunk() -> None:
    with pytest.raises(ProviderError, match="file_id or a url"):
        commands.play(CALL, Media(), 1)
    with pytest.raises(ProviderError, match="SIP trunk"):
        commands.dial(Endpoint("sip", "bob"), None, 10, None, calls_configuration_id=CONFIG)


def test_capabilities_are_neutral_provider_actions() -> None:
    assert set(CAPABILITIES) - set(ACTIONS) == set()
    assert not any(ACTIONS[name].pure for name in CAPABILITIES)
    assert {"hold", "resume"} <= CAPABILITIES  # emulated: muted, deafened, music played to the call
    assert {"conference_info", "conference_join", "conference_dial", "kick", "mute"} <= CAPABILITIES


def test_machine_detection_is_asked_for_and_marked_in_the_custom_data() -> None:
    request = commands.dial(PHONE, None, 30, None, calls_configuration_id=CONFIG, key="s:1:0",
                            machine_detection=True)
    assert request.body is not None
    assert request.body["machineDetection"] == {"enabled": True}
    assert request.body["customData"] == {commands.KEY_FIELD: "s:1:0", commands.AMD_FIELD: "true"}
    plain = commands.conference_dial(CONF, PHONE, None, 30)
    assert plain.body is not None and "machineDetection" not in plain.body["callRequest"]
