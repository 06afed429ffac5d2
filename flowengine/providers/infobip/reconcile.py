"""Asking Infobip whether a command whose outcome is unknown was carried out (the ``query`` rows of
``table.py``): the call's state, the conference a call is in, a conference by name, and a dialled call
by the correlation key in its ``customData`` (live calls first, then the call history, in case it has
ended already: a busy callee's call is over within a second).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from flowengine.errors import ProviderError
from flowengine.providers.base import JSON
from flowengine.providers.infobip import commands
from flowengine.providers.infobip.client import InfobipClient
from flowengine.runtime.ports import ActionResult, ProviderCommand

MAX_PAGES = 20  # 2,000 calls each way: past that a reconcile gives up and the command fails
Find = Callable[[InfobipClient, ProviderCommand], Awaitable[ActionResult | None]]


async def _call(client: InfobipClient, call_id: str) -> JSON | None:
    """GET the call; None when it is gone (Infobip answers 404 for ended calls)."""
    try:
        return await client.send(commands.get_call(call_id))
    except ProviderError as exc:
        if exc.status == 404:
            return None
        raise


async def answered(client: InfobipClient, command: ProviderCommand) -> ActionResult | None:
    call = await _call(client, command.args["call_id"])
    return ActionResult() if call is not None and call.get("state") == "ESTABLISHED" else None


async def joined(client: InfobipClient, command: ProviderCommand) -> ActionResult | None:
    call = await _call(client, command.args["call_id"])
    in_it = call is not None and call.get("conferenceId") == command.args["conference_id"]
    return ActionResult() if in_it else None


async def created_conference(client: InfobipClient, command: ProviderCommand) -> ActionResult | None:
    name = command.args.get("name") or command.key
    for page in range(MAX_PAGES):
        answer = await client.send(commands.list_conferences(name, page))
        for conference in _results(answer):
            if conference.get("name") == name and isinstance(conference.get("id"), str):
                return ActionResult(id=conference["id"])
        if _last_page(answer, page):
            return None
    raise _too_many(command)


async def dialled(client: InfobipClient, command: ProviderCommand) -> ActionResult | None:
    """The call a ``dial`` or ``conference_dial`` created, by its key; for a dial bridged to a call
    (``connect``) or into a conference, ``data`` also names the conference, as the answer would."""
    conference = command.args.get("conference_id")
    filters = {"direction": "OUTBOUND", **({"conferenceId": conference} if conference else {})}
    for history in (False, True):
        found = await _find_call(client, command, history, filters)
        if found is not None:
            call_id = found.get("callId" if history else "id")
            in_conference = found.get("conferenceId") or next(iter(found.get("conferenceIds") or []), None)
            data = {"conference_id": in_conference} if in_conference and command.action == "dial" else {}
            return ActionResult(id=str(call_id), data=data)
        # A call dialled into a conference drops the conference from its log once it ends: look wider.
        filters = {"direction": "OUTBOUND"}
    return None


async def _find_call(
    client: InfobipClient, command: ProviderCommand, history: bool, filters: dict[str, str]
) -> JSON | None:
    for page in range(MAX_PAGES):
        answer = await client.send(commands.list_calls(page, history=history, **filters))
        for call in _results(answer):
            custom = call.get("customData")
            if isinstance(custom, dict) and custom.get(commands.KEY_FIELD) == command.key:
                return call
        if _last_page(answer, page):
            return None
    raise _too_many(command)


def _results(answer: JSON) -> list[dict[str, Any]]:
    results = answer.get("results")
    return [item for item in results if isinstance(item, dict)] if isinstance(results, list) else []


def _last_page(answer: JSON, page: int) -> bool:
    paging = answer.get("paging")
    total = paging.get("totalPages") if isinstance(paging, dict) else None
    return not isinstance(total, int) or page + 1 >= total


def _too_many(command: ProviderCommand) -> ProviderError:
    return ProviderError(f"{command.action}: too many calls to search for what an unanswered request did",
                         outcome_unknown=True)


FINDERS: dict[str, Find] = {
    "answer": answered,
    "conference_join": joined,
    "conference_create": created_conference,
    "dial": dialled,
    "conference_dial": dialled,
}
