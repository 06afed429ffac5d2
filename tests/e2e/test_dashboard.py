"""The dashboard over real HTTP: flows drawn by Graphviz with live counts (a plain list without it),
the sessions page's filters and pages, a session's page, hostile text kept as text, and signing in with
a token (a cookie that holds none, opens the pages only, and no other site can use)."""

from __future__ import annotations

import logging
import re
import secrets
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from flowengine.config import ServiceConfig
from flowengine.runtime.session import Session, Step
from flowengine.scenarios.model import parse_scenario
from flowengine.scenarios.stack import running_stack
from flowengine.server.access import COOKIE, session_cookie
from flowengine.server.app import SERVICE, create_app
from flowengine.server.dashboard import DIAGRAMS
from flowengine.server.serving import serving
from flowengine.server.sessions import to_record

BUNDLED = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"
TOKEN = secrets.token_urlsafe(24)
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}  # what a browser asks for
SETTINGS = {"base_url": "http://127.0.0.1:9", "api_key": "k", "calls_configuration_id": "c",
            "webhook_hmac_secret": "hook-secret"}
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz is not installed (Debian: apt-get install graphviz)")


@asynccontextmanager
async def dashboard(**options: Any) -> AsyncIterator[tuple[str, Any]]:
    """An engine with the bundled flow, a memory store and the token ``TOKEN``: (url, app)."""
    config = ServiceConfig(provider="infobip", port=0, store="memory://", default_flow=BUNDLED,
                           provider_settings=SETTINGS, api_tokens=(TOKEN,), **options)
    app = create_app(config, timer_poll=None)
    async with serving(app) as url:
        yield url, app


async def fetch(url: str, *, cookie: str | None = None, **headers: str) -> tuple[int, dict[str, str], str]:
    jar = {COOKIE: cookie} if cookie is not None else None
    async with aiohttp.ClientSession(cookies=jar) as http, \
            http.get(url, headers=headers, allow_redirects=False) as response:
        return response.status, dict(response.headers), await response.text()


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


async def put_sessions(app: Any, count: int, **fields: Any) -> list[str]:
    """``count`` stored sessions (``fields``: state, status, vars, trace), newest last."""
    store, ids = app[SERVICE].store, []
    for n in range(count):
        at = 1_767_225_600.0 + n
        session = Session(f"s-{secrets.token_hex(6)}", "two-party-conference", 1,
                          fields.get("state", "dialing"), vars=dict(fields.get("vars", {})),
                          status=fields.get("status", "active"), created=at - 30, updated=at,
                          trace=list(fields.get("trace", [])))
        await store.put(to_record(session), expected_revision=None)
        ids.append(session.id)
    return ids


@needs_dot
async def test_a_waiting_caller_shows_live_in_dialing_and_leaves_when_done() -> None:
    scenario = parse_scenario("wait", {"parties": {"447415784323": {"answer_after": None}}})
    async with running_stack("infobip", BUNDLED, parties=scenario.parties) as stack:
        await stack.simulator.place_inbound_call("447700900001", "4592457976")
        await stack.clock.sleep(20)  # greeted, on hold, the callee ringing
        with stack.clock.busy():
            during = (await fetch(stack.engine_url + "/", **stack.api_headers))[2]
        await stack.clock.sleep(120)  # no answer, apology, closed
        with stack.clock.busy():
            after = (await fetch(stack.engine_url + "/", **stack.api_headers))[2]
    live = re.findall(r'<g id="state_\d+" class="node state[^"]* live">\s*<title>(\w+)</title>', during)
    assert live == ["dialing"]
    assert ">1 live</text>" in during and "1 live session<" in during
    assert " live</text>" not in after and "0 live sessions" in after and "0000 live" not in after
    states = re.findall(r'<g id="state_\d+" class="node state[^"]*">\s*<title>(\w+)</title>', after)
    assert sorted(states) == sorted(["answering", "opening_room", "greeting", "dialing", "connected",
                                     "callee_unavailable", "abandoned", "giving_up", "closing", "done"])
    assert len(re.findall(r'class="edge transition after"', after)) == 6  # one per timer
    assert '<g id="any" class="cluster">' in after and 'class="node any"' in after


async def test_without_graphviz_the_page_says_so_and_lists_the_transitions() -> None:
    async with dashboard() as (url, app):
        app[DIAGRAMS].binary = "/nonexistent/dot"
        status, _, page = await fetch(url + "/", **bearer())
    assert status == 200 and "<svg" not in page.split("</header>", 1)[1].split('class="timeline"')[0]
    assert "No diagram: Graphviz" in page and "apt-get install graphviz" in page
    assert "after 75s → callee_unavailable" in page
    assert "call.finished [event.call == &#x27;caller&#x27;] → done" in page
    assert "(not in dialing, connected)" in page


async def test_the_sessions_page_filters_by_flow_state_and_status_and_pages() -> None:
    async with dashboard() as (url, app):
        await put_sessions(app, 60, state="dialing")
        why = Step(1_767_225_600.0, "action.failed", "dialing", "failed",
                   note="unhandled action.failed: <boom>")
        failed = await put_sessions(app, 3, state="failed", status="failed", trace=[why])
        await put_sessions(app, 2, state="closing", status="ended")
        pages = [(await fetch(url + f"/sessions?page={n}", **bearer()))[2] for n in (1, 2)]
        failures = (await fetch(url + "/sessions?status=failed", **bearer()))[2]
        dialing = [(await fetch(url + f"/sessions?state=dialing&page={n}", **bearer()))[2] for n in (1, 2)]
        other_flow = (await fetch(url + "/sessions?flow=another", **bearer()))[2]
    assert pages[0].count('<tr class="session') == 50 and pages[1].count('<tr class="session') == 15
    assert 'rel="next" href="/sessions?page=2"' in pages[0] and 'rel="prev" href="/sessions"' in pages[1]
    assert 'rel="next"' not in pages[1]
    assert failures.count('<tr class="session failed">') == 3 and failures.count('<tr class="session') == 3
    assert all(f'href="/sessions/{session_id}"' in failures for session_id in failed)
    assert "unhandled action.failed: &lt;boom&gt;" in failures and "<boom>" not in failures
    assert dialing[0].count('<tr class="session">') == 50 and dialing[1].count('<tr class="session">') == 10
    assert "failed" not in re.sub(r"<(nav|form).*?</\1>", "", dialing[0], flags=re.S).split("<tbody>")[1]
    assert "No sessions match." in other_flow


async def test_a_filter_the_page_cannot_use_is_a_400_and_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with dashboard() as (url, _):
        with caplog.at_level(logging.INFO):
            status, headers, page = await fetch(url + "/sessions?status=<lost>&page=1", **bearer())
            missing = await fetch(url + "/sessions/s-%3Cnobody%3E", **bearer())
    assert status == 400 and "status must be one of active, ended, failed" in page
    assert headers["Content-Type"].startswith("text/html")
    assert missing[0] == 404 and 'No session "s-&lt;nobody&gt;"' in missing[2]
    refusals = [r.getMessage() for r in caplog.records if "sessions page refused" in r.getMessage()]
    assert refusals == ["dashboard: sessions page refused: status must be one of active, ended, failed "
                        "(127.0.0.1)"]


async def test_a_session_page_shows_the_trace_masked_and_escaped() -> None:
    trace = [
        Step(1_767_225_570.0, "call.received", None, "answering", commands=(("answer", "ok", None),),
             latencies=(0.031,)),
        Step(1_767_225_580.0, "say.finished", "greeting", "dialing",
             commands=(("conference_dial", "error", "refused: <b>447415784323</b> busy"),), latencies=(1.5,)),
    ]
    async with dashboard() as (url, app):
        (session_id,) = await put_sessions(app, 1, trace=trace,
                                           vars={"callee": "447415784323", "note": "<script>x</script>"})
        status, headers, page = await fetch(url + f"/sessions/{session_id}", **bearer())
    assert status == 200 and "default-src 'none'" in headers["Content-Security-Policy"]
    assert "447415784323" not in page and "4474******23" in page
    assert "<script>x" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "<b>447" not in page and "refused: &lt;b&gt;4474******23&lt;/b&gt; busy" in page
    assert '<tr class="step error moved">' in page and '<span class="latency">31 ms</span>' in page
    assert '<span class="latency">1500 ms</span>' in page and "+10.0 s" in page
    assert 'class="tick error"' in page and '<meta http-equiv="refresh"' in page  # still active


async def test_a_browser_is_sent_to_sign_in_and_a_token_in_a_form_opens_the_pages() -> None:
    async with dashboard() as (url, _):
        status, headers, _ = await fetch(url + "/sessions?status=failed", **HTML)
        assert status == 303 and headers["Location"] == "/login?next=%2Fsessions%3Fstatus%3Dfailed"
        form = (await fetch(url + headers["Location"], **HTML))[2]
        assert 'type="password" name="token"' in form and 'value="/sessions?status=failed"' in form
        async with aiohttp.ClientSession() as http, http.post(
            url + "/login", data={"token": TOKEN, "next": "/sessions?status=failed"},
            headers={"Origin": url}, allow_redirects=False,
        ) as signed_in:
            assert signed_in.status == 303 and signed_in.headers["Location"] == "/sessions?status=failed"
            set_cookie = signed_in.headers["Set-Cookie"]
        morsel = SimpleCookie(set_cookie)[COOKIE]
        assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
        assert not morsel["secure"]  # plain HTTP on loopback: a Secure cookie would not come back
        async with aiohttp.ClientSession() as http, http.post(
            url + "/login", data={"token": TOKEN}, headers={"Origin": url, "X-Forwarded-Proto": "https"},
            allow_redirects=False,
        ) as behind_tls:
            assert SimpleCookie(behind_tls.headers["Set-Cookie"])[COOKIE]["secure"]
        assert TOKEN not in set_cookie and int(morsel["max-age"]) == 12 * 3600
        for page in ("/", "/sessions", "/sessions?status=failed"):
            assert (await fetch(url + page, cookie=morsel.value, **HTML))[0] == 200
        assert (await fetch(url + "/sessions/s-nobody", cookie=morsel.value, **HTML))[0] == 404
        # The cookie opens the pages only: the API and /metrics still want the bearer token.
        for route in ("/api/sessions", "/api/flows", "/metrics"):
            assert (await fetch(url + route, cookie=morsel.value, **HTML))[0] == 401


async def test_a_wrong_token_a_forged_cookie_and_another_site_are_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with dashboard() as (url, _):
        async with aiohttp.ClientSession() as http:
            async with http.post(url + "/login", data={"token": TOKEN + "x"}, headers={"Origin": url},
                                 allow_redirects=False) as wrong:
                assert wrong.status == 401 and "Set-Cookie" not in wrong.headers
                assert "not one of the service" in await wrong.text()
            async with http.post(url + "/login", data={"token": TOKEN}, allow_redirects=False,
                                 headers={"Origin": "https://evil.example"}) as cross_site:
                assert cross_site.status == 403 and "Set-Cookie" not in cross_site.headers
            async with http.post(url + "/login", data={"token": TOKEN, "next": "//evil.example/"},
                                 allow_redirects=False, headers={"Origin": url}) as no_open_redirect:
                assert no_open_redirect.headers["Location"] == "/"
            # a form the reader cannot read (multipart with no boundary: schemathesis sent one) is the
            # sender's fault: 400 and one line, not a 500 and a traceback
            no_boundary = {"Origin": url, "Content-Type": "multipart/form-data"}
            async with http.post(url + "/login", data=b"token=&next=", allow_redirects=False,
                                 headers=no_boundary) as unreadable:
                assert unreadable.status == 400 and "Set-Cookie" not in unreadable.headers
                assert "did not arrive whole" in await unreadable.text()
        expired = session_cookie(TOKEN, 1_000_000_000.0)
        other = session_cookie(secrets.token_urlsafe(24), 1_900_000_000.0)
        for cookie in (expired, other, "v1.9999999999.AAAA", TOKEN):
            assert (await fetch(url + "/", cookie=cookie, **HTML))[0] == 303
            assert (await fetch(url + "/", cookie=cookie))[0] == 401  # not a browser: the API's answer
    assert sum("sign-in refused: wrong token" in r.getMessage() for r in caplog.records) == 1
    assert sum("sign-in refused: unreadable form" in r.getMessage() for r in caplog.records) == 1
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)
    assert TOKEN not in caplog.text


async def test_without_tokens_the_sign_in_page_says_how_to_configure_one() -> None:
    config = ServiceConfig(provider="infobip", port=0, store="memory://", default_flow=BUNDLED,
                           provider_settings=SETTINGS)
    async with serving(create_app(config, timer_poll=None)) as url:
        status, headers, _ = await fetch(url + "/", **HTML)
        assert status == 303
        status, _, page = await fetch(url + headers["Location"], **HTML)
    assert status == 403 and "api_tokens" in page and "<form" not in page.split("</header>")[1]


async def test_the_style_sheet_is_open_and_pages_forbid_scripts() -> None:
    async with dashboard() as (url, _):
        status, headers, css = await fetch(url + "/static/dashboard.css")
        page_headers = (await fetch(url + "/sessions", **bearer()))[1]
    assert status == 200 and headers["Content-Type"].startswith("text/css") and ".node.live" in css
    policy = page_headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page_headers["Cache-Control"] == "no-store" and page_headers["X-Frame-Options"] == "DENY"
