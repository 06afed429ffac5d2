"""The dashboard in a real browser (headless Chromium): signing in with a token, the flow drawn with a
node per state and labelled edges, live counts, links from the flow to its sessions to a session's
page, a failed session highlighted, screenshots that are not blank, hostile text that stays text, and
not one complaint in the browser's console (the Content-Security-Policy forbids inline scripts/styles).

Engine and simulator run on loopback on a virtual clock, held still while the browser looks."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

import flowengine.server.dashboard as dashboard_module
from flowengine.scenarios.model import parse_scenario
from flowengine.scenarios.stack import running_stack
from flowengine.simulator.base import Faults

from .browser import chromium, follow, looks_blank, needs_chromium

BUNDLED = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"
HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"
CALLEE, CALLER_ID = "447415784323", "4592457976"
BUDGET = 30.0  # seconds of wall time for the whole test

pytestmark = [needs_chromium, pytest.mark.skipif(
    __import__("shutil").which("dot") is None, reason="Graphviz is not installed (apt-get install graphviz)")]


def hostile_flow(folder: Path) -> Path:
    """The bundled flow with markup where a flow can hold free text: its description, a guard, a variable."""
    text = BUNDLED.read_text()
    for old, new in [
        ("description: Park the caller in a conference with music, dial a second party, connect or "
         "apologise.", f'description: "Park the caller {HOSTILE} & dial."'),
        ("  language: en\n", f'  language: en\n  note: "{HOSTILE}"\n'),
        ("""call.finished: {target: done, when: "event.call == 'caller'"}""",
         f"""call.finished: {{target: done, when: "event.call == 'caller' or '{HOSTILE}' == ''"}}"""),
    ]:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = folder / "hostile.yaml"
    path.write_text(text)
    return path


async def test_the_dashboard_in_a_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.monotonic()
    # The live pages reload every REFRESH (5) seconds; read element by element on a loaded machine, a page
    # can outlast that, and a reload mid-read makes what was found stale ("does not belong to the
    # document"). The reload itself is tested in test_dashboard.py; here it waits past the test's budget.
    monkeypatch.setattr(dashboard_module, "REFRESH", int(BUDGET) * 10)
    flow = hostile_flow(tmp_path)
    nobody_answers = parse_scenario("x", {"parties": {CALLEE: {"answer_after": None}}})
    hangs_up = parse_scenario("y", {"caller": {"hangup_after": "3s"}}).caller
    async with running_stack("infobip", flow, parties=nobody_answers.parties) as stack:
        sim = stack.simulator
        await sim.place_inbound_call("447700900001", CALLER_ID)  # this one fails:
        await stack.clock.sleep(5)
        sim.faults = Faults(error_rate=1.0)  # the platform goes down for longer than retries last
        await stack.clock.sleep(40)
        sim.faults = Faults()
        await stack.clock.sleep(30)
        await sim.place_inbound_call("447700900002", CALLER_ID, hangs_up)  # this one ends
        await stack.clock.sleep(10)
        await sim.place_inbound_call("447700900003", CALLER_ID)  # and this one waits in dialing
        await stack.clock.sleep(20)
        by_status = {r.status: r.id for r in await stack.service.store.list_sessions()}
        assert sorted(by_status) == ["active", "ended", "failed"]
        with stack.clock.busy():  # time stands still while the browser looks
            seen = await asyncio.to_thread(browse, stack.engine_url, stack.api_token, tmp_path)
    states = {"answering", "opening_room", "greeting", "dialing", "connected", "callee_unavailable",
              "abandoned", "giving_up", "closing", "done"}
    assert seen["states"] == states and seen["finals"] == {"abandoned", "giving_up", "closing", "done"}
    assert "after 75s" in seen["edges"] and "participant.joined [event.call == 'callee']" in seen["edges"]
    assert all(seen["edges"]) and len(seen["edges"]) >= 15
    assert seen["live"] == [("dialing", "1 live", "rgb(255, 216, 119)")]
    assert seen["anywhere"] == "any state"
    assert seen["live_link_rows"] == [by_status["active"]]
    assert seen["failed_rows"] == [(by_status["failed"], "rgba(253, 236, 234, 1)")]
    assert seen["failed_banner"].startswith("This session failed: unhandled action.failed")
    assert seen["error_steps"] >= 2 and seen["error_ticks"] >= 2 and seen["trace_rows"] >= 5
    assert seen["description"] == f"Park the caller {HOSTILE} & dial."
    for name, (blank, summary) in seen["screenshots"].items():
        assert not blank, f"the {name} screenshot looks blank: {summary}"
    assert seen["console"] == [], seen["console"]
    assert seen["after_sign_out"].startswith("/login")
    assert time.monotonic() - started < BUDGET


def browse(url: str, token: str, shots: Path) -> dict[str, Any]:
    """Everything the browser saw, as plain values (asserted by the test, outside this thread)."""
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    seen: dict[str, Any] = {"screenshots": {}}

    def shoot(name: str) -> None:
        png = driver.get_screenshot_as_png()
        (shots / f"{name}.png").write_bytes(png)
        seen["screenshots"][name] = looks_blank(png)

    def path() -> str:
        return str(driver.current_url).removeprefix(url)

    with chromium() as driver:
        driver.get(url + "/")
        assert path() == "/login?next=%2F", path()
        driver.find_element(By.NAME, "token").send_keys(token)
        follow(driver, driver.find_element(By.CSS_SELECTOR, "form.login button"))
        assert path() == "/" and token not in driver.current_url
        (cookie,) = driver.get_cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and token not in cookie["value"]

        # The flow, drawn: a node per state, labelled edges, the live state highlighted.
        def texts(element: Any) -> list[str]:
            return [t.get_attribute("textContent") for t in element.find_elements(By.TAG_NAME, "text")]

        nodes = driver.find_elements(By.CSS_SELECTOR, "figure.diagram g.node.state")
        seen["states"] = {texts(node)[0] for node in nodes}
        seen["finals"] = {texts(node)[0] for node in nodes if "final" in node.get_attribute("class").split()}
        edges = driver.find_elements(By.CSS_SELECTOR, "g.edge.transition")
        seen["edges"] = [" ".join(texts(edge)) for edge in edges]
        live = driver.find_elements(By.CSS_SELECTOR, "g.node.state.live")
        fill = [node.find_element(By.TAG_NAME, "path").value_of_css_property("fill") for node in live]
        seen["live"] = [(*texts(node)[:2], colour) for node, colour in zip(live, fill, strict=True)]
        seen["anywhere"] = " ".join(texts(driver.find_element(By.CSS_SELECTOR, "g.node.any")))
        seen["description"] = driver.find_element(By.CSS_SELECTOR, "section.flow > p").text
        assert not driver.find_elements(By.TAG_NAME, "img")
        assert not driver.find_elements(By.TAG_NAME, "script")
        shoot("flows")

        # flows -> sessions: the live state's box links to its sessions; -> the session's page.
        follow(driver, driver.find_element(By.CSS_SELECTOR, "g.node.state.live a"))
        assert path().startswith("/sessions?") and "state=dialing" in path(), path()
        rows = driver.find_elements(By.CSS_SELECTOR, "tr.session a.session-link")
        seen["live_link_rows"] = [row.text for row in rows]
        follow(driver, rows[0])
        assert path() == f"/sessions/{seen['live_link_rows'][0]}"
        assert driver.find_element(By.CSS_SELECTOR, "svg.timeline")
        page = driver.page_source
        assert CALLEE not in page and "4474******23" in page and "<img" not in page.split("</head>")[1]
        shoot("session")

        # The failed session: listed, highlighted, and its page says why, errors marked on the timeline.
        follow(driver, driver.find_element(By.LINK_TEXT, "Failed"))
        failed = driver.find_elements(By.CSS_SELECTOR, "tr.session.failed")
        seen["failed_rows"] = [
            (row.find_element(By.CSS_SELECTOR, "a.session-link").text,
             row.find_element(By.TAG_NAME, "td").value_of_css_property("background-color"))
            for row in failed
        ]
        shoot("failed_list")
        follow(driver, failed[0].find_element(By.CSS_SELECTOR, "a.session-link"))
        seen["failed_banner"] = driver.find_element(By.CSS_SELECTOR, "p.failed-banner").text
        seen["error_steps"] = len(driver.find_elements(By.CSS_SELECTOR, "tr.step.error"))
        seen["error_ticks"] = len(driver.find_elements(By.CSS_SELECTOR, "svg.timeline g.tick.error"))
        seen["trace_rows"] = len(driver.find_elements(By.CSS_SELECTOR, "table.trace tbody tr"))
        shoot("failed_session")

        try:
            alert = driver.switch_to.alert.text
        except NoAlertPresentException:
            alert = None
        assert alert is None, f"a script ran: alert({alert!r})"
        log = driver.get_log("browser")
        seen["console"] = [e["message"] for e in log if e["level"] in ("SEVERE", "WARNING")]

        follow(driver, driver.find_element(By.CSS_SELECTOR, "form.logout button"))
        driver.get(url + "/sessions")
        seen["after_sign_out"] = path()
    return seen
