"""Infobip's command table (see ``providers/table.py``): every neutral action's request(s) as
``commands.py`` builds them, whether it is idempotent, how an unknown outcome is settled, and which
refusals mean "already so".

The "already so" texts are the simulator's wording (``simulator/infobip``); Infobip's exact wording is
unconfirmed, so each is matched on status plus a loose pattern, and a 404 for a call or conference that
is gone is matched on status alone.
"""

from __future__ import annotations

from flowengine.providers.table import AlreadySo, CommandSpec, command_table

CALL_GONE = AlreadySo(404, "", "the call has ended")
CONFERENCE_GONE = AlreadySo(404, "", "the conference has ended")
HOLD_MUSIC = "the update is resent; the music, like any play, at most once (not after its unknown outcome, " \
             "nor when an interrupted hold is resumed)"
# A participant update on a call or conference that is gone: nothing is left to mute, hold or resume.
PARTICIPANT_GONE = AlreadySo(404, "", "the participant, its call or the conference is gone")
NO_QUERY = "Infobip cannot be asked whether it was done; a second copy would be heard twice"

TABLE = command_table(
    CommandSpec("answer", "POST /calls/{id}/answer", False, "query",
                query="GET /calls/{id}: ESTABLISHED means answered",
                already_so=(AlreadySo(400, "ESTABLISHED|already answered", "the call is already answered"),)),
    CommandSpec("hangup", "POST /calls/{id}/hangup (with a `reason`: GET /calls/{id} first, as the "
                "`errorCode` must fit the call's state)", True, "resend", already_so=(CALL_GONE,)),
    CommandSpec("say", "POST /calls/{id}/say", False, "at_most_once", why=NO_QUERY),
    CommandSpec("play", "POST /calls/{id}/play", False, "at_most_once", why=NO_QUERY),
    CommandSpec("stop_play", "POST /calls/{id}/stop-play", True, "resend", already_so=(CALL_GONE,)),
    CommandSpec("record", "POST /calls/{id}/start-recording", False, "at_most_once",
                why="the call does not show whether it is recorded"),
    CommandSpec("stop_record", "POST /calls/{id}/stop-recording", True, "resend",
                already_so=(AlreadySo(400, "not being recorded", "nothing is being recorded"), CALL_GONE)),
    CommandSpec("capture_dtmf", "POST /calls/{id}/capture/dtmf", False, "at_most_once",
                why="no query; the flow's timer covers a capture that never started"),
    CommandSpec("send_dtmf", "POST /calls/{id}/send-dtmf", False, "at_most_once",
                why="no query; keys sent twice would be dialled twice"),
    CommandSpec("dial", "POST /calls (with `connect`: POST /calls/{id}/connect), `customData` has the key",
                False, "query", keyed=True,
                query="GET /calls, then GET /calls/history, for the call whose `customData` has the key"),
    CommandSpec("conference_create", "POST /conferences, `name` is the flow's name, else the key", False,
                "query", keyed=True, query="GET /conferences?name= for the live conference of that name"),
    CommandSpec("conference_join", "PUT /conferences/{id}/call/{call}", False, "query",
                query="GET /calls/{call}: its `conferenceId` is the conference",
                already_so=(AlreadySo(400, "already in conference", "the call is already in it"),)),
    CommandSpec("conference_dial", "POST /conferences/{id}/call, `callRequest.customData` carries the key",
                False, "query", keyed=True,
                query="GET /calls?conferenceId=, then GET /calls/history, for the key in `customData`"),
    CommandSpec("conference_say", "POST /conferences/{id}/say", False, "at_most_once", why=NO_QUERY),
    CommandSpec("conference_play", "POST /conferences/{id}/play", False, "at_most_once", why=NO_QUERY),
    CommandSpec("conference_stop_play", "POST /conferences/{id}/stop-play", True, "resend",
                already_so=(CONFERENCE_GONE,)),
    CommandSpec("conference_record", "POST /conferences/{id}/start-recording `{recordingType: AUDIO}`", False,
                "at_most_once", why="the conference does not show whether it is recorded"),
    CommandSpec("conference_stop_record", "POST /conferences/{id}/stop-recording", True, "resend",
                already_so=(AlreadySo(400, "not being recorded", "nothing is being recorded"),
                            CONFERENCE_GONE)),
    CommandSpec("conference_hangup", "POST /conferences/{id}/hangup", True, "resend",
                already_so=(CONFERENCE_GONE,)),
    CommandSpec("conference_info", "GET /conferences/{id}", True, "resend"),
    CommandSpec("mute", "PATCH /conferences/{id}/call/{call} `{muted: true}`", True, "resend",
                already_so=(PARTICIPANT_GONE,)),
    CommandSpec("unmute", "PATCH /conferences/{id}/call/{call} `{muted: false}`", True, "resend",
                already_so=(PARTICIPANT_GONE,)),
    CommandSpec("deafen", "PATCH /conferences/{id}/call/{call} `{deaf: true}`", True, "resend",
                already_so=(PARTICIPANT_GONE,)),
    CommandSpec("undeafen", "PATCH /conferences/{id}/call/{call} `{deaf: false}`", True, "resend",
                already_so=(PARTICIPANT_GONE,)),
    CommandSpec("hold", "PATCH …/call/{call} `{muted, deaf: true}`, POST /calls/{call}/play (music)", True,
                "resend", already_so=(PARTICIPANT_GONE,), why=HOLD_MUSIC),
    CommandSpec("resume", "POST /calls/{call}/stop-play, PATCH …/call/{call} `{muted, deaf: false}`", True,
                "resend", already_so=(PARTICIPANT_GONE,)),
    CommandSpec("kick", "DELETE /conferences/{id}/call/{call}, POST /calls/{call}/hangup (a participant "
                "still joining, its removal refused: the hang-up alone)", True, "resend",
                already_so=(AlreadySo(404, "", "the participant or its call is gone"),)),
)
