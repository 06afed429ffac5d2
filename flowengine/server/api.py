"""The read API: sessions (state, variables, step trace) and flows (states and transitions)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from flowengine.flow.model import Flow

if TYPE_CHECKING:
    from flowengine.server.service import Service


def add_routes(app: web.Application, key: web.AppKey[Service]) -> None:
    async def sessions(request: web.Request) -> web.Response:
        service = request.app[key]
        try:
            limit = min(int(request.query.get("limit", "100")), 1000)
            offset = int(request.query.get("offset", "0"))
        except ValueError:
            raise web.HTTPBadRequest(text="limit and offset must be integers") from None
        records = await service.store.list_sessions(
            status=request.query.get("status"),
            flow=request.query.get("flow"),
            limit=max(limit, 0),
            offset=max(offset, 0),
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
        return web.json_response({"flows": [describe_flow(f) for f in request.app[key].flows.values()]})

    app.router.add_get("/api/sessions", sessions)
    app.router.add_get("/api/sessions/{id}", session)
    app.router.add_get("/api/flows", flows)


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
        "states": {
            name: {"final": s.final, "transitions": [] if s.final else edges(name)}
            for name, s in flow.states.items()
        },
    }
