"""Every row of the capability tables (``providers/*/capabilities.py``) is real: the platform's simulator,
over HTTP on 127.0.0.1, refuses or drops what the row says the platform would, and takes what it allows.
Rows the engine enforces (a Sinch callout's ring timeout) are shown through engine and simulator: the
flow's timeout holds. One demonstration per row, and a test that none is missing.

Documents followed: Sinch's SVAML reference (which actions and instructions each callback's reply and a
PATCH take; exactly one action), Sinch's recording page (startRecording's options), the Sinch API
reference (connectPstn's E.164 number; no deafening, no conference prompts), the Infobip Calls API
reference (connectTimeout at most 60 s)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from flowengine.providers import PROVIDERS, platform
from flowengine.providers.sinch import signing
from flowengine.runtime.clock import VirtualClock
from flowengine.scenarios.model import parse_scenario
from flowengine.scenarios.runner import play
from flowengine.scenarios.stack import running_stack
from flowengine.simulator import InfobipSimulator, PartyBook, PartyScript, SinchSimulator
from flowengine.simulator.testing import Harness, Received, harness

KEY, SECRET = "app-key", "BeIukql3pTKJ8RGL5zo0DA=="
CALLER, DID, AGENT = "+447415784323", "+4592457976", "+46700000001"
BOOK = PartyBook({AGENT: PartyScript(answer_after=2, hangup_after=30), CALLER: PartyScript(hangup_after=60)})
ROWS = [row for provider in PROVIDERS for row in platform(provider).row_ids()]
Sinch = Harness[SinchSimulator]
Demo = Callable[[Path], Awaitable[None]]
DEMOS: dict[str, Demo] = {}


def shows(*rows: str) -> Callable[[Demo], Demo]:
    def register(demo: Demo) -> Demo:
        for row in rows:
            DEMOS[row] = demo
        return demo

    return register


class Replies:
    """The app side: the SVAML each Sinch callback is answered with (by event name)."""

    def __init__(self) -> None:
        self.by_event: dict[str, Any] = {}

    async def __call__(self, got: Received) -> tuple[int, Any]:
        return 200, self.by_event.get(got.body["event"])


def svaml(action: dict[str, Any], *instructions: dict[str, Any]) -> dict[str, Any]:
    return {"instructions": list(instructions), "action": action}


@asynccontextmanager
async def sinch() -> AsyncIterator[tuple[Sinch, Replies]]:
    replies = Replies()

    def make(clock: VirtualClock, url: str) -> SinchSimulator:
        return SinchSimulator(clock, callback_url=url, application_key=KEY, application_secret=SECRET,
                              parties=BOOK)

    async with harness(make, responder=replies, headers={"Authorization": signing.basic_header(KEY, SECRET)},
                       webhook_path="/sinch/callback") as running:
        yield running, replies


async def patch(h: Sinch, call_id: str, body: dict[str, Any]) -> tuple[int, Any]:
    return await h.client.request("PATCH", f"/calling/v1/calls/id/{call_id}", body)


async def parked_call(h: Sinch, replies: Replies, *extra: dict[str, Any]) -> str:
    replies.by_event["ice"] = svaml({"name": "park", "maxDuration": 600}, {"name": "answer"}, *extra)
    call_id = await h.sim.place_inbound_call(CALLER, DID)
    await h.wait_events("ice")
    return call_id


def refused(got: tuple[int, Any], text: str) -> None:
    status, body = got
    assert status == 400 and text in str(body), got


# -- Sinch ------------------------------------------------------------------------------------------------
@shows("sinch/cannot")
async def _sinch_cannot(tmp_path: Path) -> None:
    async with sinch() as (h, replies):
        replies.by_event["ice"] = svaml({"name": "connectConf", "conferenceId": "room"})
        call_id = await h.sim.place_inbound_call(CALLER, DID)
        await h.until(lambda: "room" in h.sim.conferences)
        member = f"/calling/v1/conferences/id/room/{call_id}"
        deaf = await h.client.request("PATCH", member, {"command": "deaf"})
        refused(deaf, "must be mute, unmute, onhold or resume")  # no deafening
        for path in ("/calling/v1/conferences/id/room/say", f"/calling/v1/calls/id/{call_id}/stop-play"):
            assert (await h.client.request("POST", path, {"text": "hi"}))[0] in (404, 405), path


@shows("sinch/answer-place")
async def _sinch_answer(tmp_path: Path) -> None:
    async with sinch() as (h, replies):
        call_id = await parked_call(h, replies)  # answered in the ICE's reply: fine
        assert h.sim.calls[call_id].answered
        refused(await patch(h, call_id, svaml({"name": "continue"}, {"name": "answer"})),
                "instruction 'answer' is not allowed in a update response")


@shows("sinch/conference_join-place")
async def _sinch_join(tmp_path: Path) -> None:
    async with sinch() as (h, replies):
        call_id = await parked_call(h, replies)
        refused(await patch(h, call_id, svaml({"name": "connectConf", "conferenceId": "room"})),
                "action 'connectConf' is not allowed in a update response")
        assert "room" not in h.sim.conferences
        replies.by_event["ice"] = svaml({"name": "runMenu", "menus": [{"id": "main", "maxDigits": 1}]})
        replies.by_event["pie"] = svaml({"name": "connectConf", "conferenceId": "room"})
        second = await h.sim.place_inbound_call(CALLER, DID, PartyScript(press=((1.0, "1"),)))
        await h.until(lambda: "room" in h.sim.conferences)  # in a PIE's reply: joined
        assert second in h.sim.conferences["room"].members


@shows("sinch/dial-connect-place")
async def _sinch_bridge_place(tmp_path: Path) -> None:
    async with sinch() as (h, replies):
        call_id = await parked_call(h, replies)
        refused(await patch(h, call_id, svaml({"name": "connectPstn", "number": AGENT})),
                "action 'connectPstn' is not allowed in a update response")
        assert h.sim.calls[call_id].bridge is None
        replies.by_event["ice"] = svaml({"name": "connectPstn", "number": AGENT})
        bridged = await h.sim.place_inbound_call(CALLER, DID)
        await h.until(lambda: h.sim.calls[bridged].bridge is not None)  # in the ICE's reply: bridged


@shows("sinch/dial-connect-to")
async def _sinch_bridge_to(tmp_path: Path) -> None:
    async with sinch() as (h, replies):
        replies.by_event["ice"] = svaml({"name": "connectPstn", "number": "sip:agent@example.com"})
        call_id = await h.sim.place_inbound_call(CALLER, DID)
        await h.wait_events("dice")
        call = h.sim.calls[call_id]
        assert (call.result, call.reason, call.bridge) == ("FAILED", "CALLBACKERROR", None)  # dropped


@shows("sinch/reply-closed")
async def _sinch_one_action(tmp_path: Path) -> None:
    async with sinch() as (h, replies):
        two = {"instructions": [], "action": [{"name": "runMenu", "menus": [{"id": "main"}]},
                                              {"name": "connectConf", "conferenceId": "room"}]}
        replies.by_event["ice"] = two
        call_id = await h.sim.place_inbound_call(CALLER, DID)
        await h.wait_events("dice")
        assert (h.sim.calls[call_id].reason, "room" in h.sim.conferences) == ("CALLBACKERROR", False)


@shows("sinch/record-beep", "sinch/record-max_duration")
async def _sinch_record(tmp_path: Path) -> None:
    async with sinch() as (h, replies):
        call_id = await parked_call(h, replies)
        for option in ({"beep": True}, {"maxDuration": 120}):
            start = {"name": "startRecording", "options": {"notificationEvents": True, **option}}
            refused(await patch(h, call_id, svaml({"name": "continue"}, start)),
                    f"startRecording takes no {next(iter(option))}")
        assert not h.sim.calls[call_id].recording
        start = {"name": "startRecording", "options": {"notificationEvents": True}}
        assert (await patch(h, call_id, svaml({"name": "continue"}, start)))[0] == 200


@shows("sinch/capture_dtmf-terminator")
async def _sinch_terminator(tmp_path: Path) -> None:
    async with sinch() as (h, replies):
        replies.by_event["ice"] = svaml({"name": "runMenu", "menus": [{"id": "main", "maxDigits": 4}]})
        replies.by_event["pie"] = svaml({"name": "hangup"})
        for keys in ("12*3", "12#"):
            await h.sim.place_inbound_call(CALLER, DID, PartyScript(press=((1.0, keys),)))
        await h.until(lambda: len(h.bodies("pie")) == 2)
        # "*" is a key like any other; only "#" ends the input early.
        assert sorted(b["menuResult"]["value"] for b in h.bodies("pie")) == ["12", "12*3"]


RING = """
flow: ring
initial: answering
states:
  answering:
    entry: [{answer: {call: caller}}]
    on: {call.answered: opening}
    after: {10s: done}
  opening:
    entry: [{conference_create: {as: room}}, {conference_join: {conference: room, call: caller}}]
    on: {participant.joined: dialing}
    after: {10s: done}
  dialing:
    entry: [DIAL]
    on:
      call.failed:
        target: done
        when: "event.call == 'agent'"
        actions: [{set: {reason: "{{ event.reason }}"}}]
    after: {2m: done}
  done: {type: final, entry: [{hangup: {call: caller}}]}
"""


async def _engine_holds(tmp_path: Path, dial: str) -> None:
    flow = tmp_path / "ring.yaml"
    flow.write_text(RING.replace("DIAL", dial), encoding="utf-8")
    never = {"caller": {"hangup_after": "5m"}, "parties": {AGENT: {"answer_after": None}},
             "expect": {"state": "done"}}
    played = parse_scenario("never", never)
    async with running_stack("sinch", flow, parties=played.parties,
                             simulator_options={"callout_ring_timeout": 300.0}) as stack:
        result = await play(stack, played)
        assert result.passed, result.failures
        agent = next(c for c in stack.simulator.calls.values() if c.remote.endswith(AGENT[1:]))  # type: ignore[attr-defined]
        # Sinch would let it ring 300 s; the engine hung it up 2 s past the flow's 20 s.
        assert agent.ended and agent.ended_at - agent.started == pytest.approx(22.0, abs=1.5)
        assert result.session["vars"]["reason"] == "no_answer"


@shows("sinch/dial-timeout")
async def _sinch_dial_timeout(tmp_path: Path) -> None:
    await _engine_holds(tmp_path, f'{{dial: {{to: "{AGENT[1:]}", timeout: 20s, as: agent}}}}')


@shows("sinch/conference_dial-timeout")
async def _sinch_conference_dial_timeout(tmp_path: Path) -> None:
    await _engine_holds(tmp_path, f'{{conference_dial: {{conference: room, to: "{AGENT[1:]}", timeout: 20s, '
                                  'as: agent}}')


# -- Infobip ---------------------------------------------------------------------------------------------
def _infobip(clock: VirtualClock, url: str) -> InfobipSimulator:
    return InfobipSimulator(clock, webhook_url=url, api_key="secret", parties=BOOK)


CALL = {"endpoint": {"type": "PHONE", "phoneNumber": AGENT.lstrip("+")}, "from": DID.lstrip("+"),
        "callsConfigurationId": "cfg-1"}


@shows("infobip/dial-timeout", "infobip/conference_dial-timeout")
async def _infobip_timeouts(tmp_path: Path) -> None:
    async with harness(_infobip, headers={"Authorization": "App secret"}) as h:
        status, body = await h.client.request("POST", "/calls/1/calls", {**CALL, "connectTimeout": 90})
        assert status == 400 and "connectTimeout" in str(body)
        assert (await h.client.request("POST", "/calls/1/calls", {**CALL, "connectTimeout": 60}))[0] == 201
        new_room = {"callsConfigurationId": "cfg-1"}
        status, room = await h.client.request("POST", "/calls/1/conferences", new_room)
        assert status == 201
        add = f"/calls/1/conferences/{room['id']}/call"
        status, body = await h.client.request("POST", add, {"callRequest": {**CALL, "connectTimeout": 90}})
        assert status == 400 and "connectTimeout" in str(body)


@pytest.mark.parametrize("row", ROWS)
async def test_each_capability_row_is_real_on_its_platform(row: str, tmp_path: Path) -> None:
    await DEMOS[row](tmp_path)


def test_every_row_has_its_demonstration() -> None:
    assert set(DEMOS) == set(ROWS)
