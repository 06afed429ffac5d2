"""The neutral actions Infobip's Calls API can carry out (read by ``flowengine validate --provider``).

Pure data: import nothing heavier than the vocabulary. Infobip has no hold of its own: ``hold`` and
``resume`` are carried out as a muted, deafened participant hearing music played to its call.
"""

from __future__ import annotations

CAPABILITIES: frozenset[str] = frozenset({
    "answer",
    "hangup",
    "say",
    "play",
    "stop_play",
    "record",
    "stop_record",
    "capture_dtmf",
    "send_dtmf",
    "dial",
    "conference_create",
    "conference_join",
    "conference_dial",
    "conference_say",
    "conference_play",
    "conference_stop_play",
    "conference_hangup",
    "conference_info",
    "mute",
    "unmute",
    "deafen",
    "undeafen",
    "hold",
    "resume",
    "kick",
})
