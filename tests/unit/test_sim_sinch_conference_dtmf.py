"""The Sinch simulator's conference key detection over real HTTP: ``conferenceDtmfOptions`` on connectConf
and conferenceCallout, the PIE each group of keys becomes, and how the PIE reply is obeyed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from flowengine.providers.sinch import signing
from flowengine.runtime.clock import VirtualClock
from flowengine.simulator import PartyBook, PartyScript, SinchSimulator
from flowengine.simulator.testing import Harness, Received, harness

KEY, SECRET = "app-key", "BeIukql3pTKJ8RGL5zo0DA=="
CALLER, DID, GUEST = "+447415784323", "+4592457976", "+46700000009"
H = Harness[SinchSimulator]
DETECT = {"mode": "detect", "maxDigits": 1, "timeoutMills": 3000}


class Replies:
    """The app side: the reply to each callback event, by event name (None: an empty 200)."""

    def __init__(self) -> None:
        self.by_event: dict[str, Any] = {}

    async def __call__(self, got: Received) -> tuple[int, Any]:
        reply = self.by_event.get(got.body["event"])
        return reply if isinstance(reply, tuple) else (200, reply)


def svaml(action: dict[str, Any], *instructions: dict[str, Any]) -> dict[str, Any]:
    return {"instructions": list(instructions), "action": action}


def connect_conf(options: dict[str, Any] | None) -> dict[str, Any]:
    action: dict[str, Any] = {"name": "connectConf", "conferenceId": "room"}
    if options is not None:
        action["conferenceDtmfOptions"] = options
    return svaml(action)


@pytest.fixture
async def replies() -> Replies:
    return Replies()


@pytest.fixture
async def h(replies: Replies) -> AsyncIterator[H]:
    book = PartyBook({GUEST: PartyScript(answer_after=2, press=((1.0, "7"),), hangup_after=20)})

    def make(clock: VirtualClock, url: str) -> SinchSimulator:
        return SinchSimulator(
            clock, callback_url=url, application_key=KEY, application_secret=SECRET, parties=book
        )

    async with harness(
        make,
        responder=replies,
        headers={"Authorization": signing.basic_header(KEY, SECRET)},
        webhook_path="/sinch/callback",
    ) as running:
        yield running


def pies(h: H) -> list[tuple[str, dict[str, Any], float]]:
    """(callid, menuResult, seconds after the ICE) of each PIE."""
    return [(e["body"]["callid"], e["body"]["menuResult"], round(e["at"] - h.sim.events[0]["at"], 3))
            for e in h.sim.events if e["body"]["event"] == "pie"]


def keys(value: str, menu: str = "room") -> dict[str, str]:
    return {"menuId": menu, "type": "sequence", "value": value, "inputMethod": "dtmf"}


async def test_each_key_of_a_detecting_participant_is_a_pie_and_continue_keeps_it_in(
    h: H, replies: Replies
) -> None:
    replies.by_event["ice"] = connect_conf(DETECT)
    replies.by_event["pie"] = svaml({"name": "continue"})
    script = PartyScript(press=((1.0, "1"), (3.0, "2"), (3.5, "#")), hangup_after=10)
    caller = await h.sim.place_inbound_call(CALLER, DID, script)
    await h.wait_events("dice")
    # The ICE reply answers; with maxDigits 1 each key goes out at once (PIEs arrive 0.05 s later).
    assert pies(h) == [(caller, keys("1"), 1.05), (caller, keys("2"), 3.05),
                       (caller, keys("#"), 3.55)]
    assert h.names() == ["ice", "pie", "pie", "pie", "dice"]
    assert h.bodies("dice")[0]["reason"] == "CALLERHANGUP"  # it stayed in the conference until it left


async def test_several_digits_end_at_max_digits_hash_or_silence(h: H, replies: Replies) -> None:
    replies.by_event["ice"] = connect_conf({"mode": "detect", "maxDigits": 3, "timeoutMills": 1000})
    script = PartyScript(press=((1.0, "12"), (5.0, "3456"), (9.0, "7#"), (12.0, "#")), hangup_after=20)
    await h.sim.place_inbound_call(CALLER, DID, script)
    await h.wait_events("dice")
    got = [(result["value"], at) for _, result, at in pies(h)]
    # "12" then 1 s of silence; "345" at maxDigits; "6" a second after the "345" PIE was answered (the
    # next group starts then); "7" ended by #; a lone # ends an empty group: nothing to report.
    assert got == [("12", 2.05), ("345", 5.05), ("6", 6.1),
                   ("7", 9.05)]


@pytest.mark.parametrize("options", [None, {"mode": "ignore"}, {"mode": "forward", "maxDigits": 2}])
async def test_no_pie_unless_the_join_asks_for_detection(
    h: H, replies: Replies, options: dict[str, Any] | None
) -> None:
    replies.by_event["ice"] = connect_conf(options)
    await h.sim.place_inbound_call(CALLER, DID, PartyScript(press=((1.0, "1"),), hangup_after=5))
    await h.wait_events("dice")
    assert h.names() == ["ice", "dice"]


async def test_conference_callout_detects_its_party_keys_when_pies_are_enabled(h: H) -> None:
    spec = {"destination": {"type": "number", "endpoint": GUEST}, "conferenceId": "room",
            "conferenceDtmfOptions": DETECT, "enableDice": True}
    placed = []
    for enable_pie in (False, True):
        status, got = await h.client.request(
            "POST", "/calling/v1/callouts",
            {"method": "conferenceCallout", "conferenceCallout": {**spec, "enablePie": enable_pie}},
        )
        assert status == 200
        placed.append(h.sim.calls[got["callId"]])
        await h.until(lambda: placed[-1].status == "FINAL")
    # Only the second callout reports; its PIE got an empty 200 and the call stayed in until it hung up.
    assert [(callid, result) for callid, result, _ in pies(h)] == [(placed[1].id, keys("7"))]
    assert h.bodies("dice")[-1]["reason"] == "CALLEEHANGUP"


async def test_pie_reply_is_obeyed(h: H, replies: Replies) -> None:
    replies.by_event["ice"] = connect_conf(DETECT)
    say = {"name": "say", "text": "Bye", "locale": "en-US"}
    replies.by_event["pie"] = svaml({"name": "hangup"}, say)
    caller = await h.sim.place_inbound_call(CALLER, DID, PartyScript(press=((1.0, "5"),)))
    await h.wait_events("dice")
    assert h.sim.calls[caller].reason == "MANAGERHANGUP" and "room" not in h.sim.conferences
    assert h.bodies("dice")[0]["duration"] == 1  # the key at 1 s, then "Bye" (0.21 s) and the hangup


async def test_pie_reply_with_a_menu_takes_the_call_out_of_the_conference(h: H, replies: Replies) -> None:
    replies.by_event["ice"] = connect_conf(DETECT)
    menu = {"name": "runMenu", "menus": [{"id": "main", "mainPrompt": "#tts[PIN]", "maxDigits": 2}]}
    replies.by_event["pie"] = svaml(menu)
    script = PartyScript(press=((1.0, "9"), (3.0, "42")), hangup_after=30)
    caller = await h.sim.place_inbound_call(CALLER, DID, script)
    await h.until(lambda: len(pies(h)) == 2)
    assert [result for _, result, _ in pies(h)] == [keys("9"), keys("42", "main")]
    assert "room" not in h.sim.conferences and h.sim.calls[caller].conference_id is None


async def test_an_unusable_pie_reply_leaves_the_participant_where_it_is(h: H, replies: Replies) -> None:
    replies.by_event["ice"] = connect_conf(DETECT)
    replies.by_event["pie"] = (500, {"oops": True})
    caller = await h.sim.place_inbound_call(CALLER, DID, PartyScript(press=((1.0, "1"), (2.0, "2"))))
    await h.until(lambda: len(pies(h)) == 2)
    assert list(h.sim.conferences["room"].members) == [caller]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("detect", "must be an object with mode, maxDigits and timeoutMills"),
        ({"mode": "listen"}, "mode must be ignore, forward or detect"),
        ({"mode": "detect", "maxDigits": 0}, "maxDigits must be a positive integer"),
        ({"mode": "detect", "timeoutMills": "3s"}, "timeoutMills must be a positive integer"),
    ],
)
async def test_bad_options_are_refused(h: H, replies: Replies, options: Any, message: str) -> None:
    spec = {"destination": {"type": "number", "endpoint": GUEST}, "conferenceId": "room",
            "conferenceDtmfOptions": options}
    status, body = await h.client.request(
        "POST", "/calling/v1/callouts", {"method": "conferenceCallout", "conferenceCallout": spec}
    )
    assert (status, body["errorCode"], body["message"]) == (
        400, 40001, f"Illegal parameter conferenceCallout.conferenceDtmfOptions: {message}"
    )
    replies.by_event["ice"] = connect_conf(options)  # an ICE reply like that is unusable: the call drops
    caller = await h.sim.place_inbound_call(CALLER, DID, PartyScript())
    await h.wait_events("dice")
    assert h.sim.calls[caller].reason == "CALLBACKERROR"
