"""The read API: sessions (state, variables, step trace) and flows (states and transitions).

A store that fails answers 503 with one log line (never a 500 with a traceback): the store is down, the
request was fine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from flowengine.flow.model import Flow
from flowengine.flow.variables import declared_types

if TYPE_CHECKING:
    from flowengine.server.service import Service

MAX_LIMIT = 1000
# Past any store's size, and far inside the 64-bit integers SQLite and Redis page with (a bigger offset
# overflowed them: a 500).
MAX_OFFSET = 1_000_000_000



def paging(query: Mapping[str, str]) -> tuple[int, int]:
    """(limit, offset) of a listing: limit capped at ``MAX_LIMIT``, negatives read as 0; 400 if either is
    not an integer or the offset is over ``MAX_OFFSET``."""
    try:
        limit, offset = int(query.get("limit", "100")), int(query.get("offset", "0"))
    except ValueError:
        raise web.HTTPBadRequest(text="limit and offset must be integers") from None
    if offset > MAX_OFFSET:
        raise web.HTTPBadRequest(text=f"offset must be at most {MAX_OFFSET}")
    return min(max(limit, 0), MAX_LIMIT), max(offset, 0)


def unknown_fields(doc: Mapping[str, Any], fields: tuple[str, ...]) -> list[str]:
    """A problem line for each key of a request body that is not one of ``fields``."""
    return [f'unknown field "{key}" (expected {", ".join(fields)})' for key in doc if key not in fields]


def add_routes(app: web.Application, key: web.AppKey[Service]) -> None:
    async def sessions(request: web.Request) -> web.Response:
        service = request.app[key]
        limit, offset = paging(request.query)
        records = await service.store.list_sessions(
            status=request.query.get("status"), flow=request.query.get("flow"), limit=limit, offset=offset
        )
        return web.json_response(
            {
                "sessions": [
                    {
                        "id": r.id,
                        "flow": r.flow,
                        "state": r.state,
                        "status": r.status,
                        "updated_at": r.updated_at,
                    }
                    for r in records
                ]
            }
        )

    async def session(request: web.Request) -> web.Response:
        view = await request.app[key].session_view(request.match_info["id"])
        if view is None:
            raise web.HTTPNotFound(text=f'no session "{request.match_info["id"]}"')
        return web.json_response(view)

    async def flows(request: web.Request) -> web.Response:
        service = request.app[key]
        versions = await service.catalog.view()  # scans the live sessions (``server.catalog``)
        described = [describe_flow(flow) | _versions(versions.get(name, []))
                     for name, flow in service.flows.items()]
        retired = [{"name": name, "versions": held}
                   for name, held in versions.items() if name not in service.flows]
        return web.json_response({"flows": described, "retired": retired})

    app.router.add_get("/api/sessions", sessions)
    app.router.add_get("/api/sessions/{id}", session)
    app.router.add_get("/api/flows", flows)

    async def pacing(request: web.Request) -> web.Response:
        return web.json_response(await request.app[key].pacer.view())

    app.router.add_get("/api/pacing", pacing)


def _versions(held: list[dict[str, Any]]) -> dict[str, Any]:
    current = next((v["hash"] for v in held if v["current"]), None)
    return {"hash": current, "versions": held}


def describe_flow(flow: Flow) -> dict[str, Any]:
    """A flow's graph as plain JSON: states, their transitions and timers."""

    def edges(state: str) -> list[dict[str, Any]]:
        found = [
            {"event": event, "target": t.target, "when": t.when}
            for event, transitions in flow.handlers(state).items()
            for t in transitions
        ]
        found += [
            {"event": f"after {timer.key}", "target": t.target, "when": t.when}
            for timer in flow.states[state].after
            for t in timer.transitions
        ]
        return found

    return {
        "name": flow.name,
        "version": flow.version,
        "description": flow.description,
        "initial": flow.initial,
        "source": flow.source,
        "start": "outbound" if flow.outbound is not None else "inbound",
        "vars": declared_types(flow.vars),
        "events": list(flow.events),
        "states": {
            name: {"final": s.final, "transitions": [] if s.final else edges(name)}
            for name, s in flow.states.items()
        },
    }
