"""The dashboard: server-rendered pages, no scripts.

    /                    every flow drawn by Graphviz, with live sessions per state and failures
    /sessions            sessions newest first, filtered by flow, state and status, paged
    /sessions/{id}       one session: what it holds and its trace on a timeline
    /login, /logout      a browser signs in with an API token (see ``access``) and out
    /static/dashboard.css

``Dashboard.pages`` want a token (bearer, or the sign-in cookie); ``Dashboard.open`` do not.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from flowengine.server.dashboard import sessions
from flowengine.server.dashboard.diagrams import Diagrams
from flowengine.server.dashboard.layout import STYLESHEET, page, shown, stylesheet
from flowengine.server.dashboard.login import Login
from flowengine.server.dashboard.overview import overview
from flowengine.server.dashboard.session import session_page

if TYPE_CHECKING:
    from flowengine.server.service import Service

log = logging.getLogger("flowengine.server")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DIAGRAMS = web.AppKey("diagrams", Diagrams)
REFRESH = 5  # seconds between reloads of the pages that show live data


@dataclass(frozen=True, slots=True)
class Dashboard:
    routes: tuple[web.RouteDef, ...]
    pages: tuple[Handler, ...]  # behind the token or the sign-in cookie
    open: tuple[Handler, ...]  # the sign-in form and the style sheet

    def install(self, app: web.Application, diagrams: Diagrams | None = None) -> None:
        app[DIAGRAMS] = diagrams if diagrams is not None else Diagrams()
        app.router.add_routes(self.routes)


def dashboard(key: web.AppKey[Service], tokens: Sequence[str]) -> Dashboard:
    """The dashboard's routes for the app whose service is under ``key``."""

    async def flows(request: web.Request) -> web.Response:
        service = request.app[key]
        title, body = await overview(service.flows.values(), service.store, request.app[DIAGRAMS])
        return page(title, body, refresh=REFRESH)

    async def session_list(request: web.Request) -> web.Response:
        try:
            query = sessions.Query.parse(request.query)
        except sessions.BadQuery as exc:
            log.warning("dashboard: sessions page refused: %s (%s)", exc, request.remote)
            return page("Sessions", f'<p class="problem">{shown(exc)}</p>', status=400)
        service = request.app[key]
        found, more, cut_short = await sessions.find(service.store, query)
        body = sessions.render(query, found, more, cut_short, service.flows)
        return page("Sessions", body)  # no refresh: it would undo a filter being typed

    async def one_session(request: web.Request) -> web.Response:
        session_id = request.match_info["id"]
        service = request.app[key]
        doc = await service.session_view(session_id)
        if doc is None:
            missing = f'<p class="problem">No session "{shown(session_id)}".</p>'
            return page("No such session", missing, status=404)
        live = doc.get("status") not in ("ended", "failed")
        body = session_page(doc, service.clock.now())
        return page(f"Session {session_id}", body, refresh=REFRESH if live else None)

    login = Login(tokens)
    routes = (
        web.get("/", flows),
        web.get("/sessions", session_list),
        web.get("/sessions/{id}", one_session),
        web.get("/login", login.form),
        web.post("/login", login.sign_in),
        web.post("/logout", login.sign_out),
        web.get(STYLESHEET, stylesheet),
    )
    return Dashboard(routes, pages=(flows, session_list, one_session),
                     open=(login.form, login.sign_in, login.sign_out, stylesheet))
