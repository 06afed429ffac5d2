"""SVAML: the reply builder's per-event rules (instructions allowed, exactly one action, the default
action), the neutral-value helpers, and the channel's reply for ICE/ACE/PIE callbacks (no HTTP here:
every command in these tests fits the reply or is refused before any request)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowengine.errors import ProviderError, ProviderUnsupported
from flowengine.providers.sinch import SinchAdapter, SinchSettings, svaml
from flowengine.providers.sinch.callbacks import bridge_id
from flowengine.providers.sinch.svaml import ReplyBuilder
from flowengine.runtime.events import Event
from flowengine.runtime.ports import Endpoint, Media, ProviderCommand
from flowengine.simulator.sinch.svaml import parse_svaml

SECRET = "BeIukql3pTKJ8RGL5zo0DA=="
SAY = svaml.say("Hello", "en-US")
DETECT = {"mode": "detect", "maxDigits": 1, "timeoutMills": 3000}


def test_default_actions_park_an_ice_and_continue_ace_and_pie() -> None:
    assert ReplyBuilder("ice").build() == {"instructions": [], "action": {"name": "park"}}
    assert ReplyBuilder("ace").build()["action"] == {"name": "continue"}
    assert ReplyBuilder("pie").build()["action"] == {"name": "continue"}
    with pytest.raises(ValueError):
        ReplyBuilder("dice")


@pytest.mark.parametrize(
    ("event", "instruction", "allowed"),
    [
        ("ice", svaml.answer(), True),
        ("ace", svaml.answer(), False),
        ("pie", svaml.answer(), False),
        ("ice", svaml.send_dtmf("1"), True),
        ("ace", svaml.send_dtmf("1"), False),
        ("pie", svaml.send_dtmf("1"), True),
        ("ace", svaml.start_recording(), True),
        ("ice", svaml.stop_recording(), False),
        ("pie", svaml.stop_recording(), True),
        ("ace", SAY, True),
    ],
)
def test_instructions_allowed_per_event(event: str, instruction: dict[str, Any], allowed: bool) -> None:
    reply = ReplyBuilder(event)
    assert reply.instruct(instruction) is allowed
    assert reply.instructions == ([instruction] if allowed else [])


@pytest.mark.parametrize(
    ("event", "action", "allowed"),
    [
        ("ice", svaml.park(), True),
        ("ace", svaml.park(), False),
        ("ice", svaml.continue_(), False),
        ("ace", svaml.connect_conf("r", None), True),
        ("ace", svaml.connect_pstn("+1", None, 5), False),
        ("ice", svaml.connect_pstn("+1", None, 5), True),
        ("pie", svaml.run_menu(1, 5, None, "en-US"), True),
    ],
)
def test_actions_allowed_per_event(event: str, action: dict[str, Any], allowed: bool) -> None:
    assert ReplyBuilder(event).act(action) is allowed


def test_exactly_one_action_closes_the_reply() -> None:
    reply = ReplyBuilder("ice")
    assert reply.instruct(svaml.answer(), SAY)
    assert reply.act(svaml.connect_conf("room", "music1")) and not reply.open
    assert not reply.act(svaml.hangup()) and not reply.instruct(SAY)
    built = reply.build()
    assert built == {
        "instructions": [svaml.answer(), SAY],
        "action": {"name": "connectConf", "conferenceId": "room", "moh": "music1"},
    }
    assert parse_svaml(built, "ice").action_name == "connectConf"  # what the simulator accepts
    fresh = ReplyBuilder("ace")
    fresh.build()
    assert not fresh.open and not fresh.instruct(SAY)


def test_a_rejected_batch_adds_nothing() -> None:
    reply = ReplyBuilder("ace")
    assert not reply.instruct(SAY, svaml.send_dtmf("1")) and reply.instructions == []


def test_seconds_count_speech_only() -> None:
    reply = ReplyBuilder("ice")
    reply.instruct(svaml.say("x" * 100, "en-US"), svaml.play_files(["f"], "en-US"))
    assert reply.seconds() == pytest.approx(7.0)


@pytest.mark.parametrize(
    ("language", "locale"),
    [
        ("en", "en-US"),
        ("en-gb", "en-GB"),
        ("de", "de-DE"),
        ("pt_br", "pt-BR"),
        ("xx", "xx"),
        (" EN ", "en-US"),
    ],
)
def test_locale(language: str, locale: str) -> None:
    assert svaml.locale(language) == locale


def test_say_texts_split_long_text_at_spaces_and_repeat() -> None:
    text = " ".join(["word"] * 300)  # 1499 characters
    pieces = svaml.say_texts(text, 1)
    assert all(len(p) <= svaml.MAX_SAY for p in pieces) and " ".join(pieces) == text
    assert svaml.say_texts("Hi", 3) == ["Hi", "Hi", "Hi"]
    assert svaml.say_texts("x" * 700, 1) == ["x" * 600, "x" * 100]


def test_prompts_and_menus() -> None:
    assert svaml.prompt(Media(file_id="f-1")) == "f-1"
    assert svaml.prompt(Media(url="https://a/b.wav")) == "#href[https://a/b.wav]"
    with pytest.raises(ValueError):
        svaml.prompt(Media())
    assert svaml.conference_dtmf(3, 2.5) == {"mode": "detect", "maxDigits": 3, "timeoutMills": 2500}
    assert svaml.conference_dtmf(0, 0) == {"mode": "detect", "maxDigits": 1, "timeoutMills": 1}
    assert svaml.connect_conf("r", None, DETECT) == {
        "name": "connectConf", "conferenceId": "r", "conferenceDtmfOptions": DETECT,
    }
    menu = svaml.run_menu(4, 5.5, "Enter your PIN", "en-US")
    assert menu == {
        "name": "runMenu",
        "locale": "en-US",
        "mainMenu": "main",
        "menus": [
            {
                "id": "main",
                "maxDigits": 4,
                "repeats": 0,
                "timeoutMills": 5500,
                "options": [],
                "mainPrompt": "#tts[Enter your PIN]",
            }
        ],
    }


# -- the channel's reply -----------------------------------------------------------------------------
def adapter() -> SinchAdapter:
    return SinchAdapter(SinchSettings(application_key="k", application_secret=SECRET, cli="4592457976"))


def trigger(kind: str, name: str, call_id: str = "call-1") -> Event:
    return Event(name, call_id=call_id, raw={"event": kind, "callid": call_id}, event_id=f"sinch:x:{name}")


def body(reply_bytes: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(reply_bytes)
    return parsed


async def test_ice_reply_answer_then_join_via_the_answered_follow_up() -> None:
    channel = adapter().channel(trigger("ice", "call.received"))
    await channel.answer("call-1")
    await channel.answer("call-1")  # idempotent
    [answered] = channel.follow_ups()
    assert (answered.event.name, answered.event.call_id, answered.delay) == ("call.answered", "call-1", 0.0)
    room = (await channel.conference_create("room-s1")).id
    assert room is not None and room.startswith("room-s1-") and len(room) <= 64
    await channel.conference_join(room, "call-1")
    created, joined = channel.follow_ups()
    assert (created.event.name, created.event.conference_id, created.delay) == (
        "conference.created",
        room,
        0.0,
    )
    assert (joined.event.name, joined.event.call_id, joined.event.conference_id) == (
        "participant.joined",
        "call-1",
        room,
    )
    assert joined.delay > 0  # after the reply: Sinch joins the call once it has it
    reply = channel.reply()
    assert (reply.status, reply.content_type) == (200, "application/json")
    assert body(reply.body) == {
        "instructions": [{"name": "answer"}],
        "action": {"name": "connectConf", "conferenceId": room, "moh": "music1",
                   "conferenceDtmfOptions": DETECT},
    }
    parse_svaml(body(reply.body), "ice")  # the simulator's SVAML checks accept it
    assert channel.reply() is reply
    assert len({f.event.event_id for f in (answered, created, joined)}) == 3


async def test_ice_reply_says_before_the_action_and_reports_when_it_is_over() -> None:
    channel = adapter().channel(trigger("ice", "call.received"))
    await channel.say("call-1", "x" * 700, "en-gb", "female", 1)
    await channel.play("call-1", Media(file_id="music"), 2)
    [finished] = channel.follow_ups()
    assert finished.event.name == "say.finished" and finished.delay == pytest.approx(700 * 0.07 + 0.1)
    assert body(channel.reply().body) == {
        "instructions": [
            {"name": "say", "text": "x" * 600, "locale": "en-GB"},
            {"name": "say", "text": "x" * 100, "locale": "en-GB"},
            {"name": "playFiles", "ids": ["music", "music"], "locale": "en-US"},
        ],
        "action": {"name": "park"},
    }


async def test_ice_reply_hangup_and_bridge() -> None:
    hung = adapter().channel(trigger("ice", "call.received"))
    await hung.hangup("call-1", "busy")
    assert body(hung.reply().body) == {"instructions": [], "action": {"name": "hangup"}}
    bridged = adapter().channel(trigger("ice", "call.received"))
    result = await bridged.dial(Endpoint("phone", "447415784323"), None, 20.5, "call-1")
    assert result.id == bridge_id("call-1")
    assert body(bridged.reply().body)["action"] == {
        "name": "connectPstn",
        "number": "+447415784323",
        "dialTimeout": 21,
        "cli": "+4592457976",
    }


async def test_pie_reply_runs_another_menu_and_ace_reply_continues() -> None:
    pie = adapter().channel(trigger("pie", "dtmf.captured"))
    await pie.send_dtmf("call-1", "12")
    await pie.capture_dtmf("call-1", 4, 10, "#", "Again", "en")
    assert [s["name"] for s in body(pie.reply().body)["instructions"]] == ["sendDtmf"]
    assert body(pie.reply().body)["action"]["name"] == "runMenu"
    ace = adapter().channel(trigger("ace", "call.answered"))
    await ace.record("call-1", None, False)
    assert body(ace.reply().body) == {
        "instructions": [svaml.start_recording()],
        "action": {"name": "continue"},
    }


async def test_reply_only_commands_are_refused_where_sinch_cannot_take_them() -> None:
    timer = adapter().channel(None)
    ace = adapter().channel(trigger("ace", "call.answered"))
    for attempt in (
        timer.answer("call-1"),
        ace.answer("call-1"),
        timer.conference_join("room", "call-1"),
        ace.conference_join("room", "call-2"),
        ace.capture_dtmf("call-1", 1, 5, "*", None, "en"),
        timer.capture_dtmf("call-1", 1, 5, "*", None, "en"),
        ace.dial(Endpoint("phone", "1"), None, 5, "call-1"),
        timer.record("call-1", 10.0, False),
    ):
        with pytest.raises(ProviderError) as caught:
            await attempt
        assert caught.value.retryable is False
    assert timer.reply().body == b"" and timer.follow_ups() == []


async def test_unsupported_actions_say_so() -> None:
    channel = adapter().channel(None)
    for action, args in (
        ("stop_play", {"call_id": "c"}),
        ("deafen", {"conference_id": "r", "call_id": "c"}),
        ("undeafen", {"conference_id": "r", "call_id": "c"}),
        ("conference_say", {"conference_id": "r", "text": "hi", "language": "en"}),
        ("conference_play", {"conference_id": "r", "media": Media("f"), "loop": 1}),
        ("conference_stop_play", {"conference_id": "r"}),
    ):
        with pytest.raises(ProviderUnsupported):
            await channel.execute(ProviderCommand(action, args, "s:1:0"))


async def test_dice_and_follow_up_triggers_use_rest_only() -> None:
    dice = adapter().channel(trigger("dice", "call.finished"))
    follow_up = adapter().channel(Event("participant.joined", call_id="call-1", event_id="x"))
    for channel in (dice, follow_up):
        with pytest.raises(ProviderError):
            await channel.conference_join("room", "call-1")
        assert channel.reply().body == b""


async def test_capture_outside_a_reply_listens_through_conference_detection() -> None:
    """Over REST Sinch takes no capture: nothing is armed and nothing is sent (without a prompt); a
    call in a conference is listened to anyway, by the detection its join asked for."""
    timer = adapter().channel(None)
    assert (await timer.capture_dtmf("call-1", 1, 60, None, None, "en")).id is None
    assert (await timer.capture_dtmf("call-1", 4, 5, "#", None, "en")).data == {}
    ace = adapter().channel(trigger("ace", "call.answered"))
    await ace.capture_dtmf("call-2", 1, 5, None, None, "en")  # another call than the ACE's: not the reply
    assert body(ace.reply().body) == {"instructions": [], "action": {"name": "continue"}}
    assert timer.reply().body == b"" and timer.follow_ups() == []


async def test_a_pie_from_conference_detection_gets_an_empty_200_and_no_menu() -> None:
    keys = Event("dtmf.captured", call_id="call-1", conference_id="room-1", digits="5",
                 raw={"event": "pie", "callid": "call-1"}, event_id="sinch:y:dtmf.captured")
    channel = adapter().channel(keys)
    await channel.capture_dtmf("call-1", 1, 60, None, None, "en")  # keeps listening: no runMenu
    with pytest.raises(ProviderError):
        await channel.conference_join("room-2", "call-1")  # only SVAML moves a call: none goes here
    assert channel.reply().body == b"" and channel.reply().status == 200
    menu = adapter().channel(trigger("pie", "dtmf.captured"))  # a menu's PIE still gets SVAML
    await menu.capture_dtmf("call-1", 1, 60, None, None, "en")
    assert body(menu.reply().body)["action"]["name"] == "runMenu"
