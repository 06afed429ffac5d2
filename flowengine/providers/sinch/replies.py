"""Which SVAML reply a callback gets: the reply the channel for that callback gathers, or none.

ICE, ACE and PIE take SVAML in the HTTP reply; DiCE and Notify do not. Two callbacks of those kinds are
answered otherwise: a PIE reporting keys a conference participant pressed gets an empty 200 (Sinch's
conference DTMF page asks only for that; what it would make of SVAML there is unconfirmed), and the ICE
Sinch raises for one of our customCallouts is answered at once with how to connect it (Sinch's callout
reference: only connectPstn is allowed there), whatever the flow does.
"""

from __future__ import annotations

from flowengine.providers.sinch import svaml
from flowengine.providers.sinch.callbacks import CALLOUT_ICE, CalloutTag, from_conference
from flowengine.providers.sinch.svaml import ReplyBuilder
from flowengine.runtime.events import Event


def reply_for(trigger: Event | None) -> ReplyBuilder | None:
    """The reply the callback whose first event is ``trigger`` takes (None: an empty 200)."""
    if trigger is None or from_conference(trigger):
        return None
    kind = str(trigger.raw.get("event") or "").lower()
    if kind not in svaml.REPLY_EVENTS:
        return None
    reply = ReplyBuilder(kind)
    if trigger.name == CALLOUT_ICE:  # our callout's own ICE: connect it to where it was placed
        to = trigger.raw.get("to")
        reply.act(svaml.connect_callout(to if isinstance(to, dict) else {}, trigger.data.get("from")))
    return reply


def joins_conference(trigger: Event | None) -> bool:
    """Whether ``trigger`` is the ACE of a call dialled into a conference: its reply's action must let the
    call go on into the conference (``continue``), so no menu may take its place."""
    if trigger is None or str(trigger.raw.get("event") or "").lower() != "ace":
        return False
    tag = CalloutTag.decode(trigger.raw.get("custom"))
    return tag is not None and tag.conference_id is not None
