"""Sinch requests from neutral values: paths, methods and bodies as the wire reference gives them."""

from __future__ import annotations

import pytest

from flowengine.errors import ProviderError
from flowengine.providers.sinch import commands, svaml
from flowengine.providers.sinch.callbacks import CalloutTag
from flowengine.providers.wire import Request
from flowengine.runtime.ports import Endpoint
from flowengine.simulator.sinch.callouts import check_callout

PHONE = Endpoint("phone", "447415784323")


@pytest.mark.parametrize(
    ("address", "number"),
    [
        ("447415784323", "+447415784323"),
        ("+447415784323", "+447415784323"),
        ("0044 7415-784323", "+447415784323"),
    ],
)
def test_numbers_are_e164(address: str, number: str) -> None:
    assert commands.number(address) == number


def test_destinations() -> None:
    assert commands.destination(PHONE) == {"type": "number", "endpoint": "+447415784323"}
    assert commands.destination(Endpoint("sip", "sip:alice@example.com")) == {
        "type": "sip",
        "endpoint": "alice@example.com",
    }
    assert commands.destination(Endpoint("user", "agent-7")) == {"type": "username", "endpoint": "agent-7"}
    with pytest.raises(ProviderError):
        commands.destination(Endpoint("fax", "1"))  # type: ignore[arg-type]


def test_conference_callout_reports_back_and_carries_the_conference() -> None:
    request = commands.conference_callout(
        "room/1", PHONE, "4592457976", moh="music2", greeting="Hi", locale="en-US"
    )
    assert (request.method, request.path) == ("POST", "/calling/v1/callouts")
    assert request.body == {
        "method": "conferenceCallout",
        "conferenceCallout": {
            "cli": "+4592457976",
            "destination": {"type": "number", "endpoint": "+447415784323"},
            "conferenceId": "room/1",
            "enableAce": True,
            "enableDice": True,
            "custom": CalloutTag("room/1").encode(),
            "mohClass": "music2",
            "greeting": "Hi",
            "locale": "en-US",
        },
    }
    check_callout(request.body)  # the simulator's request checks accept it


def test_conference_callout_asking_for_the_participant_keys_also_enables_pie() -> None:
    dtmf = {"mode": "detect", "maxDigits": 1, "timeoutMills": 3000}
    request = commands.conference_callout("room", PHONE, None, dtmf=dtmf)
    assert request.body is not None
    spec = request.body["conferenceCallout"]
    assert (spec["conferenceDtmfOptions"], spec["enablePie"]) == (dtmf, True)
    check_callout(request.body)


def test_custom_and_tts_callouts() -> None:
    custom = commands.custom_callout(PHONE, None)
    assert custom.body == {
        "method": "customCallout",
        "customCallout": {
            "destination": {"type": "number", "endpoint": "+447415784323"},
            "custom": CalloutTag().encode(),
        },
    }
    tts = commands.tts_callout(PHONE, "+4592457976", "Your code is 1234", "en-US")
    assert tts.body is not None and tts.body["ttsCallout"] == {
        "cli": "+4592457976",
        "destination": {"type": "number", "endpoint": "+447415784323"},
        "text": "Your code is 1234",
        "locale": "en-US",
        "enableDice": True,
        "custom": CalloutTag().encode(),
    }
    for request in (custom, tts):
        assert request.body is not None
        check_callout(request.body)


def test_call_requests_quote_ids_into_one_segment() -> None:
    assert commands.get_call("a/b c") == Request("GET", "/calling/v1/calls/id/a%2Fb%20c")
    update = commands.update_call("c-1", [svaml.say("Bye", "en-US")], svaml.hangup())
    assert update == Request(
        "PATCH",
        "/calling/v1/calls/id/c-1",
        {"instructions": [{"name": "say", "text": "Bye", "locale": "en-US"}], "action": {"name": "hangup"}},
    )
    leg = commands.manage_leg("c-1", "caller", [svaml.play_files(["f"], "en-US")])
    assert leg == Request(
        "PATCH",
        "/calling/v1/calls/id/c-1/leg/caller",
        {"instructions": [{"name": "playFiles", "ids": ["f"], "locale": "en-US"}],
         "action": {"name": "continue"}},
    )


def test_a_leg_update_carries_exactly_one_action() -> None:
    """Sinch's SVAML reference (developers.sinch.com/docs/voice/api-reference/svaml): "A SVAML object must
    contain exactly one action"; PATCH …/leg/{leg} takes SVAML (Manage Call with callLeg), so a say on a
    leg carries ``continue``: the call goes on as it was."""
    leg = commands.manage_leg("c-1", "callee", [svaml.say("Hi", "en-US")])
    assert leg.body is not None and leg.body["action"] == {"name": "continue"}


def test_conference_requests() -> None:
    base = "/calling/v1/conferences/id/room-1"
    assert commands.conference_info("room-1") == Request("GET", base)
    assert commands.kick_all("room-1") == Request("DELETE", base)
    assert commands.kick_participant("room-1", "c-1") == Request("DELETE", f"{base}/c-1")
    assert commands.manage_participant("room-1", "c-1", "mute") == Request(
        "PATCH", f"{base}/c-1", {"command": "mute"}
    )
    assert commands.manage_participant("room-1", "c-1", "onhold", "music3").body == {
        "command": "onhold",
        "moh": "music3",
    }
    # Sinch refuses moh with anything but onhold, so it is never sent with resume.
    assert commands.manage_participant("room-1", "c-1", "resume", "music3").body == {"command": "resume"}
