"""Infobip conferences: create, add an existing call (PUT), dial a new call in (POST), remove, mute/deafen,
hang up, and finishing when the last participant has left."""

from __future__ import annotations

from typing import Any

from flowengine.simulator.base import ApiError
from flowengine.simulator.infobip import events
from flowengine.simulator.infobip.calls import CallOps
from flowengine.simulator.infobip.model import (
    ESTABLISHED,
    JOINED,
    JOINING,
    LEFT,
    InfobipCall,
    InfobipConference,
    Participant,
)
from flowengine.simulator.infobip.validation import Dial


class ConferenceOps(CallOps):
    """The conference half of the Infobip simulator."""

    def live_conference(self, conference_id: str) -> InfobipConference:
        conference = self.conferences.get(conference_id)
        if conference is None or conference.finished:
            raise ApiError(404, f"Conference with ID {conference_id} not found.")
        return conference

    def participant(self, conference: InfobipConference, call_id: str) -> Participant:
        participant = conference.participants.get(call_id)
        if participant is None or participant.state == LEFT:
            raise ApiError(404, f"Call {call_id} is not a participant of conference {conference.id}.")
        return participant

    def create_conference(
        self, name: str | None, configuration: str, max_duration: int, platform: dict[str, Any] | None
    ) -> InfobipConference:
        conference_id = self.new_id()
        conference = InfobipConference(
            id=conference_id,
            name=name or f"conference-{conference_id[:8]}",
            calls_configuration_id=configuration,
            platform=platform or {"applicationId": configuration},
            created_at=self.clock.now(),
            max_duration=max_duration,
        )
        self.conferences[conference.id] = conference
        self.emit(events.conference_created_event(conference, self.clock.now(), self.api_base_url))
        return conference

    def join(self, conference: InfobipConference, call: InfobipCall, role: str = "DEFAULT") -> Participant:
        """Add an established call (PUT …/call/{callId}); it leaves any other conference first."""
        if call.state != ESTABLISHED:
            raise ApiError(400, f"Call {call.id} is in state {call.state}; only ESTABLISHED calls can join.")
        if call.conference_id == conference.id:
            raise ApiError(400, f"Call {call.id} is already in conference {conference.id}.")
        if call.conference_id is not None:
            self._leave(call, "MOVED")
        participant = self._enrol(conference, call, role)
        self._joined(conference, participant)
        return participant

    def dial_into(self, conference: InfobipConference, dial: Dial, role: str = "DEFAULT") -> InfobipCall:
        """Add a new call (POST …/call): it joins when answered, or its join fails with the dial."""
        call = self.dial(dial, conference.calls_configuration_id, conference.platform)
        self._enrol(conference, call, role)
        return call

    def _enrol(self, conference: InfobipConference, call: InfobipCall, role: str) -> Participant:
        participant = Participant(call=call, role=role)
        # From now on the call and the conference (with the calls already in it) share one lane.
        self.webhooks.link(call.id, conference.id)
        conference.participants[call.id] = participant
        call.conference_id = conference.id
        call.conference_ids.append(conference.id)
        return participant

    def _joined(self, conference: InfobipConference, participant: Participant) -> None:
        now = self.clock.now()
        self.emit(events.participant_event("PARTICIPANT_JOINING", conference, participant, now))
        participant.state, participant.join_time = JOINED, now
        participant.muted, participant.deaf = participant.call.muted, participant.call.deaf
        self.emit(events.participant_event("PARTICIPANT_JOINED", conference, participant, now))

    def _on_established(self, call: InfobipCall) -> None:
        conference = self.conferences.get(call.conference_id or "")
        if conference is not None and call.id in conference.participants:
            participant = conference.participants[call.id]
            if participant.state == JOINING:
                self._joined(conference, participant)

    def _on_ended(self, call: InfobipCall) -> None:
        if call.conference_id is not None:
            self._leave(call, call.error_code or "NORMAL_HANGUP")

    def _leave(self, call: InfobipCall, reason: str) -> None:
        """The call is no longer in its conference: JOIN_FAILED if it never joined, else REMOVED."""
        conference = self.conferences.get(call.conference_id or "")
        call.conference_id = None
        if conference is None or call.id not in conference.participants:
            return
        participant = conference.participants[call.id]
        now = self.clock.now()
        if participant.state == JOINING:
            del conference.participants[call.id]
            self.emit(
                events.participant_event("PARTICIPANT_JOIN_FAILED", conference, participant, now, reason)
            )
        elif participant.state == JOINED:
            participant.state, participant.leave_time = LEFT, now
            self.emit(events.participant_event("PARTICIPANT_REMOVED", conference, participant, now, reason))
        self._finish_if_empty(conference)

    def remove(self, conference: InfobipConference, call_id: str) -> None:
        """DELETE …/call/{callId}: the participant leaves, the call stays up."""
        participant = self.participant(conference, call_id)
        if participant.state != JOINED:
            raise ApiError(400, f"Call {call_id} has not joined conference {conference.id} yet.")
        self._leave(participant.call, "REMOVED")

    def update_participants(
        self, conference: InfobipConference, flags: dict[str, bool], call_id: str | None
    ) -> None:
        """PATCH …/call/{callId} (one) or PATCH the conference (everybody): muted / deaf."""
        targets = [self.participant(conference, call_id)] if call_id else conference.active()
        for participant in targets:
            if "muted" in flags:
                participant.muted = participant.call.muted = flags["muted"]
            if "deaf" in flags:
                participant.deaf = participant.call.deaf = flags["deaf"]

    def hangup_conference(self, conference: InfobipConference) -> None:
        """Hang up every call in the conference; it then finishes."""
        for participant in list(conference.active()):
            self.hangup(participant.call, None)
        self._finish_if_empty(conference, force=True)

    def _finish_if_empty(self, conference: InfobipConference, force: bool = False) -> None:
        if conference.finished or conference.active():
            return
        ever_joined = any(p.join_time is not None for p in conference.participants.values())
        if not (ever_joined or force):
            return  # an empty new conference waits for its first participant
        conference.finished = True
        self.stop_conference_recording(conference)
        if conference.playback is not None and conference.playback.task is not None:
            conference.playback.task.cancel()
        conference.playback = None
        self.emit(events.conference_finished_event(conference, self.clock.now()))

    def start_conference_recording(self, conference: InfobipConference) -> None:
        if not conference.recording:
            conference.recording, conference.recording_started = True, self.clock.now()

    def stop_conference_recording(self, conference: InfobipConference) -> None:
        """The mixed file is ready (CONFERENCE_RECORDING_READY) once recording stops or the room ends."""
        if conference.recording:
            conference.recording = False
            self.emit(events.conference_recording_ready_event(conference, self.clock.now(), self.new_id()))

    def stop_conference_media(self, conference: InfobipConference) -> None:
        """Conference stop-play silences the conference and whatever plays to its participants (the seed
        article stops a call's hold music this way and then waits for its PLAY_FINISHED)."""
        self.stop_media(conference)
        for participant in conference.active():
            self.stop_media(participant.call)

    def connect(self, calls: list[InfobipCall], name: str | None, max_duration: int) -> InfobipConference:
        """POST /calls/1/connect: a new conference with these established calls in it."""
        for call in calls:
            if call.state != ESTABLISHED:
                raise ApiError(
                    400, f"Call {call.id} is in state {call.state}; only ESTABLISHED calls can connect."
                )
        first = calls[0]
        conference = self.create_conference(name, first.calls_configuration_id, max_duration, first.platform)
        for call in calls:
            self.join(conference, call)
        return conference
