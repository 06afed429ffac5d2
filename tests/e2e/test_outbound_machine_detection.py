"""Answering-machine detection on an outbound start, end to end on both simulators (real HTTP on
127.0.0.1, virtual time): ``start: {outbound: {machine_detection: true}}`` asks the platform for it on the
start's dial (Infobip ``machineDetection`` on the call request, Sinch ``amd`` in the callout's inline ICE
``connectPstn``), and the session begins on the answer once detection has listened, with ``reason``
``machine`` or ``human`` as the dialled party's script says; a call not answered begins it as before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flowengine.providers import PROVIDERS
from flowengine.simulator.parties import DETECTION_SECONDS

from .outbound import CUSTOMER, REMINDER, outbound, said

VOICEMAIL = Path(__file__).resolve().parents[2] / "tests" / "testdata" / "outbound" / "voicemail.yaml"
MESSAGE, GREETING = "This is a message for your voicemail.", "Hello, this is a person to person call."


def asked_for_detection(provider: str, dial: dict[str, Any]) -> bool:
    """Whether the platform's call request asks it who answered."""
    body = dial["body"]
    if provider == "infobip":
        return bool(body.get("machineDetection") == {"enabled": True})
    if "ice" not in body["customCallout"]:  # a plain callout: no inline ICE, so no connectPstn to ask
        return False
    ice = json.loads(body["customCallout"]["ice"])
    return bool(ice["action"]["name"] == "connectPstn" and ice["action"].get("amd") == {"enabled": True})


def begun(session: dict[str, Any]) -> dict[str, Any]:
    """The step the session began on (the dialled call's answer or failure)."""
    return next(step for step in session["trace"] if step["from"] is None and step["to"] is not None)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("machine", "path", "text"), [
    (True, ["calling", "leaving_message", "done"], MESSAGE),
    (False, ["calling", "greeting", "done"], GREETING),
], ids=["machine", "human"])
async def test_an_api_started_call_takes_the_path_of_who_answered(
    provider: str, machine: bool, path: list[str], text: str
) -> None:
    async with outbound(provider, {CUSTOMER: {"answer_after": "2s", "machine": machine}},
                        flows=(VOICEMAIL,)) as side:
        status, started = await side.call(flow="voicemail")
        assert status == 201, started
        session = await side.until_over(started["id"])
        dials, texts = side.dials(), said(side.stack)
    assert session["status"] == "ended" and [s["to"] for s in session["trace"] if s["to"]] == path
    assert session["vars"]["who"] == ("machine" if machine else "human")
    assert len(dials) == 1 and asked_for_detection(provider, dials[0])
    assert text in texts and (GREETING if machine else MESSAGE) not in texts
    # The flow hears the answer once detection has listened, not when the party picked up.
    first = begun(session)
    assert first["event"] == "call.answered" and first["at"] - dials[0]["at"] >= 2.0 + DETECTION_SECONDS


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("script", "why"), [
    ({"busy": True}, "busy"), ({"answer_after": None, "machine": True}, "no_answer"),
], ids=["busy", "no-answer"])
async def test_a_call_not_answered_begins_as_a_failure_with_detection_on(
    provider: str, script: dict[str, Any], why: str
) -> None:
    async with outbound(provider, {CUSTOMER: script}, flows=(VOICEMAIL,)) as side:
        _, started = await side.call(flow="voicemail")
        session = await side.until_over(started["id"])
        calls = side.stack.simulator.calls
    assert (session["state"], session["vars"]["why"], session["vars"]["who"]) == ("unreachable", why, "")
    assert begun(session)["event"] == "call.failed" and all(call.ended for call in calls.values())


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_without_detection_a_machine_is_just_an_answer(provider: str) -> None:
    """The reminder flow does not ask: its dial carries no detection and a machine's pick-up is the answer."""
    async with outbound(provider, {CUSTOMER: {"answer_after": "2s", "machine": True}},
                        flows=(REMINDER,)) as side:
        _, started = await side.call(vars={"name": "Ada"})
        session = await side.until_over(started["id"])
        dials = side.dials()
    assert not asked_for_detection(provider, dials[0])
    assert begun(session)["event"] == "call.answered" and session["state"] == "done"
