"""Infobip call lifecycle: inbound and outbound calls, answer, hangup, say/play, DTMF, recording.

Conference membership is layered on top (``conferences.py``) through two hooks, ``_on_established`` and
``_on_ended``, so this module knows nothing about conferences beyond the call's ``conferenceId``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flowengine.simulator.base import ApiError, Simulator
from flowengine.simulator.infobip import events
from flowengine.simulator.infobip.model import (
    BUSY,
    CALLING,
    CANCELLED,
    ESTABLISHED,
    FAILED,
    FINISHED,
    NO_ANSWER,
    RINGING,
    InfobipCall,
    InfobipConference,
    Playback,
)
from flowengine.simulator.infobip.validation import Capture, Dial, Media
from flowengine.simulator.legs import FILE_SECONDS, Leg, run_dial, speech_seconds, start_party
from flowengine.simulator.parties import DialOutcome, PartyScript, plan_dial

# (state, errorCode, hangupSource) for each way a dial can fail.
_DIAL_FAILURES = {
    DialOutcome.NO_ANSWER: (NO_ANSWER, "NO_ANSWER", "PLATFORM"),
    DialOutcome.BUSY: (BUSY, "BUSY", "ENDPOINT"),
    DialOutcome.REJECTED: (FAILED, "REJECTED", "ENDPOINT"),
    DialOutcome.UNREACHABLE: (FAILED, "DESTINATION_UNAVAILABLE", "PLATFORM"),
}
# Call state after an API hangup of a call that was never answered, by the errorCode asked for.
_UNANSWERED_STATE = {"BUSY": BUSY, "NO_ANSWER": NO_ANSWER, "CANCELLED": CANCELLED}


class CallOps(Simulator):
    """The call half of the Infobip simulator."""

    calls_configuration_id: str
    inbound_ring_timeout: float
    # Files (fileId or fileUrl) that cannot be played: playing one yields an ERROR event instead.
    missing_files: set[str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: dict[str, InfobipCall] = {}
        self.conferences: dict[str, InfobipConference] = {}

    def legs(self) -> Iterable[Leg]:
        return self.calls.values()

    def clear_state(self) -> None:
        self.calls.clear()
        self.conferences.clear()

    # -- hooks for conferences.py ---------------------------------------------------------------
    def _on_established(self, call: InfobipCall) -> None:
        """The call was answered."""

    def _on_ended(self, call: InfobipCall) -> None:
        """The call ended (its CALL_FINISHED/CALL_FAILED is already queued)."""

    def lane_of(self, body: dict[str, Any]) -> str:
        """A call's events go in its lane, a conference's in the conference's; ``_enrol`` merges the two
        when a call joins or is dialled into a conference."""
        return str(body.get("callId") or body.get("conferenceId") or super().lane_of(body))

    # -- lookups --------------------------------------------------------------------------------
    def live_call(self, call_id: str) -> InfobipCall:
        """A call that has not ended; 404 otherwise (ended calls only live on in the call logs)."""
        call = self.calls.get(call_id)
        if call is None or call.ended:
            raise ApiError(404, f"Call with ID {call_id} not found.")
        return call

    def established_call(self, call_id: str) -> InfobipCall:
        call = self.live_call(call_id)
        if call.state != ESTABLISHED:
            raise ApiError(400, f"Call {call_id} is in state {call.state}; the action needs ESTABLISHED.")
        return call

    # -- creating calls -------------------------------------------------------------------------
    def new_call(
        self,
        *,
        remote: str,
        endpoint: dict[str, Any],
        from_: str,
        to: str,
        direction: str,
        script: PartyScript,
        configuration: str,
        platform: dict[str, Any] | None,
    ) -> InfobipCall:
        call = InfobipCall(
            id=self.new_id(),
            remote=remote,
            script=script,
            endpoint=endpoint,
            from_=from_,
            to=to,
            direction=direction,
            state=CALLING,
            calls_configuration_id=configuration,
            platform=platform or {"applicationId": configuration},
            start_time=self.clock.now(),
        )
        self.calls[call.id] = call
        return call

    def dial(self, dial: Dial, configuration: str, platform: dict[str, Any] | None = None) -> InfobipCall:
        """Start an outbound call and play the dialled party's script out in the background."""
        call = self.new_call(
            remote=dial.remote,
            endpoint=dial.endpoint,
            from_=dial.from_,
            to=dial.remote,
            direction="OUTBOUND",
            script=self.parties.script_for(dial.remote),
            configuration=configuration,
            platform=platform or dial.platform,
        )
        call.connect_timeout = dial.connect_timeout
        call.max_duration = dial.max_duration
        call.custom_data = dial.custom_data
        call.external_id = dial.external_id
        call.machine_detection = dial.machine_detection
        call.start(self.clock, self._play_dial(call))
        return call

    async def _play_dial(self, call: InfobipCall) -> None:
        outcome = await run_dial(
            self.clock, plan_dial(call.script, call.connect_timeout), lambda: self._ringing(call)
        )
        if outcome is DialOutcome.ANSWERED:
            self.establish(call)
        else:
            state, code, source = _DIAL_FAILURES[outcome]
            self.end_call(call, state=state, code=code, source=source)

    def _ringing(self, call: InfobipCall) -> None:
        call.state = RINGING
        call.ring_start = self.clock.now()
        self.emit(events.call_state_event("CALL_RINGING", call, self.clock.now(), self.api_base_url))

    def receive(self, from_: str, to: str, script: PartyScript, configuration: str) -> InfobipCall:
        """An inbound call: CALL_RECEIVED, then the caller waits ``inbound_ring_timeout`` for an answer."""
        call = self.new_call(
            remote=from_,
            endpoint={"type": "PHONE", "phoneNumber": from_},
            from_=from_,
            to=to,
            direction="INBOUND",
            script=script,
            configuration=configuration,
            platform=None,
        )
        call.state = RINGING
        call.ring_start = call.start_time
        self.emit(events.call_state_event("CALL_RECEIVED", call, self.clock.now(), self.api_base_url))

        async def give_up() -> None:
            await self.clock.sleep(self.inbound_ring_timeout)
            if call.state == RINGING:
                self.end_call(call, state=NO_ANSWER, code="NO_ANSWER", source="PLATFORM")

        call.ring_timer = call.start(self.clock, give_up())
        return call

    # -- answer and hangup ----------------------------------------------------------------------
    def answer(self, call: InfobipCall, custom_data: dict[str, str] | None) -> None:
        if call.direction != "INBOUND" or call.state not in (CALLING, RINGING):
            raise ApiError(400, f"Call {call.id} cannot be answered in state {call.state}.")
        if custom_data:
            call.custom_data = {**(call.custom_data or {}), **custom_data}
        if call.ring_timer is not None:
            call.ring_timer.cancel()
        self.establish(call)

    def establish(self, call: InfobipCall) -> None:
        call.state = ESTABLISHED
        call.answer_time = self.clock.now()
        self.emit(events.call_state_event("CALL_ESTABLISHED", call, self.clock.now(), self.api_base_url))
        start_party(
            self.clock,
            call,
            lambda: self.end_call(call, state=FINISHED, code="NORMAL_HANGUP", source="ENDPOINT"),
        )

        async def cap_duration() -> None:
            await self.clock.sleep(call.max_duration)
            self.end_call(call, state=FINISHED, code="NORMAL_HANGUP", source="PLATFORM")

        call.start(self.clock, cap_duration())
        if call.machine_detection is not None:
            call.start(self.clock, self._detect_machine(call, call.machine_detection))
        self._on_established(call)

    async def _detect_machine(self, call: InfobipCall, seconds: float) -> None:
        """Machine detection listens a while after the answer, then says who answered."""
        await self.clock.sleep(seconds)
        if call.ended:
            return
        call.detection_result = "MACHINE" if call.script.machine else "HUMAN"
        properties = {"detectionResult": call.detection_result, "confidenceRating": 0.9}
        self.emit(events.call_event("MACHINE_DETECTION_FINISHED", call, self.clock.now(), properties))

    def hangup(self, call: InfobipCall, code: str | None) -> None:
        """POST …/hangup: an established call finishes, an unanswered one is cancelled (or failed with the
        requested errorCode, e.g. BUSY to reject an inbound call). The code must fit the call's state
        (Infobip's hangup reference): NORMAL_HANGUP ends an established call, every other code one not yet
        established; a code that does not fit is refused and the call stays as it was."""
        if code is not None and (code == "NORMAL_HANGUP") != (call.state == ESTABLISHED):
            needs = "an established call" if code == "NORMAL_HANGUP" else "a call not yet established"
            raise ApiError(400, f"errorCode {code} needs {needs}; call {call.id} is {call.state}.")
        if call.state == ESTABLISHED:
            self.end_call(call, state=FINISHED, code=code or "NORMAL_HANGUP", source="API")
        else:
            code = code or "CANCELLED"
            self.end_call(call, state=_UNANSWERED_STATE.get(code, FAILED), code=code, source="API")

    def end_call(self, call: InfobipCall, *, state: str, code: str, source: str) -> None:
        if call.ended:
            return
        now = self.clock.now()
        call.state, call.end_time, call.error_code, call.hangup_source = state, now, code, source
        if call.playback is not None:
            call.playback = None  # the caller is gone: no SAY/PLAY_FINISHED
        call.stop_tasks()
        self.emit(events.call_ended_event(call, now))
        self._on_ended(call)
        call.conference_id = None
        if call.recording:
            self.stop_recording(call)

    # -- media ----------------------------------------------------------------------------------
    def start_media(self, target: InfobipCall | InfobipConference, media: Media) -> None:
        """Say or play; a new one cuts the current one short (its *_FINISHED has playedCompletely false)."""
        self.stop_media(target)
        if media.source is not None and media.source in self.missing_files:
            self.emit(events.error_event(target, self.clock.now(), "PLAY", "FILE_NOT_FOUND", media.source))
            return
        if media.text is not None:
            duration = speech_seconds(media.text, media.loops, media.speech_rate)
        else:
            duration = FILE_SECONDS * media.loops
        if media.timeout_ms is not None:
            duration = min(duration, media.timeout_ms / 1000)
        playback = Playback(media.kind, self.clock.now(), media.custom_data)
        target.playback = playback

        async def finish_later() -> None:
            await self.clock.sleep(duration)
            self._finish_media(target, playback, completely=True)

        if isinstance(target, InfobipCall):
            playback.task = target.start(self.clock, finish_later())
        else:
            playback.task = self.spawn(finish_later())

    def stop_media(self, target: InfobipCall | InfobipConference) -> None:
        playback = target.playback
        if playback is not None:
            if playback.task is not None:
                playback.task.cancel()
            self._finish_media(target, playback, completely=False)

    def _finish_media(
        self, target: InfobipCall | InfobipConference, playback: Playback, *, completely: bool
    ) -> None:
        if target.playback is not playback:
            return
        target.playback = None
        now = self.clock.now()
        self.emit(
            events.media_finished_event(
                playback.kind,
                target,
                now,
                duration_ms=round((now - playback.started) * 1000),
                completely=completely,
                custom_data=playback.custom_data,
            )
        )

    # -- DTMF and recording ---------------------------------------------------------------------
    def capture_dtmf(self, call: InfobipCall, capture: Capture) -> None:
        if call.capture is not None:
            call.capture.cancel()

        async def collect() -> None:
            got = await call.dtmf.collect(
                self.clock,
                max_digits=capture.max_length,
                timeout=capture.timeout,
                terminator=capture.terminator,
                digit_timeout=capture.digit_timeout,
            )
            call.capture = None
            self.emit(
                events.dtmf_event(call, self.clock.now(), got.digits, got.timed_out, capture.custom_data)
            )

        call.capture = call.start(self.clock, collect())

    def start_recording(self, call: InfobipCall) -> None:
        call.recording = True
        call.recording_started = self.clock.now()

    def stop_recording(self, call: InfobipCall) -> None:
        if call.recording:
            call.recording = False
            self.emit(events.recording_ready_event(call, self.clock.now(), self.new_id()))
