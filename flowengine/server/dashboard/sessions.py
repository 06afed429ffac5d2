"""The sessions page: newest first, filtered by flow, state and status (failed ones stand out), paged.

The stores filter by flow and status themselves; a state filter is applied here, walking the store's
pages newest first up to ``STATE_SCAN`` sessions (the page says when it stopped short).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flowengine.server.dashboard.layout import duration, link, shown, status_badge, utc
from flowengine.stores.base import SessionRecord, SessionStore

PAGE_SIZE = 50
STATE_SCAN = 10_000  # sessions looked at for one state-filtered page
_CHUNK = 500
STATUSES = ("active", "ended", "failed")
MAX_PAGE = 100_000
MAX_FILTER = 200  # characters of a flow or state name


class BadQuery(ValueError):
    """A filter the page cannot use: the message says which and why (answered 400)."""


@dataclass(frozen=True, slots=True)
class Query:
    flow: str | None = None
    state: str | None = None
    status: str | None = None
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Query:
        status = params.get("status") or None
        if status is not None and status not in STATUSES:
            raise BadQuery(f"status must be one of {', '.join(STATUSES)}")
        raw_page = params.get("page") or "1"
        if not (raw_page.isascii() and raw_page.isdigit()) or not 1 <= int(raw_page) <= MAX_PAGE:
            raise BadQuery(f"page must be a whole number from 1 to {MAX_PAGE}")
        flow, state = params.get("flow") or None, params.get("state") or None
        if len(flow or "") > MAX_FILTER or len(state or "") > MAX_FILTER:
            raise BadQuery(f"flow and state names are at most {MAX_FILTER} characters")
        return cls(flow, state, status, int(raw_page))

    def href(self, **changes: Any) -> str:
        values = {"flow": self.flow, "state": self.state, "status": self.status, "page": self.page, **changes}
        if values["page"] == 1:
            values["page"] = None
        return link("/sessions", values)


async def find(store: SessionStore, query: Query) -> tuple[list[SessionRecord], bool, bool]:
    """(the page's sessions, whether a next page exists, whether a state scan stopped short)."""
    offset = (query.page - 1) * PAGE_SIZE
    if query.state is None:
        found = await store.list_sessions(status=query.status, flow=query.flow, limit=PAGE_SIZE + 1,
                                          offset=offset)
        return found[:PAGE_SIZE], len(found) > PAGE_SIZE, False
    matching: list[SessionRecord] = []
    scanned = 0
    while scanned < STATE_SCAN and len(matching) < offset + PAGE_SIZE + 1:
        chunk = await store.list_sessions(status=query.status, flow=query.flow, limit=_CHUNK, offset=scanned)
        matching += [record for record in chunk if record.state == query.state]
        scanned += len(chunk)
        if len(chunk) < _CHUNK:
            return matching[offset:offset + PAGE_SIZE], len(matching) > offset + PAGE_SIZE, False
    return matching[offset:offset + PAGE_SIZE], len(matching) > offset + PAGE_SIZE, scanned >= STATE_SCAN


def render(query: Query, records: list[SessionRecord], more: bool, cut_short: bool,
           flows: Iterable[str]) -> str:
    rows = "".join(_row(record) for record in records)
    table = (
        '<table class="sessions"><thead><tr><th>session</th><th>flow</th><th>state</th><th>status</th>'
        "<th>started</th><th>duration</th><th>last event</th><th>problem</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if records else '<p class="empty">No sessions match.</p>'
    )
    note = (f'<p class="problem">Only the {STATE_SCAN} most recent sessions were searched for this state.</p>'
            if cut_short else "")
    pages = []
    if query.page > 1:
        pages.append(f'<a rel="prev" href="{query.href(page=query.page - 1)}">← newer</a>')
    pages.append(f"page {query.page}")
    if more:
        pages.append(f'<a rel="next" href="{query.href(page=query.page + 1)}">older →</a>')
    return _filters(query, flows) + note + table + f'<p class="pager">{" · ".join(pages)}</p>'


def _filters(query: Query, flows: Iterable[str]) -> str:
    def option(value: str, chosen: str | None, text: str | None = None) -> str:
        selected = " selected" if value == (chosen or "") else ""
        return f'<option value="{shown(value)}"{selected}>{shown(text or value)}</option>'

    flow_options = option("", query.flow, "any flow") + "".join(option(name, query.flow) for name in flows)
    status_options = option("", query.status, "any status") + "".join(
        option(status, query.status) for status in STATUSES
    )
    return (
        '<form class="filters" method="get" action="/sessions">'
        f'<label>flow <select name="flow">{flow_options}</select></label> '
        f'<label>state <input name="state" value="{shown(query.state or "")}" size="16"></label> '
        f'<label>status <select name="status">{status_options}</select></label> '
        '<button type="submit">Filter</button></form>'
    )


def _row(record: SessionRecord) -> str:
    data = record.data
    trace = data.get("trace") or []
    created = float(data.get("created") or 0.0)
    last = trace[-1] if trace else {}
    failed = record.status == "failed"
    return (
        f'<tr class="session{" failed" if failed else ""}">'
        f'<td><a class="session-link" href="{session_href(record.id)}">{shown(record.id)}</a></td>'
        f"<td>{shown(record.flow)} <small>v{shown(data.get('flow_version', '?'))}</small></td>"
        f"<td>{shown(record.state)}</td><td>{status_badge(record.status)}</td>"
        f"<td>{utc(created)}</td><td>{duration(record.updated_at - created) if created else ''}</td>"
        f"<td>{shown(last.get('event', ''))}</td><td>{shown(problem(data) or '')}</td></tr>"
    )


def problem(data: Mapping[str, Any]) -> str | None:
    """Why a session failed, or its latest command error: the last step's note or error detail."""
    for step in reversed(data.get("trace") or []):
        if step.get("to") == "failed" and step.get("note"):
            return str(step["note"])
        errors = [c for c in step.get("commands") or [] if len(c) > 2 and c[1] == "error"]
        if errors:
            return f"{errors[-1][0]}: {errors[-1][2]}"
    return None


def session_href(session_id: str) -> str:
    return link("/sessions/" + quote(session_id, safe=""))
