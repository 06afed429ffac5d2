"""The Sinch adapter against the real Sinch simulator on 127.0.0.1: a small aiohttp callback app answers
the simulator's callbacks through ``parse_webhook`` + ``channel(...)`` + ``reply()``, and the adapter's
REST commands drive callouts, conference management and calls. Virtual time: a 60-second no-answer
costs nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from flowengine.errors import ProviderError, WebhookError
from flowengine.flow.vocabulary import EVENTS, REASONS
from flowengine.providers.base import Adapter, Channel, WebhookRequest
from flowengine.providers.sinch import SinchAdapter, SinchChannel, SinchSettings
from flowengine.runtime.clock import VirtualClock
from flowengine.runtime.events import Event
from flowengine.runtime.ports import ALREADY, Endpoint, ProviderCommand
from flowengine.simulator import PartyBook, PartyScript, SinchSimulator
from flowengine.simulator.testing import serving

KEY, SECRET = "app-key", "BeIukql3pTKJ8RGL5zo0DA=="
CALLER, DID = "+447415784323", "+4592457976"
CALLEE, NEVER, BUSY, STAYS = "46700000001", "46700000002", "46700000003", "46700000004"
PRESSES = "46700000005"
BOOK = PartyBook(
    {
        CALLEE: PartyScript(answer_after=2, hangup_after=10),
        NEVER: PartyScript(answer_after=None),
        BUSY: PartyScript(busy=True),
        STAYS: PartyScript(answer_after=1),
        PRESSES: PartyScript(answer_after=1, press=((3.0, "4"),)),
        CALLER: PartyScript(),
    }
)
DETECT = {"mode": "detect", "maxDigits": 1, "timeoutMills": 3000}
Handler = Callable[[list[Event], SinchChannel], Awaitable[None]]


async def _nothing(_events: list[Event], _channel: SinchChannel) -> None:
    return None


@dataclass
class Live:
    clock: VirtualClock
    sim: SinchSimulator
    adapter: SinchAdapter
    events: list[Event] = field(default_factory=list)
    handler: Handler = _nothing

    async def callback(self, request: web.Request) -> web.Response:
        """The application side: verify and parse, carry out what ``handler`` decides, reply."""
        wrapped = WebhookRequest(request.method, request.path, dict(request.headers), await request.read())
        try:
            events = self.adapter.parse_webhook(wrapped)
        except WebhookError as exc:
            return web.Response(status=exc.status)
        self.events.extend(events)
        channel = self.adapter.channel(events[0] if events else None)
        await self.handler(events, channel)
        reply = channel.reply()
        return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)

    async def until(self, name: str, call_id: str | None = None, count: int = 1) -> Event:
        def found() -> list[Event]:
            return [e for e in self.events if e.name == name and call_id in (None, e.call_id)]

        await self.clock.run_until(lambda: len(found()) >= count, limit=300, real_timeout=10)
        assert len(found()) >= count, f"no {name} for {call_id}: {[(e.name, e.call_id) for e in self.events]}"
        return found()[count - 1]

    def rest(self) -> SinchChannel:
        return self.adapter.channel(None)


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    clock = VirtualClock()
    clock.start()
    holder: list[Live] = []

    async def callback(request: web.Request) -> web.Response:
        return await holder[0].callback(request)

    hooks = web.Application()
    hooks.router.add_post("/sinch/callback", callback)
    try:
        async with serving(hooks) as hooks_url:
            sim = SinchSimulator(
                clock,
                callback_url=f"{hooks_url}/sinch/callback",
                application_key=KEY,
                application_secret=SECRET,
                parties=BOOK,
            )
            async with serving(sim.app) as sim_url:
                sim.api_base_url = sim_url
                settings = SinchSettings(
                    application_key=KEY, application_secret=SECRET, base_url=sim_url, cli="4592457976"
                )
                adapter = SinchAdapter(settings, clock=clock)
                holder.append(Live(clock, sim, adapter))
                await adapter.start()
                try:
                    yield holder[0]
                finally:
                    await adapter.close()
    finally:
        await clock.stop()


def brief(events: list[Event]) -> list[tuple[str, str | None, str | None]]:
    return [(e.name, e.conference_id, e.reason) for e in events]


async def join_room(events: list[Event], channel: SinchChannel) -> None:
    """ICE -> answer; the zero-delay call.answered follow-up -> create a room and join it (as the
    bundled flow does), all in the ICE reply."""
    if events[0].name != "call.received":
        return
    call_id = events[0].call_id
    assert call_id is not None
    await channel.answer(call_id)
    [answered] = channel.follow_ups()
    assert (answered.event.name, answered.delay) == ("call.answered", 0.0)
    room = await channel.conference_create("room")
    assert room.id is not None
    await channel.conference_join(room.id, call_id)


async def test_adapter_and_channel_satisfy_the_protocols(live: Live) -> None:
    adapter: Adapter = live.adapter
    channel: Channel = live.rest()
    assert (adapter.name, channel.name, adapter.capabilities) == ("sinch", "sinch", channel.capabilities)
    assert SECRET not in repr(adapter)


async def test_ice_answered_with_answer_and_connect_conf_puts_the_caller_in_the_conference(
    live: Live,
) -> None:
    live.handler = join_room
    with live.clock.busy():
        caller = await live.sim.place_inbound_call(CALLER, DID)
    await live.clock.run_until(lambda: any(live.sim.conferences.values()), limit=5, real_timeout=10)
    [(room, conference)] = live.sim.conferences.items()
    assert list(conference.members) == [caller] and room.startswith("room-")
    [ice] = live.sim.events
    assert ice["status"] == 200 and ice["reply"] == {
        "instructions": [{"name": "answer"}],
        "action": {
            "name": "connectConf", "conferenceId": room, "moh": "music1", "conferenceDtmfOptions": DETECT,
        },
    }
    assert live.sim.calls[caller].answered and live.sim.calls[caller].moh == "music1"
    assert [e.name for e in live.events] == ["call.received"]


async def test_a_join_outside_a_reply_of_a_call_already_in_that_conference_is_already_so(live: Live) -> None:
    """Sinch moves a call into a conference only in a callback's reply; outside one, the platform is asked
    whether the call is in there already (the command table's ``confirm``): then the join is done."""
    live.handler = join_room
    with live.clock.busy():
        caller = await live.sim.place_inbound_call(CALLER, DID)
    await live.clock.run_until(lambda: any(live.sim.conferences.values()), limit=5, real_timeout=10)
    [room] = live.sim.conferences
    args = {"conference_id": room, "call_id": caller}
    result = await live.rest().execute(ProviderCommand("conference_join", args, "s:1:0"))
    assert result.data == ALREADY
    with pytest.raises(ProviderError, match="only in the reply to an ICE, ACE or PIE"):
        elsewhere = {**args, "conference_id": "other"}
        await live.rest().execute(ProviderCommand("conference_join", elsewhere, "s:2:0"))


async def test_an_ice_the_flow_does_nothing_with_is_parked_not_dropped(live: Live) -> None:
    with live.clock.busy():
        caller = await live.sim.place_inbound_call(CALLER, DID)
    await live.clock.run_until(lambda: live.sim.calls[caller].answered, limit=5, real_timeout=10)
    assert live.sim.events[0]["reply"] == {"instructions": [], "action": {"name": "park"}}
    assert live.sim.calls[caller].status == "ONGOING"


async def test_conference_callout_that_answers(live: Live) -> None:
    result = await live.rest().conference_dial("room-a", Endpoint("phone", CALLEE), None, 60)
    assert result.id is not None
    answered = await live.until("call.answered", result.id)
    joined = await live.until("participant.joined", result.id)
    assert (answered.reason, joined.conference_id) == ("answered", "room-a")
    await live.clock.run_until(lambda: "room-a" in live.sim.conferences, limit=5, real_timeout=10)
    info = await live.rest().conference_info("room-a")
    assert info.data["participants"] == [
        {
            "call_id": result.id,
            "state": "joined",
            "address": "+" + CALLEE,
            "muted": False,
            "on_hold": False,
            "duration": 0,
        }
    ]
    request = next(r for r in live.sim.requests if r.path == "/calling/v1/callouts")
    assert request.body["conferenceCallout"]["cli"] == "+4592457976"
    await live.until("call.finished", result.id)  # the callee hangs up after 10 s
    ending = [e for e in live.events if e.call_id == result.id][2:]
    assert brief(ending) == [("participant.left", "room-a", "hangup"), ("call.finished", None, "hangup")]
    assert all(e.name in EVENTS and (e.reason is None or e.reason in REASONS) for e in live.events)


@pytest.mark.parametrize(("number", "reason", "at"), [(NEVER, "no_answer", 60.05), (BUSY, "busy", 0.25)])
async def test_conference_callout_that_never_comes_up(
    live: Live, number: str, reason: str, at: float
) -> None:
    started = live.clock.now()
    result = await live.rest().conference_dial("room-b", Endpoint("phone", number), "4592457976", 60)
    failed = await live.until("call.failed", result.id)
    assert live.clock.now() - started == pytest.approx(at)
    assert brief([e for e in live.events if e.call_id == result.id]) == [
        ("participant.join_failed", "room-b", reason),
        ("call.failed", None, reason),
    ]
    assert failed.data["result"] in ("NOANSWER", "BUSY")


async def test_conference_management(live: Live) -> None:
    live.handler = join_room
    with live.clock.busy():
        caller = await live.sim.place_inbound_call(CALLER, DID)
    await live.clock.run_until(lambda: any(live.sim.conferences.values()), limit=5, real_timeout=10)
    [room] = live.sim.conferences
    rest = live.rest()
    callee = (await rest.conference_dial(room, Endpoint("phone", STAYS), None, 30)).id
    assert callee is not None
    # Sinch lets a callout ring on: the adapter stands in for the dial's 30 s with the failure events a
    # no-answer DiCE brings, 2 s later; the engine drops them once the call has answered.
    ring = [(f.event.name, f.event.call_id, f.delay, f.event.data.get("ring_timeout"))
            for f in rest.follow_ups()]
    assert ring == [("participant.join_failed", callee, 32.0, True), ("call.failed", callee, 32.0, True)]
    await live.until("participant.joined", callee)
    await live.clock.run_until(lambda: callee in live.sim.conferences[room].members, limit=5, real_timeout=10)

    async def flags() -> dict[str, tuple[bool, bool]]:
        info = await rest.conference_info(room)
        return {p["call_id"]: (p["muted"], p["on_hold"]) for p in info.data["participants"]}

    await rest.mute(room, caller)
    await rest.hold(room, callee, "music2", None, 10)
    assert await flags() == {caller: (True, False), callee: (False, True)}
    assert live.sim.calls[callee].moh == "music2"
    await rest.unmute(room, caller)
    await rest.resume(room, callee)
    assert await flags() == {caller: (False, False), callee: (False, False)}
    await rest.kick(room, callee)
    assert brief(
        [await live.until("participant.left", callee), await live.until("call.finished", callee)]
    ) == [("participant.left", room, "kicked"), ("call.finished", None, "api_hangup")]
    await rest.conference_hangup(room)
    assert (await live.until("call.finished", caller)).reason == "api_hangup"
    [finished] = rest.follow_ups()
    assert (finished.event.name, finished.event.conference_id, finished.delay) == (
        "conference.finished",
        room,
        0,
    )
    await rest.conference_hangup(room)  # gone already: nothing left to end
    with pytest.raises(ProviderError) as caught:
        await rest.mute(room, caller)
    assert (caught.value.status, caught.value.code) == (404, "40400")


async def test_say_and_hangup_over_rest(live: Live) -> None:
    live.handler = join_room
    with live.clock.busy():
        caller = await live.sim.place_inbound_call(CALLER, DID)
    await live.clock.run_until(lambda: any(live.sim.conferences.values()), limit=5, real_timeout=10)
    rest = live.rest()
    await rest.say(caller, "Please hold", "en", None, 2)
    [finished] = rest.follow_ups()
    assert (finished.event.name, finished.event.call_id) == ("say.finished", caller)
    assert finished.delay == pytest.approx(2 * len("Please hold") * 0.07)
    leg = next(r for r in live.sim.requests if r.path.endswith("/leg/caller"))
    assert (leg.method, leg.status, [s["locale"] for s in leg.body["instructions"]]) == (
        "PATCH",
        200,
        ["en-US", "en-US"],
    )
    await rest.hangup(caller, None)
    assert (await live.until("call.finished", caller)).reason == "api_hangup"
    with pytest.raises(ProviderError) as caught:
        await rest.hangup(caller, None)
    assert caught.value.status == 404 and "has ended" in str(caught.value)


async def test_plain_dial_is_a_custom_callout_whose_ace_gets_the_flow_reply(live: Live) -> None:
    async def greet(events: list[Event], channel: SinchChannel) -> None:
        if events[0].name == "call.answered" and events[0].call_id:
            await channel.say(events[0].call_id, "Hello", "de", None, 1)
            await channel.hangup(events[0].call_id, None)

    live.handler = greet
    result = await live.rest().dial(Endpoint("phone", CALLEE), "4592457976", 30, None)
    finished = await live.until("call.finished", result.id)
    ace = next(e for e in live.sim.events if e["body"]["event"] == "ace")
    assert ace["reply"] == {
        "instructions": [{"name": "say", "text": "Hello", "locale": "de-DE"}],
        "action": {"name": "hangup"},
    }
    assert finished.reason == "api_hangup"


async def test_a_menu_result_is_answered_by_bridging_in_the_pie_reply(live: Live) -> None:
    """Sinch's SVAML reference allows connectPstn in a PIE reply: an IVR's choice can be bridged there."""
    async def ivr(events: list[Event], channel: SinchChannel) -> None:
        event = events[0]
        assert event.call_id is not None
        if event.name == "call.received":
            await channel.answer(event.call_id)
            await channel.capture_dtmf(event.call_id, 1, 5.0, None, "Press 1 for sales", "en")
        elif event.name == "dtmf.captured" and event.digits == "1":
            bridged = await channel.dial(Endpoint("phone", CALLEE), None, 30, event.call_id)
            assert bridged.id == f"{event.call_id}~callee"

    live.handler = ivr
    caller = await live.sim.place_inbound_call(CALLER, DID, PartyScript(press=((1.0, "1"),)))
    answered = await live.until("call.answered", f"{caller}~callee")
    pie = next(e for e in live.sim.events if e["body"]["event"] == "pie")
    assert pie["reply"]["action"] == {"name": "connectPstn", "number": "+" + CALLEE, "cli": "+4592457976",
                                      "dialTimeout": 30}
    assert answered.reason == "answered"


async def test_callbacks_with_bad_credentials_are_refused(live: Live) -> None:
    live.sim.application_secret = "c2VjcmV0LW90aGVy"  # the simulator now signs with another secret
    with live.clock.busy():
        await live.sim.place_inbound_call(CALLER, DID)
    await live.clock.run_until(lambda: bool(live.sim.events), limit=5, real_timeout=10)
    assert live.sim.events[0]["status"] == 401 and live.events == []
    assert json.dumps(live.sim.events[0]["body"])  # it was a real ICE


async def test_keys_pressed_in_a_conference_become_dtmf_captured_of_the_session_calls(live: Live) -> None:
    """Both joins ask for detection; every key comes as a PIE about the participant's own call (which
    the session owns), becomes ``dtmf.captured`` with the conference, and is answered with an empty 200:
    the participant stays. Listening again (``capture_dtmf``) over REST or in that reply arms nothing."""
    async def moderate(events: list[Event], channel: SinchChannel) -> None:
        await join_room(events, channel)
        if events[0].name == "dtmf.captured" and events[0].call_id:
            await channel.capture_dtmf(events[0].call_id, 1, 60, None, None, "en")

    live.handler = moderate
    script = PartyScript(press=((1.0, "1"), (2.0, "9")), hangup_after=20)
    with live.clock.busy():
        caller = await live.sim.place_inbound_call(CALLER, DID, script)
    await live.clock.run_until(lambda: any(live.sim.conferences.values()), limit=5, real_timeout=10)
    [room] = live.sim.conferences
    guest = (await live.rest().conference_dial(room, Endpoint("phone", PRESSES), None, 30)).id
    assert guest is not None
    callout = next(r for r in live.sim.requests if r.path == "/calling/v1/callouts")
    assert callout.body["conferenceCallout"]["conferenceDtmfOptions"] == DETECT
    assert callout.body["conferenceCallout"]["enablePie"] is True
    await live.rest().capture_dtmf(caller, 1, 60, None, "Press a key", "en")  # only says the prompt
    await live.until("dtmf.captured", guest)
    await live.until("dtmf.captured", caller, count=2)
    captured = [(e.call_id, e.conference_id, e.digits, e.reason)
                for e in live.events if e.name == "dtmf.captured"]
    assert sorted(captured, key=str) == sorted(
        [(caller, room, "1", None), (caller, room, "9", None), (guest, room, "4", None)], key=str
    )
    pies = [e for e in live.sim.events if e["body"]["event"] == "pie"]
    assert [(p["status"], p["reply"], p["body"]["menuResult"]["menuId"]) for p in pies] == [
        (200, None, room)
    ] * 3
    assert set(live.sim.conferences[room].members) == {caller, guest}  # nobody was taken out
    leg = next(r for r in live.sim.requests if r.path.endswith("/leg/caller"))
    assert leg.body["instructions"] == [{"name": "say", "text": "Press a key", "locale": "en-US"}]
