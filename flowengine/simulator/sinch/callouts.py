"""POST /calling/v1/callouts: ttsCallout, conferenceCallout and customCallout, from the request checks to
what the dialled party (its script) and the app's ACE reply make of the call."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flowengine.simulator.base import ApiError
from flowengine.simulator.legs import run_dial, speech_seconds
from flowengine.simulator.parties import DETECTION_SECONDS, DialOutcome, plan_dial
from flowengine.simulator.sinch import callbacks
from flowengine.simulator.sinch.conference_dtmf import read_options
from flowengine.simulator.sinch.model import CALLBACKERROR, FAILED, MANAGERHANGUP, SinchCall
from flowengine.simulator.sinch.obey import DIAL_RESULTS, SinchObey
from flowengine.simulator.sinch.svaml import (
    CONTINUE,
    MOH_CLASSES,
    Svaml,
    SvamlError,
    one_of,
    parse_svaml,
    prompt_seconds,
)

METHODS = ("ttsCallout", "conferenceCallout", "customCallout")
DESTINATION_TYPES = frozenset({"number", "username", "sip"})
# Sinch error codes for request problems.
ILLEGAL, MISSING, INVALID = 40001, 40002, 40003


@dataclass(frozen=True)
class Callout:
    method: str
    spec: dict[str, Any]
    destination: dict[str, str]


def _missing(name: str) -> ApiError:
    return ApiError(400, f"Missing parameter: {name}", code=MISSING)


def _illegal(name: str, why: str) -> ApiError:
    return ApiError(400, f"Illegal parameter {name}: {why}", code=ILLEGAL)


def check_callout(body: Any) -> Callout:
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object.", code=INVALID)
    method = body.get("method")
    if method is None:
        raise _missing("method")
    if not one_of(method, METHODS):
        raise _illegal("method", f"must be one of {', '.join(METHODS)}")
    spec = body.get(method)
    if not isinstance(spec, dict):
        raise _missing(method)
    destination = spec.get("destination")
    if destination is None and method == "customCallout" and isinstance(spec.get("ice"), str):
        destination = {"type": "number", "endpoint": "-"}  # inline ICE SVAML says where it goes
    if not isinstance(destination, dict):
        raise _missing(f"{method}.destination")
    if not one_of(destination.get("type"), DESTINATION_TYPES):
        raise _illegal(f"{method}.destination.type", "must be number, username or sip")
    if not isinstance(destination.get("endpoint"), str) or not destination["endpoint"]:
        raise _missing(f"{method}.destination.endpoint")
    if method == "conferenceCallout":
        _check_conference_callout(spec)
    if method == "customCallout" and spec.get("ice") is not None and not isinstance(spec["ice"], str):
        raise _illegal(f"{method}.ice", "inline SVAML as a JSON string, or a URL")
    for flag in ("enableAce", "enableDice", "enablePie"):
        if flag in spec and not isinstance(spec[flag], bool):
            raise _illegal(f"{method}.{flag}", "must be a boolean")
    return Callout(method, spec, {"type": destination["type"], "endpoint": destination["endpoint"]})


def _asks_amd(ice: Any) -> bool:
    """Whether a customCallout's inline ``ice`` SVAML connects the number with ``amd`` enabled."""
    if not isinstance(ice, str) or ice.startswith(("http://", "https://")):
        return False
    try:
        action = json.loads(ice).get("action") or {}
    except (ValueError, AttributeError):
        return False
    amd = action.get("amd") if isinstance(action, dict) and action.get("name") == "connectPstn" else None
    return isinstance(amd, dict) and amd.get("enabled") is True


def _check_conference_callout(spec: dict[str, Any]) -> None:
    conference_id = spec.get("conferenceId")
    if conference_id is None:
        raise _missing("conferenceCallout.conferenceId")
    if not isinstance(conference_id, str) or not 0 < len(conference_id) <= 64:
        raise _illegal("conferenceCallout.conferenceId", "1 to 64 characters")
    if spec.get("mohClass") is not None and not one_of(spec["mohClass"], MOH_CLASSES):
        raise _illegal("conferenceCallout.mohClass", "must be ring, music1, music2 or music3")
    try:
        read_options(spec.get("conferenceDtmfOptions"))
    except ValueError as exc:
        raise _illegal("conferenceCallout.conferenceDtmfOptions", str(exc)) from None


class SinchCallouts(SinchObey):
    """Callouts on top of SVAML semantics."""

    def callout(self, request: Callout) -> SinchCall:
        endpoint = request.destination["endpoint"]
        spec = request.spec
        call = self.new_call(
            direction="outbound",
            from_={"type": "number", "endpoint": str(spec.get("cli") or "private")},
            to=request.destination,
            remote=endpoint,
            script=self.parties.script_for(endpoint),
            custom=spec.get("custom") if isinstance(spec.get("custom"), str) else None,
        )
        custom = request.method == "customCallout"
        call.amd = custom and _asks_amd(spec.get("ice"))
        call.ace = custom or bool(spec.get("enableAce"))
        call.dice = custom or bool(spec.get("enableDice"))
        # Unconfirmed whether Sinch holds back a conference participant's detected keys without
        # enablePie; the simulator does, so an app that wants them must ask.
        call.pie = custom or bool(spec.get("enablePie"))
        if request.method == "conferenceCallout":
            # Dialled into the conference: in its lane from the first ring, not only once it joins.
            self.link_conference(call, spec["conferenceId"])
        call.activity = call.start(self.clock, self._run_callout(call, request))
        return call

    async def _run_callout(self, call: SinchCall, request: Callout) -> None:
        timeout = self.callout_ring_timeout
        if request.method == "customCallout":
            connect = await self._connect_for(call, request)
            if connect is None:
                self.end_call(call, FAILED, CALLBACKERROR)  # as an inbound call whose ICE got no usable SVAML
                return
            timeout = float(connect.get("dialTimeout") or timeout)
            number = str(connect["number"])
            if number != call.remote:
                call.remote, call.script = number, self.parties.script_for(number)
                call.to = {"type": "number", "endpoint": number}
        plan = plan_dial(call.script, timeout)
        outcome = await run_dial(self.clock, plan, lambda: None)
        if outcome is not DialOutcome.ANSWERED:
            self.dial_failed(call, DIAL_RESULTS[outcome])
            return
        self.answer(call)
        svaml = await self._on_answer(call, request)
        await self.obey(call, svaml)
        if call.ended or svaml.action_name != "continue":
            return  # the app took the call elsewhere (hangup, connectConf, runMenu)
        spec = request.spec
        if request.method == "conferenceCallout":
            await self.clock.sleep(speech_seconds(str(spec.get("greeting") or "")))
            dtmf = read_options(spec.get("conferenceDtmfOptions"))  # checked with the request
            self.join_conference(call, spec["conferenceId"], spec.get("mohClass"), dtmf)
        elif request.method == "ttsCallout":
            await self.clock.sleep(
                speech_seconds(str(spec.get("text") or "")) + prompt_seconds(spec.get("prompts"))
            )
            self.hang_up(call, MANAGERHANGUP)

    async def _connect_for(self, call: SinchCall, request: Callout) -> dict[str, Any] | None:
        """How a customCallout is connected: Sinch's callout reference says placing it raises an ICE whose
        SVAML must connect it to a PSTN destination (connectPstn, the only action allowed there). The SVAML
        is the request's inline ``ice``; without one the ICE goes to the callback URL (here also for an
        ``ice`` URL: the simulator has one callback URL). None: no usable connectPstn, the call is dropped."""
        inline = request.spec.get("ice")
        if isinstance(inline, str) and inline and not inline.startswith(("http://", "https://")):
            try:
                svaml: Svaml | None = parse_svaml(json.loads(inline), "ice")
            except (ValueError, SvamlError):
                svaml = None
        else:
            body = callbacks.ice(call, self.clock.now(), self.application_key, self.api_base_url)
            svaml = await self.ask(call, body, "ice")
        if svaml is None or svaml.action_name != "connectPstn":
            return None
        return svaml.action

    async def _on_answer(self, call: SinchCall, request: Callout) -> Svaml:
        """The SVAML for the answered callout: the ACE reply, or a customCallout's inline ``ace``. With
        machine detection the ACE waits until it has listened (synchronous AMD)."""
        if call.amd:
            await self.clock.sleep(DETECTION_SECONDS)
            if call.ended:
                return CONTINUE
        inline = request.spec.get("ace") if request.method == "customCallout" else None
        if isinstance(inline, str) and not inline.startswith(("http://", "https://")):
            try:
                return parse_svaml(json.loads(inline), "ace")
            except (ValueError, SvamlError):
                return CONTINUE
        if call.ace:
            return await self.ask_ace(call)
        return CONTINUE
