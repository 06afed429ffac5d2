"""Reconciliation on Sinch: GET each call and conference a session believes live.

A call answers with ``status`` ONGOING or FINAL and a ``result`` (ANSWERED once answered); a conference
with no participants left answers 404, which reads as over. The bridged party of a ``connectPstn`` has
no call id of its own (``~callee``): it is not asked about, its call's own answer covers it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flowengine.providers.observing import ask_each
from flowengine.providers.sinch import commands
from flowengine.providers.sinch.answers import participants
from flowengine.providers.sinch.callbacks import BRIDGE_SUFFIX, failed_reason, finished_reason
from flowengine.providers.sinch.client import SinchClient
from flowengine.runtime.reconcile import GONE_CALL, GONE_CONFERENCE, CallSeen, ConferenceSeen, Observation


def call_seen(call: dict[str, Any]) -> CallSeen:
    """A GET call answer as reconciliation reads it."""
    result, why = str(call.get("result") or "N/A").upper(), str(call.get("reason") or "N/A").upper()
    if str(call.get("status") or "").upper() != "FINAL":
        return CallSeen(up=result == "ANSWERED")
    reason = finished_reason(why) if result == "ANSWERED" else failed_reason(result, why)
    return CallSeen(ended=True, reason=reason)


async def observe(client: SinchClient, calls: Iterable[str], conferences: Iterable[str]) -> Observation:
    async def ask_call(call_id: str) -> CallSeen:
        return call_seen(await client.send(commands.get_call(call_id)))

    async def ask_conference(conference_id: str) -> ConferenceSeen:
        answer = await client.send(commands.conference_info(conference_id))
        members = {str(item.get("call_id")) for item in participants(answer)}
        return ConferenceSeen(members=frozenset(members))

    own = [call_id for call_id in calls if not call_id.endswith(BRIDGE_SUFFIX)]
    return Observation(
        await ask_each(own, ask_call, GONE_CALL),
        await ask_each(conferences, ask_conference, GONE_CONFERENCE),
    )
