"""Reconciliation on Infobip: GET each call and conference a session believes live.

An ended call is no longer served by GET (404): it lives on in the call history, which says whether it
was answered first, why it ended and the conferences it was in; it is looked for there among the
session's conferences' calls, and reads as plainly gone when not found. A call still served says its
``state``. A conference that is over answers 404.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flowengine.errors import ProviderError
from flowengine.providers.infobip import commands
from flowengine.providers.infobip.client import InfobipClient
from flowengine.providers.infobip.webhooks import failure_reason, finished_reason
from flowengine.providers.observing import ask_each
from flowengine.runtime.reconcile import GONE_CALL, GONE_CONFERENCE, CallSeen, ConferenceSeen, Observation

HISTORY_PAGES = 5  # call logs read per conference looking for calls that have ended
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

    rooms = list(conferences)
    seen = await ask_each(calls, ask_call, GONE_CALL)
    gone = {call_id for call_id, found in seen.items() if found is GONE_CALL}
    if gone:
        seen.update(await _from_history(client, gone, rooms))
    return Observation(seen, await ask_each(rooms, ask_conference, GONE_CONFERENCE))


async def _from_history(client: InfobipClient, gone: set[str], rooms: list[str]) -> dict[str, CallSeen]:
    """What the call logs say of the ``gone`` calls, looked for among the calls of ``rooms``."""
    found: dict[str, CallSeen] = {}
    for room in rooms:
        for page in range(HISTORY_PAGES):
            try:
                answer = await client.send(commands.list_calls(page, history=True, conferenceId=room))
            except ProviderError:
                return found  # what could not be read stays plainly gone
            for log in answer.get("results") or []:
                if isinstance(log, dict) and log.get("callId") in gone:
                    found[str(log["callId"])] = logged(log)
            paging = answer.get("paging") or {}
            if not isinstance(paging.get("totalPages"), int) or page + 1 >= paging["totalPages"]:
                break
    return found


def logged(log: dict[str, Any]) -> CallSeen:
    """A ``CallLog`` as reconciliation reads it: ended, whether it was answered first, why, and where."""
    code = (log.get("errorCode") or {}).get("name") if isinstance(log.get("errorCode"), dict) else None
    answered = bool(log.get("answerTime"))
    reason = finished_reason(code, log.get("hangupSource")) if answered else failure_reason(code)
    return CallSeen(ended=True, reason=reason, answered=answered,
                    rooms=frozenset(str(room) for room in log.get("conferenceIds") or []))
