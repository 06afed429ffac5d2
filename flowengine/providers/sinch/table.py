"""Sinch's command table (see ``providers/table.py``): every neutral action's request(s) as
``commands.py`` and ``svaml.py`` build them, whether it is idempotent, how an unknown outcome is settled
and which refusals mean "already so".

What goes into a callback's SVAML reply has no unknown outcome. Sinch lists no calls and cannot find
one by its ``custom`` field, so a callout whose answer is lost cannot be looked for: it is not placed a
second time (the callee would ring twice). The callout's ``custom`` carries the key, so the callout is
bound under a stand-in id that its first callback (ACE or DiCE) replaces; the engine's ring timeout
covers one that was never placed, and one that comes up after the flow let it go is hung up. The
"already so" texts are the simulator's wording (Sinch's is unconfirmed): a 404 for a call or conference
that is gone is matched on status alone.
"""

from __future__ import annotations

from flowengine.providers.table import AlreadySo, CommandSpec, command_table

GONE = AlreadySo(404, "", "the call has ended")
CONFERENCE_GONE = AlreadySo(404, "", "the conference has ended")
# A participant update on a call or conference that is gone: nothing is left to mute, hold or resume.
PARTICIPANT_GONE = AlreadySo(404, "", "the participant, its call or the conference is gone")
REPLY_OR = "SVAML in the reply to the call's ICE/ACE/PIE; else "
NO_QUERY = "Sinch cannot be asked whether it was done; a second copy would be heard twice"
NO_CALL_LIST = "Sinch lists no calls; its callbacks carry `custom`"


def _unsupported(action: str) -> CommandSpec:
    return CommandSpec(action, "", False, "unsupported")


TABLE = command_table(
    CommandSpec("answer", "SVAML `answer` in the ICE reply", True, "in_reply",
                why="a second answer in the same reply is dropped"),
    CommandSpec("hangup", REPLY_OR + "PATCH /calls/id/{id} `hangup`", True, "resend", already_so=(GONE,)),
    CommandSpec("say", REPLY_OR + "PATCH /calls/id/{id}/leg/{leg} `say`", False, "at_most_once",
                why=NO_QUERY),
    CommandSpec("play", REPLY_OR + "PATCH /calls/id/{id}/leg/{leg} `playFiles`", False, "at_most_once",
                why=NO_QUERY),
    _unsupported("stop_play"),
    CommandSpec("record", REPLY_OR + "PATCH /calls/id/{id} `startRecording` + `continue`", False,
                "at_most_once", why="no query shows a recording"),
    CommandSpec("stop_record", REPLY_OR + "PATCH /calls/id/{id} `stopRecording` + `continue`", True, "resend",
                already_so=(GONE,)),
    CommandSpec("capture_dtmf", "SVAML `runMenu` in the reply; else the prompt over PATCH …/leg", False,
                "at_most_once", why="no query; the flow's timer covers a capture that never started"),
    CommandSpec("send_dtmf", REPLY_OR + "PATCH /calls/id/{id} `sendDtmf` + `continue`", False, "at_most_once",
                why="no query; keys sent twice would be dialled twice"),
    CommandSpec("dial", "POST /callouts `customCallout`, `custom` carries the key; its own ICE is answered "
                "with `connectPstn` (with `connect`: SVAML `connectPstn` in the ICE or PIE reply)", False,
                "awaited", keyed=True, why=NO_CALL_LIST),
    CommandSpec("conference_create", "none: the id is made of the flow's name and the key (Sinch creates "
                "the conference with its first participant)", True, "local", keyed=True),
    CommandSpec("conference_join", "SVAML `connectConf` in the reply to the call's ICE/ACE/PIE", True,
                "in_reply", confirm="GET /conferences/id/{id} lists the call"),
    CommandSpec("conference_dial", "POST /callouts `conferenceCallout`, `custom` carries the key", False,
                "awaited", keyed=True, why=NO_CALL_LIST),
    _unsupported("conference_say"),
    _unsupported("conference_play"),
    _unsupported("conference_stop_play"),
    _unsupported("conference_record"),
    _unsupported("conference_stop_record"),
    CommandSpec("conference_hangup", "DELETE /conferences/id/{id}", True, "resend",
                already_so=(CONFERENCE_GONE,)),
    CommandSpec("conference_info", "GET /conferences/id/{id}", True, "resend"),
    CommandSpec("mute", "PATCH /conferences/id/{id}/{call} `mute`", True, "resend",
                already_so=(PARTICIPANT_GONE,)),
    CommandSpec("unmute", "PATCH /conferences/id/{id}/{call} `unmute`", True, "resend",
                already_so=(PARTICIPANT_GONE,)),
    _unsupported("deafen"),
    _unsupported("undeafen"),
    CommandSpec("hold", "PATCH /conferences/id/{id}/{call} `onhold` (+ `moh`)", True, "resend",
                already_so=(PARTICIPANT_GONE,)),
    CommandSpec("resume", "PATCH /conferences/id/{id}/{call} `resume`", True, "resend",
                already_so=(PARTICIPANT_GONE,)),
    CommandSpec("kick", "DELETE /conferences/id/{id}/{call}", True, "resend",
                already_so=(AlreadySo(404, "", "the participant has left"),)),
)
