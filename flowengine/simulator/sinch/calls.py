"""Sinch call lifecycle: inbound calls and their ICE, answering, conference membership (with the key
detection ``conferenceDtmfOptions`` asks for), and the end of a call with its DiCE. What the app's SVAML
makes a call do lives in ``obey.py``."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Iterable
from typing import Any

from flowengine.simulator.base import ApiError, Simulator
from flowengine.simulator.legs import Leg, start_party
from flowengine.simulator.parties import PartyScript
from flowengine.simulator.sinch import callbacks
from flowengine.simulator.sinch.conference_dtmf import ConferenceDtmf, menu_result, next_keys
from flowengine.simulator.sinch.model import (
    ANSWERED,
    CALLBACKERROR,
    CALLEEHANGUP,
    CALLERHANGUP,
    FAILED,
    FINAL,
    MANAGERHANGUP,
    NA,
    NOANSWER,
    TIMEOUT,
    SinchCall,
    SinchConference,
    recording_file,
)
from flowengine.simulator.sinch.svaml import CONTINUE, Svaml, SvamlError, parse_svaml

RECORDING_UPLOAD = 1.0  # seconds from a recording's end to its file being available


class SinchCalls(Simulator):
    """The call half of the Sinch simulator."""

    application_key: str
    inbound_ring_timeout: float

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: dict[str, SinchCall] = {}
        self.conferences: dict[str, SinchConference] = {}

    def legs(self) -> Iterable[Leg]:
        bridges = [call.bridge for call in self.calls.values() if call.bridge is not None]
        return [*self.calls.values(), *bridges]

    def clear_state(self) -> None:
        self.calls.clear()
        self.conferences.clear()

    @abc.abstractmethod
    async def obey(self, call: SinchCall, svaml: Svaml) -> None:
        """Carry out SVAML on the call (instructions in order, then the action)."""

    def lane_of(self, body: dict[str, Any]) -> str:
        """Every Sinch callback is about one call; calls share a lane once they meet in a conference."""
        return str(body.get("callid") or super().lane_of(body))

    def link_conference(self, call: SinchCall, conference_id: str) -> None:
        """The call's webhooks and those of the conference's other calls keep one order from now on
        (conference ids are the app's names, so they get a prefix to stay apart from call ids)."""
        self.webhooks.link(call.id, f"conference:{conference_id}")

    # -- lookups --------------------------------------------------------------------------------
    def known_call(self, call_id: str) -> SinchCall:
        call = self.calls.get(call_id)
        if call is None:
            raise ApiError(404, f"Call {call_id} not found.")
        return call

    def ongoing_call(self, call_id: str) -> SinchCall:
        call = self.known_call(call_id)
        if call.ended:
            raise ApiError(404, f"Call {call_id} has ended.")
        return call

    def conference(self, conference_id: str) -> SinchConference:
        conference = self.conferences.get(conference_id)
        if conference is None or not conference.members:
            raise ApiError(404, f"Conference {conference_id} not found.")
        return conference

    # -- calls ----------------------------------------------------------------------------------
    def new_call(
        self,
        *,
        direction: str,
        from_: dict[str, str],
        to: dict[str, str],
        remote: str,
        script: PartyScript,
        custom: str | None = None,
    ) -> SinchCall:
        call = SinchCall(
            id=self.new_id(),
            remote=remote,
            script=script,
            direction=direction,
            from_=from_,
            to=to,
            custom=custom,
            started=self.clock.now(),
        )
        self.calls[call.id] = call
        return call

    def receive(self, from_: str, to: str, script: PartyScript) -> SinchCall:
        """An inbound call: ICE goes out and its SVAML reply is obeyed; an unanswered caller gives up
        after ``inbound_ring_timeout``."""
        call = self.new_call(
            direction="inbound",
            from_={"type": "number", "endpoint": from_},
            to={"type": "did", "endpoint": to},
            remote=from_,
            script=script,
        )
        call.activity = call.start(self.clock, self._offer(call))

        async def give_up() -> None:
            await self.clock.sleep(self.inbound_ring_timeout)
            if not call.answered:
                self.end_call(call, NOANSWER, CALLERHANGUP)

        call.start(self.clock, give_up())
        return call

    async def _offer(self, call: SinchCall) -> None:
        svaml = await self.ask(
            call, callbacks.ice(call, self.clock.now(), self.application_key, self.api_base_url), "ice"
        )
        if svaml is None:
            self.end_call(call, FAILED, CALLBACKERROR)  # Sinch drops a call whose ICE got no usable SVAML
            return
        await self.obey(call, svaml)

    async def ask(self, call: SinchCall, body: dict[str, Any], event: str) -> Svaml | None:
        """Send a callback that expects SVAML back; None if the reply is missing or unusable."""
        # Never redelivered: the call cannot wait for a retry (Sinch plays an error and drops a call
        # whose ICE gets no answer in time; an ACE without one continues, a menu without one ends).
        delivered = await self.emit(body, redeliver=False)
        status = delivered["status"]
        fallback = CONTINUE if event == "ace" else None  # an ACE needs no reply: the call just continues
        if status is None or not 200 <= status < 300:
            return fallback
        try:
            return parse_svaml(delivered["reply"], event)
        except SvamlError:
            return fallback

    def answer(self, call: SinchCall) -> None:
        """The call is answered (ICE answer, or the platform connected it); the party's script starts."""
        if call.answered or call.ended:
            return
        call.answered_at = self.clock.now()
        reason = CALLERHANGUP if call.direction == "inbound" else CALLEEHANGUP
        start_party(self.clock, call, lambda: self.end_call(call, ANSWERED, reason))

    def end_call(self, call: SinchCall, result: str, reason: str) -> None:
        """The call is over: it leaves its conference, and DiCE goes out if the call reports it."""
        if call.ended:
            return
        now = self.clock.now()
        call.status, call.result, call.reason, call.ended_at = FINAL, result, reason, now
        call.stop_tasks()
        if call.bridge is not None:
            call.bridge.stop_tasks()
        self.leave_conference(call)
        self.finish_recording(call)
        if call.dice:
            self.emit(callbacks.dice(call, now, self.application_key))

    def finish_recording(self, call: SinchCall) -> None:
        """A recording stops (stopRecording, or its call ended): ``recording_finished`` goes out at once,
        ``recording_available`` with where the file went once it is stored."""
        if not call.recording:
            return
        call.recording = False
        self.emit(callbacks.notify(call, "recording_finished"))
        stored = recording_file(call, self.clock.now(), self.application_key, self.api_base_url)

        async def available() -> None:
            await self.clock.sleep(RECORDING_UPLOAD)
            self.emit(callbacks.notify(call, "recording_available", stored))

        self.spawn(available())

    def hang_up(self, call: SinchCall, reason: str) -> None:
        """The platform or the app hangs up: ANSWERED if it was, otherwise N/A."""
        self.end_call(call, ANSWERED if call.answered else NA, reason)

    def dial_failed(self, call: SinchCall, result: str) -> None:
        self.end_call(call, result, TIMEOUT if result == NOANSWER else NA)

    # -- conferences ----------------------------------------------------------------------------
    def join_conference(
        self, call: SinchCall, conference_id: str, moh: str | None, dtmf: ConferenceDtmf | None = None
    ) -> None:
        """connectConf / conferenceCallout: the (answered) call joins, creating the conference if new;
        with ``conferenceDtmfOptions`` mode detect, its keys are reported by PIE while it is in there."""
        self.answer(call)
        if call.conference_id == conference_id:
            return
        self.leave_conference(call)
        conference = self.conferences.setdefault(conference_id, SinchConference(id=conference_id))
        self.link_conference(call, conference_id)
        conference.members[call.id] = call
        call.conference_id, call.joined_at, call.moh = conference_id, self.clock.now(), moh
        call.muted = call.onhold = False
        if dtmf is not None and dtmf.detect and call.pie:
            call.detection = call.start(self.clock, self._detect_keys(call, conference_id, dtmf))

    async def _detect_keys(self, call: SinchCall, conference_id: str, dtmf: ConferenceDtmf) -> None:
        """Each group of keys goes out as a PIE, whose reply is obeyed: ``continue`` (or an empty 200, which
        Sinch's page asks for) keeps the call in the conference. Unconfirmed: what Sinch does with an
        unusable reply (here: nothing, the call stays) and with a runMenu (here: the call leaves)."""
        while call.conference_id == conference_id and not call.ended:
            digits = await next_keys(self.clock, call.dtmf, dtmf)
            if not digits:
                continue
            result = menu_result(conference_id, digits)
            body = callbacks.pie(call, self.clock.now(), self.application_key, result)
            svaml = await self.ask(call, body, "pie") or CONTINUE
            if svaml.action_name == "runMenu":
                self.leave_conference(call)
            await self.obey(call, svaml)

    def leave_conference(self, call: SinchCall) -> None:
        conference = self.conferences.get(call.conference_id or "")
        call.conference_id = None
        if call.detection is not None and call.detection is not asyncio.current_task():
            call.detection.cancel()  # the detection task itself leaves on its own (it obeys a reply)
        call.detection = None
        if conference is None:
            return
        conference.members.pop(call.id, None)
        if not conference.members:
            del self.conferences[conference.id]  # a Sinch conference lives while somebody is in it

    def manage_participant(
        self, conference: SinchConference, call_id: str, command: str, moh: str | None
    ) -> None:
        call = conference.members.get(call_id)
        if call is None:
            raise ApiError(404, f"Call {call_id} is not in conference {conference.id}.")
        if command in ("mute", "unmute"):
            call.muted = command == "mute"
        else:
            call.onhold = command == "onhold"
            call.moh = moh if call.onhold else call.moh

    def kick(self, conference: SinchConference, call_ids: list[str]) -> None:
        """Kicked participants are disconnected."""
        for call_id in call_ids:
            call = conference.members.get(call_id)
            if call is None:
                raise ApiError(404, f"Call {call_id} is not in conference {conference.id}.")
            self.hang_up(call, MANAGERHANGUP)

    def replace_activity(self, call: SinchCall, svaml: Svaml) -> None:
        """PATCH the call: what it was doing (a say, a park) stops and the new SVAML runs."""
        if call.activity is not None and not call.activity.done():
            call.activity.cancel()
        call.activity = call.start(self.clock, self.obey(call, svaml))
