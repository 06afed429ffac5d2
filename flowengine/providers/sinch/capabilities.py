"""What Sinch's Calling API v1 can run, and where (read by ``validate --provider sinch`` and ``serve``;
the README's provider table is generated from it, ``providers/capability_doc.py``).

Pure data: import nothing heavier than the language's platform types. v1 has no API for ``deafen``/
``undeafen`` (participants can be muted or held, not deafened), for prompts to a whole conference, for
recording a conference, or for stopping a prompt on a leg. Answering, moving a call into a conference and
bridging exist only in the SVAML reply to a callback about that same call (ICE, ACE, PIE; Sinch's SVAML
reference tables which actions each takes); the adapter refuses them anywhere else, so the validator
follows which events lead into each state (``EventSource`` below: which callback, if any, brings each
neutral event).
"""

from __future__ import annotations

from flowengine.flow.platform import Constraint, EventSource, Platform

ICE, ACE, PIE = "ice", "ace", "pie"
_CONFERENCE = ("conference_join", "conference_dial")

PLATFORM = Platform(
    name="sinch",
    title="Sinch Calling API v1",
    cannot={
        "deafen": "participants can be muted or held, not deafened",
        "undeafen": "participants can be muted or held, not deafened",
        "conference_say": "prompts play on a call's leg, never to a whole conference",
        "conference_play": "prompts play on a call's leg, never to a whole conference",
        "conference_stop_play": "prompts play on a call's leg, never to a whole conference",
        "stop_play": "a prompt on a leg cannot be stopped",
        "conference_record": "v1 records single calls (`startRecording` in SVAML), never a conference",
        "conference_stop_record": "v1 records single calls (`startRecording` in SVAML), never a conference",
    },
    constraints=(
        Constraint("sinch/answer-place", "answer", "place",
                   "only in the reply to the call's ICE (SVAML `answer`)", replies=frozenset({ICE})),
        Constraint("sinch/conference_join-place", "conference_join", "place",
                   "only in the reply to an ICE, ACE or PIE about the call (SVAML `connectConf`)",
                   replies=frozenset({ICE, ACE, PIE})),
        Constraint("sinch/dial-connect-place", "dial", "place",
                   "with `connect`, only in the reply to an ICE or PIE about the `connect` call (SVAML "
                   "`connectPstn`)", replies=frozenset({ICE, PIE}), about="connect", when="connect"),
        Constraint("sinch/reply-closed", "conference_join", "closed",
                   "a reply carries one SVAML action: after `capture_dtmf` (a menu), `conference_join`, "
                   "`dial` with `connect` or `hangup` in a reply about a call, `answer`, `conference_join` "
                   "or `dial` with `connect` on that call cannot follow in the same list"),
        Constraint("sinch/dial-connect-to", "dial", "param",
                   "`connectPstn` bridges to phone numbers only: with `connect`, `to` is one",
                   param="to", kinds=("phone",), when="connect"),
        Constraint("sinch/record-beep", "record", "param", "SVAML `startRecording` has no beep",
                   param="beep", values=(False,)),
        Constraint("sinch/record-max_duration", "record", "param",
                   "SVAML `startRecording` has no time limit (`stop_record` ends a recording)",
                   param="max_duration"),
        Constraint("sinch/capture_dtmf-terminator", "capture_dtmf", "param",
                   "a menu ends keypad input with `#` only",
                   param="terminator", values=("#",)),
        Constraint("sinch/dial-timeout", "dial", "timeout",
                   "a callout rings as long as Sinch lets it: the engine hangs it up 2 s after `timeout` "
                   "and the flow gets `call.failed` (`no_answer`)", param="timeout", engine=True),
        Constraint("sinch/conference_dial-timeout", "conference_dial", "timeout",
                   "as for `dial`: the engine hangs the callout up 2 s after `timeout`; the flow gets "
                   "`participant.join_failed` and `call.failed` (`no_answer`)", param="timeout", engine=True),
    ),
    first=EventSource("call.received", ICE, role="caller"),
    sources=(
        EventSource("call.answered", inherit="answer"),  # the adapter's follow-up, in the ICE reply
        EventSource("call.answered", ACE, after=("dial", "conference_dial")),
        EventSource("participant.joined", ACE, after=("conference_dial",)),
        EventSource("participant.joined", None, after=("conference_join",)),  # derived, later: no reply
        EventSource("dtmf.captured", PIE, after=("capture_dtmf",), in_reply=True),  # a menu's result
        EventSource("dtmf.captured", None, after=_CONFERENCE),  # keys detected in a conference
        EventSource("conference.created", inherit="conference_create"),
        EventSource("conference.finished", inherit="conference_hangup"),
    ),
    closes={"capture_dtmf": "call", "conference_join": "call", "dial": "connect", "hangup": "call"},
    reply_names={ICE: "ICE", ACE: "ACE", PIE: "PIE"},
)
PLATFORM.check()

CAPABILITIES: frozenset[str] = PLATFORM.supported
