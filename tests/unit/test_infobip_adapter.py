"""The Infobip adapter's channel over real HTTP: what each neutral action sends and what it returns,
first against canned Infobip answers, then against the Infobip simulator (a two-party conference)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from flowengine.errors import ProviderError
from flowengine.flow.vocabulary import EVENTS, REASONS
from flowengine.providers.base import Adapter, Channel, WebhookRequest
from flowengine.providers.infobip import CAPABILITIES, InfobipAdapter, InfobipSettings
from flowengine.runtime.clock import VirtualClock
from flowengine.runtime.events import Event
from flowengine.runtime.ports import Endpoint, Media, ProviderCommand
from flowengine.server.serving import serving

CONFERENCE = {
    "id": "conf-1", "name": "room", "callsConfigurationId": "cfg-1",
    "participants": [
        {"callId": "call-1", "endpoint": {"type": "PHONE", "phoneNumber": "41792036727"}, "state": "JOINED",
         "role": {"type": "DEFAULT"}, "media": {"audio": {"muted": True, "userMuted": False, "deaf": False}}},
        {"callId": "call-2", "endpoint": {"type": "WEBRTC", "identity": "agent"}, "state": "JOINING"},
    ],
}
ACTION = {"status": "PENDING"}
# (method, path) -> (status, body): what a real account answers, shapes from the wire reference.
ANSWERS: dict[tuple[str, str], tuple[int, Any]] = {
    ("POST", "/calls/1/calls"): (201, {"id": "call-new", "state": "CALLING"}),
    ("POST", "/calls/1/calls/call-1/connect"): (200, {"conference": {"id": "conf-9"},
                                                      "call": {"id": "call-b"}}),
    ("POST", "/calls/1/conferences"): (201, {"id": "conf-1", "name": "room", "participants": []}),
    ("PUT", "/calls/1/conferences/conf-1/call/call-1"): (200, CONFERENCE),
    ("POST", "/calls/1/conferences/conf-1/call"): (200, {"conference": CONFERENCE, "call": {"id": "call-2"}}),
    ("GET", "/calls/1/conferences/conf-1"): (200, CONFERENCE),
    ("POST", "/calls/1/conferences/conf-1/hangup"): (200, CONFERENCE),
    ("POST", "/calls/1/calls/call-1/hangup"): (200, {"id": "call-1", "state": "FINISHED"}),
}


@dataclass
class Canned:
    adapter: InfobipAdapter
    seen: list[tuple[str, str, Any]] = field(default_factory=list)
    answers: dict[tuple[str, str], Any] = field(default_factory=lambda: dict(ANSWERS))


@pytest.fixture
async def canned(clock: VirtualClock) -> AsyncIterator[Canned]:
    state: list[Canned] = []

    async def handle(request: web.Request) -> web.Response:
        raw = await request.text()
        state[0].seen.append((request.method, request.path, json.loads(raw) if raw else None))
        answer = state[0].answers.get((request.method, request.path), (200, ACTION))
        status, body = answer.pop(0) if isinstance(answer, list) else answer  # a list: one answer a request
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with serving(app) as url:
        adapter = InfobipAdapter(InfobipSettings(base_url=url, api_key="k", calls_configuration_id="cfg-1"),
                                 clock=clock)
        state.append(Canned(adapter))
        await adapter.start()
        yield state[0]
        await adapter.close()


Case = tuple[Callable[[Channel], Any], str, str, Any]
CASES: list[Case] = [
    (lambda c: c.answer("call-1"), "POST", "/calls/1/calls/call-1/answer", {}),
    (lambda c: c.hangup("call-1", None), "POST", "/calls/1/calls/call-1/hangup", {}),
    (lambda c: c.say("call-1", "Hi", "en", "female", 1), "POST", "/calls/1/calls/call-1/say",
     {"text": "Hi", "language": "en", "loopCount": 1, "preferences": {"voiceGender": "FEMALE"}}),
    (lambda c: c.play("call-1", Media(file_id="f"), 3), "POST", "/calls/1/calls/call-1/play",
     {"content": {"type": "FILE", "fileId": "f"}, "loopCount": 3}),
    (lambda c: c.stop_play("call-1"), "POST", "/calls/1/calls/call-1/stop-play", {}),
    (lambda c: c.record("call-1", None, False), "POST", "/calls/1/calls/call-1/start-recording",
     {"recording": {"recordingType": "AUDIO"}}),
    (lambda c: c.stop_record("call-1"), "POST", "/calls/1/calls/call-1/stop-recording", None),
    (lambda c: c.capture_dtmf("call-1", 4, 5, "#", None, "en"), "POST", "/calls/1/calls/call-1/capture/dtmf",
     {"maxLength": 4, "timeout": 5000, "terminator": "#"}),
    (lambda c: c.send_dtmf("call-1", "1"), "POST", "/calls/1/calls/call-1/send-dtmf", {"dtmf": "1"}),
    (lambda c: c.conference_join("conf-1", "call-1"), "PUT", "/calls/1/conferences/conf-1/call/call-1", {}),
    (lambda c: c.conference_say("conf-1", "Hi", "en"), "POST", "/calls/1/conferences/conf-1/say",
     {"text": "Hi", "language": "en"}),
    (lambda c: c.conference_play("conf-1", Media(url="https://x.test/a.wav"), 1), "POST",
     "/calls/1/conferences/conf-1/play", {"content": {"type": "URL", "fileUrl": "https://x.test/a.wav"},
                                          "loopCount": 1}),
    (lambda c: c.conference_stop_play("conf-1"), "POST", "/calls/1/conferences/conf-1/stop-play", None),
    (lambda c: c.conference_hangup("conf-1"), "POST", "/calls/1/conferences/conf-1/hangup", None),
    (lambda c: c.mute("conf-1", "call-1"), "PATCH", "/calls/1/conferences/conf-1/call/call-1",
     {"muted": True}),
    (lambda c: c.unmute("conf-1", "call-1"), "PATCH", "/calls/1/conferences/conf-1/call/call-1",
     {"muted": False}),
    (lambda c: c.deafen("conf-1", "call-1"), "PATCH", "/calls/1/conferences/conf-1/call/call-1",
     {"deaf": True}),
    (lambda c: c.undeafen("conf-1", "call-1"), "PATCH", "/calls/1/conferences/conf-1/call/call-1",
     {"deaf": False}),
]


@pytest.mark.parametrize(("act", "method", "path", "body"), CASES,
                         ids=[f"{c[1]} {c[2]}" for c in CASES])
async def test_each_action_is_one_request(canned: Canned, act: Any, method: str, path: str,
                                         body: Any) -> None:
    await act(canned.adapter.channel(None))
    assert canned.seen == [(method, path, body)]


@pytest.mark.parametrize(("state", "reason", "body"), [
    ("RINGING", "busy", {"errorCode": "BUSY"}),
    ("RINGING", "hangup", {}),
    ("ESTABLISHED", "hangup", {"errorCode": "NORMAL_HANGUP"}),
    ("ESTABLISHED", "rejected", {}),
])
async def test_a_hangup_reason_is_sent_as_the_code_that_fits_the_call_state(
    canned: Canned, state: str, reason: str, body: Any
) -> None:
    """Infobip's hangup reference: the errorCode depends on the call's state, so the call is looked at."""
    canned.answers[("GET", "/calls/1/calls/call-1")] = (200, {"id": "call-1", "state": state})
    await canned.adapter.channel(None).hangup("call-1", reason)
    assert canned.seen == [("GET", "/calls/1/calls/call-1", None),
                           ("POST", "/calls/1/calls/call-1/hangup", body)]


async def test_a_coded_hangup_refused_because_the_state_moved_on_is_sent_plainly(canned: Canned) -> None:
    canned.answers[("GET", "/calls/1/calls/call-1")] = (200, {"id": "call-1", "state": "RINGING"})
    refused = {"requestError": {"serviceException": {"messageId": "BAD_REQUEST", "text": "not RINGING"}}}
    canned.answers[("POST", "/calls/1/calls/call-1/hangup")] = [(400, refused), (200, {"id": "call-1"})]
    await canned.adapter.channel(None).hangup("call-1", "busy")
    assert [body for method, _, body in canned.seen if method == "POST"] == [{"errorCode": "BUSY"}, {}]


async def test_results_carry_new_ids(canned: Canned) -> None:
    channel = canned.adapter.channel(None)
    phone = Endpoint("phone", "+447415784323")
    assert (await channel.dial(phone, "4592457976", 90, None)).id == "call-new"
    connected = await channel.dial(phone, None, 30, "call-1")
    assert (connected.id, connected.data) == ("call-b", {"conference_id": "conf-9"})
    assert (await channel.conference_create("room")).id == "conf-1"
    assert (await channel.conference_dial("conf-1", phone, "4592457976", 60)).id == "call-2"
    assert canned.seen[0][2]["connectTimeout"] == 60  # 90 s clamped to Infobip's maximum
    assert canned.seen[0][2]["callsConfigurationId"] == "cfg-1"
    assert (await channel.answer("call-9")).data == {"status": "PENDING"}


async def test_kick_removes_the_participant_then_hangs_up_its_call(canned: Canned) -> None:
    """The neutral kick ends the call, as Sinch's does; Infobip's DELETE alone would leave it up."""
    await canned.adapter.channel(None).kick("conf-1", "call-1")
    assert canned.seen == [
        ("DELETE", "/calls/1/conferences/conf-1/call/call-1", None),
        ("POST", "/calls/1/calls/call-1/hangup", {}),
    ]


async def test_kick_of_a_call_that_already_ended_is_done(canned: Canned) -> None:
    gone = {"requestError": {"serviceException": {"messageId": "NOT_FOUND", "text": "Call not found."}}}
    canned.answers[("POST", "/calls/1/calls/call-1/hangup")] = (404, gone)
    await canned.adapter.channel(None).kick("conf-1", "call-1")
    assert [seen[:2] for seen in canned.seen] == [
        ("DELETE", "/calls/1/conferences/conf-1/call/call-1"), ("POST", "/calls/1/calls/call-1/hangup"),
    ]
    refused = {"errorCode": "BAD_REQUEST", "description": "Bad request."}
    canned.answers[("POST", "/calls/1/calls/call-1/hangup")] = (400, refused)
    with pytest.raises(ProviderError) as caught:
        await canned.adapter.channel(None).kick("conf-1", "call-1")
    assert caught.value.status == 400
    canned.answers[("DELETE", "/calls/1/conferences/conf-1/call/call-1")] = (404, gone)
    canned.seen.clear()
    # Not in that conference (left already): done, and its call, maybe in another room now, is left up.
    assert (await canned.adapter.channel(None).kick("conf-1", "call-1")).data == {"already": True}
    assert [seen[0] for seen in canned.seen] == ["DELETE"]


async def test_kick_of_a_participant_still_joining_hangs_its_call_up(canned: Canned) -> None:
    """Answered but not joined yet, the removal is refused; the hang-up is what is left of the kick."""
    joining = {"requestError": {"serviceException": {
        "messageId": "BAD_REQUEST", "text": "Call call-1 has not joined conference conf-1 yet."}}}
    canned.answers[("DELETE", "/calls/1/conferences/conf-1/call/call-1")] = (400, joining)
    await canned.adapter.channel(None).kick("conf-1", "call-1")
    assert [seen[:2] for seen in canned.seen] == [
        ("DELETE", "/calls/1/conferences/conf-1/call/call-1"), ("POST", "/calls/1/calls/call-1/hangup"),
    ]
    refused = {"errorCode": "BAD_REQUEST"}
    canned.answers[("DELETE", "/calls/1/conferences/conf-1/call/call-1")] = (400, refused)
    with pytest.raises(ProviderError):  # any other refusal stands
        await canned.adapter.channel(None).kick("conf-1", "call-1")


async def test_conference_info_gives_neutral_participants(canned: Canned) -> None:
    info = await canned.adapter.channel(None).conference_info("conf-1")
    assert info.id == "conf-1"
    assert info.data["participants"] == [
        {"call_id": "call-1", "state": "joined", "address": "41792036727", "muted": True, "deaf": False,
         "role": "DEFAULT"},
        {"call_id": "call-2", "state": "joining", "address": "agent", "muted": False, "deaf": False,
         "role": None},
    ]


async def test_hold_mutes_deafens_and_plays_music_until_resume(canned: Canned) -> None:
    channel = canned.adapter.channel(None)
    await channel.hold("conf-1", "call-1", "music1", Media(file_id="moh-file"), 3)
    await channel.resume("conf-1", "call-1")
    assert canned.seen == [
        ("PATCH", "/calls/1/conferences/conf-1/call/call-1", {"muted": True, "deaf": True}),
        ("POST", "/calls/1/calls/call-1/play",
         {"content": {"type": "FILE", "fileId": "moh-file"}, "loopCount": 3}),
        ("POST", "/calls/1/calls/call-1/stop-play", {}),
        ("PATCH", "/calls/1/conferences/conf-1/call/call-1", {"muted": False, "deaf": False}),
    ]
    assert {"hold", "resume"} <= canned.adapter.capabilities
    assert canned.adapter.capabilities == CAPABILITIES


async def test_a_resumed_hold_sends_its_update_again_but_not_its_music(canned: Canned) -> None:
    # An interrupted hold may have started the music: like any play, it is not sent a second time.
    args = {"conference_id": "conf-1", "call_id": "call-1", "music": "music1",
            "media": Media(file_id="moh-file"), "loop": 3}
    channel = canned.adapter.channel(None)
    await channel.execute(ProviderCommand("hold", args, "s:3:0", resumed=True))
    participant = "/calls/1/conferences/conf-1/call/call-1"
    assert canned.seen == [("PATCH", participant, {"muted": True, "deaf": True})]
    await channel.execute(ProviderCommand("hold", args, "s:4:0"))
    assert [path for _, path, _ in canned.seen[1:]] == [participant, "/calls/1/calls/call-1/play"]


async def test_hold_without_music_is_silent_unless_configured() -> None:
    plain = InfobipSettings(base_url="https://x.api.infobip.com", api_key="k", calls_configuration_id="c")
    assert plain.hold_media() is None
    by_url = InfobipSettings(base_url="x", api_key="k", calls_configuration_id="c", hold_music="https://m/a.wav")
    assert by_url.hold_media() == Media(url="https://m/a.wav")
    assert InfobipSettings.from_env({"INFOBIP_BASE_URL": "x", "INFOBIP_API_KEY": "k",
                                     "INFOBIP_CALLS_CONFIGURATION_ID": "c",
                                     "INFOBIP_HOLD_MUSIC": "f-1"}).hold_media() == Media(file_id="f-1")


async def test_an_answer_without_an_id_is_a_provider_error(canned: Canned) -> None:
    canned.answers[("POST", "/calls/1/conferences")] = (201, {"name": "no id"})
    with pytest.raises(ProviderError, match="no conference id"):
        await canned.adapter.channel(None).conference_create(None)


def test_the_adapter_satisfies_the_service_contract() -> None:
    adapter: Adapter = InfobipAdapter(InfobipSettings(base_url="x", api_key="k", calls_configuration_id="c"))
    channel: Channel = adapter.channel(None)
    assert (adapter.name, channel.name) == ("infobip", "infobip")


# -- against the Infobip simulator ---------------------------------------------------------------
@dataclass
class Live:
    """The simulator on loopback, posting its events to a webhook that feeds the adapter's parser."""

    clock: VirtualClock
    simulator: Any
    adapter: InfobipAdapter
    events: list[Event]

    async def until(self, name: str, call_id: str | None = None) -> Event:
        def found() -> Event | None:
            return next((e for e in self.events if e.name == name and call_id in (None, e.call_id)), None)

        await self.clock.run_until(lambda: found() is not None, limit=120)
        event = found()
        assert event is not None, f"no {name} for {call_id}: {[(e.name, e.call_id) for e in self.events]}"
        return event


@pytest.fixture
async def live(clock: VirtualClock) -> AsyncIterator[Live]:
    simulator_module = pytest.importorskip("flowengine.simulator.infobip")
    parties_module = pytest.importorskip("flowengine.simulator.parties")
    events: list[Event] = []
    adapters: list[InfobipAdapter] = []

    async def webhook(request: web.Request) -> web.Response:
        wrapped = WebhookRequest(request.method, request.path, dict(request.headers), await request.read())
        events.extend(adapters[0].parse_webhook(wrapped))
        return web.Response(status=200)

    hooks = web.Application()
    hooks.router.add_post("/webhooks/infobip", webhook)
    parties = parties_module.PartyBook({"447400000002": parties_module.PartyScript(busy=True)})
    async with serving(hooks) as hooks_url:
        simulator = simulator_module.InfobipSimulator(
            clock, webhook_url=f"{hooks_url}/webhooks/infobip", api_key="sim-key", parties=parties,
            calls_configuration_id="cfg-sim",
        )
        async with serving(simulator.app) as sim_url:
            settings = InfobipSettings(base_url=sim_url, api_key="sim-key", calls_configuration_id="cfg-sim")
            adapters.append(InfobipAdapter(settings, clock=clock))
            await adapters[0].start()
            yield Live(clock, simulator, adapters[0], events)
            await adapters[0].close()


async def test_two_party_conference_against_the_simulator(live: Live) -> None:
    with live.clock.busy():
        caller = await live.simulator.place_inbound_call(from_="447415784323", to="4592457976")
    received = await live.until("call.received", caller)
    assert received.data["from"] == "447415784323"
    channel = live.adapter.channel(received)
    await channel.answer(caller)
    await live.until("call.answered", caller)
    room = await channel.conference_create("room-1")
    assert room.id
    await channel.conference_join(room.id, caller)
    assert (await live.until("participant.joined", caller)).conference_id == room.id
    callee = await channel.conference_dial(room.id, Endpoint("phone", "447415784324"), "4592457976", 60)
    assert callee.id and callee.id != caller
    assert (await live.until("participant.joined", callee.id)).conference_id == room.id
    busy = await channel.conference_dial(room.id, Endpoint("phone", "447400000002"), "4592457976", 30)
    assert (await live.until("participant.join_failed", busy.id)).reason == "busy"
    info = await channel.conference_info(room.id)
    present = {p["call_id"] for p in info.data["participants"] if p["state"] == "joined"}
    assert present == {caller, callee.id}
    await channel.kick(room.id, callee.id)
    assert (await live.until("participant.left", callee.id)).reason == "kicked"
    assert (await live.until("call.finished", callee.id)).reason == "api_hangup"  # not left lingering
    put = [r for r in live.simulator.requests if r.method == "PUT"]
    assert [(r.path, r.status) for r in put] == [(f"/calls/1/conferences/{room.id}/call/{caller}", 200)]
    assert all(e.name in EVENTS and (e.reason is None or e.reason in REASONS) for e in live.events)
