"""Reconciliation on Infobip: GET each call and conference a session believes live.

An ended call is no longer served by GET (404: it lives on only in the call logs), which reads as gone;
one still served says its ``state``. A conference that is over answers 404 too.
"""

from __future__ import annotations

from collections.abc import Iterable

from flowengine.providers.infobip import commands
from flowengine.providers.infobip.client import InfobipClient
from flowengine.providers.infobip.webhooks import failure_reason
from flowengine.providers.observing import ask_each
from flowengine.runtime.reconcile import GONE_CALL, GONE_CONFERENCE, CallSeen, ConferenceSeen, Observation

_RINGING = frozenset({"CALLING", "RINGING", "PRE_ESTABLISHED"})


def call_seen(state: str) -> CallSeen:
    """A ``Call.state`` as reconciliation reads it."""
    if state == "ESTABLISHED":
        return CallSeen(up=True)
    if state in _RINGING:
        return CallSeen()
    return CallSeen(ended=True, reason="hangup" if state == "FINISHED" else failure_reason(state))


async def observe(client: InfobipClient, calls: Iterable[str], conferences: Iterable[str]) -> Observation:
    async def ask_call(call_id: str) -> CallSeen:
        return call_seen(str((await client.send(commands.get_call(call_id))).get("state") or ""))

    async def ask_conference(conference_id: str) -> ConferenceSeen:
        answer = await client.send(commands.conference_info(conference_id))
        joined = {
            str(item.get("callId")) for item in answer.get("participants") or []
            if isinstance(item, dict) and str(item.get("state") or "").upper() == "JOINED"
        }
        return ConferenceSeen(members=frozenset(joined))

    return Observation(
        await ask_each(calls, ask_call, GONE_CALL),
        await ask_each(conferences, ask_conference, GONE_CONFERENCE),
    )
