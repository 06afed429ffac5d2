"""The dashboard's parts that need no server: the sign-in cookie, where a sign-in may send a browser,
live counts written into a drawing, the trace read as a timeline, the sessions page's filters."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from flowengine.flow.graph import flow_graph
from flowengine.flow.loader import load_flow_or_raise
from flowengine.server.access import COOKIE_TTL, cookie_valid, session_cookie
from flowengine.server.dashboard.diagrams import COUNT_SLOT, Diagrams, with_counts
from flowengine.server.dashboard.layout import link, shown
from flowengine.server.dashboard.login import safe_next
from flowengine.server.dashboard.sessions import BadQuery, Query, problem
from flowengine.server.dashboard.timeline import moments, spans, strip, table

FLOW = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"
TOKEN, OTHER = b"a-token-of-the-config-0123456789", b"another-token-abcdefghijklmnopq"
NOW = 1_800_000_000.0


def test_the_cookie_proves_the_token_without_holding_it() -> None:
    value = session_cookie(TOKEN.decode(), NOW)
    assert TOKEN.decode() not in value and value.startswith("v1.")
    assert cookie_valid(value, [OTHER, TOKEN], NOW)
    assert cookie_valid(value, [TOKEN], NOW + COOKIE_TTL - 1)
    assert not cookie_valid(value, [TOKEN], NOW + COOKIE_TTL)  # expired
    assert not cookie_valid(value, [OTHER], NOW)  # the token was removed from the config
    assert not cookie_valid(value, [], NOW)


@pytest.mark.parametrize("forged", [
    "", "v1", "v1..", "v2.{expires}.{mac}", "v1.{later}.{mac}", "v1.{expires}.{mac}x", "v1.{expires}.",
    "v1.-5.{mac}", "v1.{expires}.{mac}.more", "v1.١٢٣.{mac}", "v1.99999999999999999999.{mac}",
])
def test_a_forged_or_altered_cookie_is_refused(forged: str) -> None:
    _, expires, mac = session_cookie(TOKEN.decode(), NOW).split(".")
    value = forged.format(expires=expires, later=int(expires) + 1, mac=mac)
    assert not cookie_valid(value, [TOKEN], NOW)


def test_a_cookie_from_far_in_the_future_is_refused() -> None:
    assert not cookie_valid(session_cookie(TOKEN.decode(), NOW + 3600), [TOKEN], NOW)


@pytest.mark.parametrize(("asked", "went"), [
    ("/sessions?status=failed", "/sessions?status=failed"), (None, "/"), ("", "/"),
    ("//evil.example/x", "/"), ("https://evil.example/", "/"), ("/\\evil.example", "/"),
    ("evil.example", "/"), ("/sessions/s-1", "/sessions/s-1"),
])
def test_signing_in_only_ever_leads_to_a_page_of_this_site(asked: str | None, went: str) -> None:
    assert safe_next(asked) == went


def test_text_is_escaped_numbers_masked_and_secrets_redacted() -> None:
    assert shown('<img src=x onerror="alert(1)">') == "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"
    assert shown("callee 447415784323") == "callee 4474******23"
    assert "hunter2" not in shown("https://user:hunter2@example.com/x")
    assert link("/sessions", {"flow": 'a"&<b', "state": None}) == "/sessions?flow=a%22%26%3Cb"


def test_live_counts_are_written_into_a_copy_of_the_drawing() -> None:
    graph = flow_graph(load_flow_or_raise(FLOW))
    index = [node.name for node in graph.nodes].index("dialing")
    drawing = "".join(
        f'<g id="state_{i}" class="node state"><title>{n.name}</title><text x="1">{n.name}</text>'
        f'<text x="1">{COUNT_SLOT}</text></g>' for i, n in enumerate(graph.nodes)
    )
    filled = with_counts(drawing, graph, {"dialing": 3})
    assert COUNT_SLOT not in filled and filled.count(" live</text>") == 1
    assert f'<g id="state_{index}" class="node state live"><title>dialing</title>' in filled
    assert '<text x="1">3 live</text>' in filled and filled.count("class=\"node state live\"") == 1
    assert COUNT_SLOT in drawing  # the kept drawing is unchanged


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="Graphviz is not installed (apt-get install graphviz)")
async def test_a_flow_version_is_drawn_once() -> None:
    graph = flow_graph(load_flow_or_raise(FLOW))
    diagrams = Diagrams()
    first = await diagrams.svg(graph, {"dialing": 1})
    second = await diagrams.svg(graph, {"greeting": 2})
    assert diagrams.runs == 1
    assert "1 live</text>" in first and "2 live</text>" in second and "1 live</text>" not in second


def _doc(trace: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {"created": 100.0, "updated": 130.0, "status": "active", "trace": trace, **more}


def _step(at: float, event: str, source: str | None, target: str | None, **more: Any) -> dict[str, Any]:
    return {"at": at, "event": event, "from": source, "to": target, "guards": [], "commands": [],
            "note": None, **more}


TRACE = [
    _step(100.0, "call.received", None, "answering", commands=[["answer", "ok", None]], latency=[0.012]),
    _step(101.5, "call.answered", "answering", "greeting", guards=[["event.call == 'caller'", True]]),
    _step(102.0, "conference.created", "greeting", None, note="unmatched"),
    _step(110.0, "say.finished", "greeting", "dialing",
          commands=[["hold", "error", "platform said <no>"], ["conference_dial", "skipped", None]],
          latency=[0.25, None]),
]


def test_the_trace_reads_as_moments_since_the_start() -> None:
    steps = moments(_doc(TRACE))
    assert [(s.offset, s.event, s.moved, s.error) for s in steps] == [
        (0.0, "call.received", True, False), (1.5, "call.answered", True, False),
        (2.0, "conference.created", False, False), (10.0, "say.finished", True, True),
    ]
    assert [(c.action, c.outcome, c.latency) for c in steps[3].commands] == [
        ("hold", "error", 0.25), ("conference_dial", "skipped", None)]
    assert spans(steps, 30.0) == [("answering", 0.0, 1.5), ("greeting", 1.5, 10.0), ("dialing", 10.0, 30.0)]


def test_a_trace_stored_before_latencies_were_kept_shows_none() -> None:
    old = [_step(100.0, "call.received", None, "answering", commands=[["answer", "ok", None]])]
    (step,) = moments(_doc(old))
    assert step.commands[0].latency is None


def test_the_timeline_marks_errors_and_escapes_what_it_shows() -> None:
    steps = moments(_doc(TRACE))
    svg, rows = strip(steps, 30.0), table(steps, 100.0)
    assert svg.count('class="tick error"') == 1 and svg.count('class="band ') == 3
    assert rows.count('class="step error moved"') == 1
    assert "platform said &lt;no&gt;" in rows and "<no>" not in rows
    assert '<span class="latency">12 ms</span>' in rows and '<span class="latency">250 ms</span>' in rows


def test_why_a_session_failed() -> None:
    failed = [*TRACE, _step(111.0, "action.failed", "dialing", "failed", note="unhandled action.failed: x")]
    assert problem(_doc(failed)) == "unhandled action.failed: x"
    assert problem(_doc(TRACE)) == "hold: platform said <no>"
    assert problem(_doc(TRACE[:2])) is None


@pytest.mark.parametrize(("params", "why"), [
    ({"status": "lost"}, "status must be one of"), ({"page": "0"}, "page must be"),
    ({"page": "x"}, "page must be"), ({"page": "²"}, "page must be"), ({"flow": "f" * 201}, "at most"),
])
def test_a_filter_the_page_cannot_use_is_refused(params: dict[str, str], why: str) -> None:
    with pytest.raises(BadQuery, match=why):
        Query.parse(params)


def test_filters_carry_over_to_the_next_page() -> None:
    query = Query.parse({"flow": "f", "state": "s t", "status": "failed", "page": "2"})
    assert query.href(page=3) == "/sessions?flow=f&amp;state=s+t&amp;status=failed&amp;page=3"
    assert query.href(page=1) == "/sessions?flow=f&amp;state=s+t&amp;status=failed"
