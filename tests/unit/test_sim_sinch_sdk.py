"""The official Sinch SDK (sinch 1.1.4, synchronous, signed requests) against the simulator on loopback:
its requests must verify and its response parsing must succeed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest
from sinch import SinchClient
from sinch.domains.voice.exceptions import VoiceException

from flowengine.runtime.clock import VirtualClock
from flowengine.simulator import PartyBook, PartyScript, SinchSimulator
from flowengine.simulator.testing import Harness, harness

KEY, SECRET = "sdk-app", "BeIukql3pTKJ8RGL5zo0DA=="
CALLEE, LISTENER = "+46700000001", "+46700000002"
H = Harness[SinchSimulator]
T = TypeVar("T")


def make(clock: VirtualClock, url: str) -> SinchSimulator:
    book = PartyBook({CALLEE: PartyScript(answer_after=1), LISTENER: PartyScript(answer_after=1)})
    return SinchSimulator(
        clock, callback_url=url, application_key=KEY, application_secret=SECRET, parties=book
    )


@pytest.fixture
async def h() -> AsyncIterator[H]:
    async with harness(make) as running:
        yield running


def sdk_client(base_url: str) -> SinchClient:
    """The SDK builds ``https://{voice_origin}/calling/v1/...``; point it at the simulator over http."""
    client = SinchClient(application_key=KEY, application_secret=SECRET)
    client.configuration.voice_origin = base_url.removeprefix("http://")
    client.configuration.disable_https = True
    return client


async def run(h: H, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """The SDK is synchronous (requests): run it in a thread, holding the virtual clock meanwhile."""
    with h.clock.busy():
        return await asyncio.to_thread(fn, *args, **kwargs)


async def test_sdk_callouts_and_conference_management(h: H) -> None:
    client = sdk_client(h.base_url)
    destination: Any = {"type": "number", "endpoint": CALLEE}
    placed = await run(
        h,
        client.voice.callouts.conference,
        destination=destination,
        conference_id="sdk-room",
        cli="+4592457976",
        enable_ace=True,
        enable_dice=True,
        moh_class="music1",
    )
    await h.until(lambda: "sdk-room" in h.sim.conferences)
    assert h.names() == ["ace"] and h.sim.calls[placed.call_id].conference_id == "sdk-room"

    info = await run(h, client.voice.conferences.get, "sdk-room")
    assert [(p.id, p.cli, p.muted, p.onhold) for p in info.participants] == [
        (placed.call_id, CALLEE, False, False)
    ]
    await run(h, client.voice.conferences.manage_participant, placed.call_id, "sdk-room", "mute")
    await run(h, client.voice.conferences.manage_participant, placed.call_id, "sdk-room", "onhold", "music2")
    info = await run(h, client.voice.conferences.get, "sdk-room")
    assert (info.participants[0].muted, info.participants[0].onhold) == (True, True)

    await run(h, client.voice.conferences.kick_participant, placed.call_id, "sdk-room")
    await h.wait_events("dice")
    assert h.bodies("dice")[0]["reason"] == "MANAGERHANGUP"
    with pytest.raises(VoiceException, match=r"Conference sdk-room not found\."):
        await run(h, client.voice.conferences.get, "sdk-room")

    tts = await run(
        h,
        client.voice.callouts.text_to_speech,
        destination={"type": "number", "endpoint": LISTENER},
        text="Hello from the SDK",
        enable_dice=True,
    )
    await h.until(lambda: len(h.bodies("dice")) == 2)
    assert h.bodies("dice")[1]["callid"] == tts.call_id and h.bodies("dice")[1]["result"] == "ANSWERED"
    assert [(r.method, r.status) for r in h.sim.requests] == [
        ("POST", 200),
        ("GET", 200),
        ("PATCH", 200),
        ("PATCH", 200),
        ("GET", 200),
        ("DELETE", 200),
        ("GET", 404),
        ("POST", 200),
    ]


async def test_sdk_kick_all_and_wrong_credentials(h: H) -> None:
    client = sdk_client(h.base_url)
    for number in (CALLEE, LISTENER):
        await run(
            h,
            client.voice.callouts.conference,
            destination={"type": "number", "endpoint": number},
            conference_id="all",
        )
    await h.until(lambda: "all" in h.sim.conferences and len(h.sim.conferences["all"].members) == 2)
    await run(h, client.voice.conferences.kick_all, "all")
    assert "all" not in h.sim.conferences and h.sim.requests[-1].status == 204
    intruder = SinchClient(application_key=KEY, application_secret="c29tZXRoaW5nIGVsc2U=")
    intruder.configuration.voice_origin = h.base_url.removeprefix("http://")
    intruder.configuration.disable_https = True
    with pytest.raises(VoiceException, match=r"Invalid credentials or signature\."):
        await run(h, intruder.voice.conferences.get, "all")
