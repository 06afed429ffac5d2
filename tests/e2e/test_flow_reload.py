"""Reloading the flows without a restart, end to end over real HTTP on 127.0.0.1: a call in progress keeps
the version it started on while a new call gets the new one (what the platform was told to say shows
which); a flow with errors is refused with its diagnostics and the old version keeps serving; a session's
version is kept across a restart (SQLite file) and across two instances (Redis); ``GET /api/flows`` counts
the sessions on each version; SIGHUP reloads a real ``flowengine serve`` process."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from flowengine.config import ServiceConfig
from flowengine.flow.loader import load_flow
from flowengine.flow.version import version_of
from flowengine.scenarios.stack import provider_settings
from flowengine.server.app import create_app
from flowengine.server.serving import serving

from .conftest import (
    CALLEE,
    CALLER,
    CALLER_ID,
    FLOW,
    JOINING,
    REDIS,
    Engine,
    Platform,
    Relay,
    platform,
    scenario,
    until_over,
    until_state,
)
from .test_serve_security import REAL_GUARD, child_env, free_port, until_ready, write_config

TOKEN = "reload-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JOINING_V2 = "Your other caller is here now."
# The callee answers after 3 s and both talk until the callee hangs up: the joining line comes at ~11 s.
TALK = scenario(callee={"answer_after": "3s", "hangup_after": "30s"})


def copy_flow(folder: Path, joining: str = JOINING) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "conference.yaml"
    path.write_text(FLOW.read_text().replace(JOINING, joining))
    return path


def version(path: Path) -> str:
    loaded = load_flow(path)
    assert loaded.resolved is not None, loaded.diagnostics
    return version_of(loaded.resolved)


@asynccontextmanager
async def engine(side: Platform, store: str, flow: Path) -> AsyncIterator[Engine]:
    """An engine app as ``flowengine serve`` builds it, on its own flow file, with an API token."""
    config = ServiceConfig(provider="infobip", port=0, store=store, default_flow=flow, api_tokens=(TOKEN,),
                           provider_settings=provider_settings(side.simulator, side.url))
    app = create_app(config, clock=side.clock, timer_poll=None)
    async with serving(app) as url:
        yield Engine(app, url)


async def place(side: Platform, engine: Engine) -> str:
    call_id = await side.simulator.place_inbound_call(CALLER, CALLER_ID, TALK.caller)
    return engine.service.session_id_for(call_id)


def said_to(side: Platform, caller_call: str) -> list[str]:
    """The texts said on one call, in order."""
    return [r.body["text"] for r in side.simulator.requests
            if r.path == f"/calls/1/calls/{caller_call}/say"]


async def said_in(side: Platform, engine: Engine, session_id: str) -> list[str]:
    record = await until_over(engine.service, side, session_id)
    return said_to(side, record.data["calls"]["caller"])


async def get_json(http: aiohttp.ClientSession, url: str, **options: Any) -> tuple[int, Any]:
    async with http.request(options.pop("method", "GET"), url, headers=AUTH, **options) as answer:
        return answer.status, await answer.json()


def versions_of(listing: dict[str, Any], name: str = "two-party-conference") -> dict[str | None, Any]:
    flow = next(f for f in listing["flows"] if f["name"] == name)
    return {v["hash"]: (v["current"], v["sessions"]) for v in flow["versions"]} | {"hash": flow["hash"]}


async def test_a_call_in_progress_keeps_its_version_while_a_new_call_gets_the_new_one(tmp_path: Path) -> None:
    flow = copy_flow(tmp_path / "flows")
    v1 = version(flow)
    async with platform(TALK.parties) as side, engine(side, f"sqlite:///{tmp_path / 'fe.db'}", flow) as a, \
            aiohttp.ClientSession() as http:
        side.simulator.webhook_url = a.webhook_url
        first = await place(side, a)
        await until_state(a.service, first, "dialing")  # greeted, callee ringing: joining not said yet
        flow.write_text(flow.read_text().replace(JOINING, JOINING_V2))
        v2 = version(flow)
        async with http.post(f"{a.url}/api/flows/reload") as refused:  # the API wants its token
            assert refused.status == 401
        status, reloaded = await get_json(http, f"{a.url}/api/flows/reload", method="POST")
        assert status == 200, reloaded
        assert reloaded == {"reloaded": True, "flows": [
            {"name": "two-party-conference", "change": "changed", "from": v1, "to": v2}]}
        status, listing = await get_json(http, f"{a.url}/api/flows")
        assert status == 200 and listing["retired"] == []
        assert versions_of(listing) == {"hash": v2, v2: (True, 0), v1: (False, 1)}
        second = await place(side, a)
        await until_state(a.service, second, "dialing", "connected")
        _, listing = await get_json(http, f"{a.url}/api/flows")
        assert versions_of(listing) == {"hash": v2, v2: (True, 1), v1: (False, 1)}
        said_first, said_second = await said_in(side, a, first), await said_in(side, a, second)
        sessions = [await a.service.store.get(s) for s in (first, second)]
        _, after = await get_json(http, f"{a.url}/api/flows")
    assert JOINING in said_first and JOINING_V2 not in said_first
    assert JOINING_V2 in said_second and JOINING not in said_second
    assert [s.data["flow_hash"] for s in sessions if s is not None] == [v1, v2]
    assert versions_of(after) == {"hash": v2, v2: (True, 0)}  # both over: no live session holds a version


async def test_a_flow_with_errors_is_refused_with_its_diagnostics_and_the_old_one_keeps_serving(
    tmp_path: Path,
) -> None:
    flow = copy_flow(tmp_path / "flows")
    v1 = version(flow)
    async with platform(TALK.parties) as side, engine(side, "memory://", flow) as a, \
            aiohttp.ClientSession() as http:
        side.simulator.webhook_url = a.webhook_url
        broken = flow.read_text().replace("say.finished: dialing", "say.finished: dialling")
        assert broken != flow.read_text()
        flow.write_text(broken.replace(JOINING, JOINING_V2))
        status, refused = await get_json(http, f"{a.url}/api/flows/reload", method="POST")
        _, listing = await get_json(http, f"{a.url}/api/flows")
        said = await said_in(side, a, await place(side, a))
    assert status == 422 and refused["status"] == 422 and "nothing was reloaded" in refused["error"]
    problem = next(d for d in refused["diagnostics"] if d["severity"] == "error")
    line = next(n for n, text in enumerate(broken.splitlines(), 1) if "say.finished: dialling" in text)
    assert (problem["path"], problem["line"]) == (str(flow), line) and problem["col"] > 1
    assert problem["rule"] and '"dialling"' in problem["message"]
    assert versions_of(listing)["hash"] == v1
    assert JOINING in said and JOINING_V2 not in said  # the old version served the call


async def test_a_session_keeps_its_version_across_a_restart_on_new_files(tmp_path: Path) -> None:
    """Engine A starts a call on version 1; A stops; the file changes; engine B starts on the same SQLite
    file with version 2 loaded, and finishes the call on version 1, compiled from the store."""
    flow = copy_flow(tmp_path / "flows")
    v1, store = version(flow), f"sqlite:///{tmp_path / 'fe.db'}"
    relay = Relay()
    async with AsyncExitStack() as outer:
        side = await outer.enter_async_context(platform(TALK.parties))
        side.simulator.webhook_url = await outer.enter_async_context(serving(relay.app()))
        first = AsyncExitStack()
        outer.push_async_callback(first.aclose)
        a = await first.enter_async_context(engine(side, store, flow))
        relay.targets = [a.webhook_url]
        session_id = await place(side, a)
        await until_state(a.service, session_id, "dialing")
        with side.clock.busy():  # nothing moves while the engine is swapped
            await first.aclose()
            flow.write_text(flow.read_text().replace(JOINING, JOINING_V2))
            b = await outer.enter_async_context(engine(side, store, flow))
            relay.targets = [b.webhook_url]
        said = await said_in(side, b, session_id)
        record = await b.service.store.get(session_id)
    assert JOINING in said and JOINING_V2 not in said
    assert record is not None and record.data["flow_hash"] == v1 != version(flow)
    assert b.service.catalog.versions["two-party-conference"].version == version(flow)


def first_to_a(index: int, _: dict[str, Any]) -> Sequence[int]:
    return [0] if index == 0 else [1]


@pytest.mark.redis
async def test_a_session_started_on_one_instance_runs_its_version_on_another(
    tmp_path: Path, redis_prefix: str,
) -> None:
    """Instance A (version 2 on its files) takes the inbound call; every later webhook goes to instance B,
    which still has version 1 on its files: B runs the session on version 2, from the shared store."""
    new, old = copy_flow(tmp_path / "a", JOINING_V2), copy_flow(tmp_path / "b")
    store = f"{REDIS}?prefix={redis_prefix}"
    relay = Relay(route=first_to_a)
    async with platform(TALK.parties) as side, engine(side, store, new) as a, engine(side, store, old) as b, \
            aiohttp.ClientSession() as http:
        relay.targets = [a.webhook_url, b.webhook_url]
        async with serving(relay.app()) as relay_url:
            side.simulator.webhook_url = relay_url
            session_id = await place(side, a)
            await until_state(b.service, session_id, "connected")
            _, on_b = await get_json(http, f"{b.url}/api/flows")
            said = await said_in(side, b, session_id)
    assert JOINING_V2 in said and JOINING not in said
    assert {index for _, index, _ in relay.delivered} == {0, 1}
    assert versions_of(on_b) == {"hash": version(old), version(old): (True, 0), version(new): (False, 1)}


async def test_sighup_reloads_a_running_serve_and_logs_why_it_refuses(tmp_path: Path) -> None:
    flow = copy_flow(tmp_path / "flows")
    v1, port = version(flow), free_port()
    config = write_config(tmp_path / "fe.yaml", port, insecure_webhooks=True, api_tokens=[TOKEN],
                          routes=[{"to": CALLEE, "flow": str(flow)}])
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        child = subprocess.Popen([sys.executable, "-m", "flowengine", "serve", "--config", str(config)],
                                 stdout=out, stderr=subprocess.STDOUT, env=child_env())
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            await until_ready(http, base, child)
            assert versions_of((await get_json(http, f"{base}/api/flows"))[1])["hash"] == v1
            flow.write_text(flow.read_text().replace(JOINING, JOINING_V2))
            child.send_signal(signal.SIGHUP)
            await until_current(http, base, version(flow))
            flow.write_text(flow.read_text().replace("initial: answering", "initial: nowhere"))
            child.send_signal(signal.SIGHUP)
            await until_logged(log, "flows not reloaded")
            assert versions_of((await get_json(http, f"{base}/api/flows"))[1])["hash"] != v1
            assert child.poll() is None  # still serving
    finally:
        child.terminate()
        child.wait(REAL_GUARD)
    text = log.read_text()
    assert f"flows reloaded: two-party-conference changed {v1} -> " in text
    assert f"{flow}:" in text and '"nowhere"' in text  # the diagnostic, with its position
    assert "Traceback" not in text


async def until_current(http: aiohttp.ClientSession, base: str, wanted: str) -> None:
    for _ in range(int(REAL_GUARD / 0.05)):
        if versions_of((await get_json(http, f"{base}/api/flows"))[1])["hash"] == wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"serve never reloaded to {wanted}")


async def until_logged(log: Path, text: str) -> None:
    for _ in range(int(REAL_GUARD / 0.05)):
        if text in log.read_text():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"serve never logged {text!r}")


async def test_the_served_description_follows_a_reload_that_renames_an_outbound_flow(tmp_path: Path) -> None:
    """``/openapi.json`` names the outbound flows ``POST /api/calls`` takes: after a reload, the new ones."""
    inbound = copy_flow(tmp_path / "flows")
    outbound = tmp_path / "flows" / "reminder.yaml"
    outbound.write_text((Path(__file__).parents[1] / "testdata" / "outbound" / "reminder.yaml").read_text())
    async with platform(TALK.parties) as side, aiohttp.ClientSession() as http:
        config = ServiceConfig(provider="infobip", port=0, store="memory://", default_flow=inbound,
                               flows=(outbound,), api_tokens=(TOKEN,),
                               provider_settings=provider_settings(side.simulator, side.url))
        async with serving(create_app(config, clock=side.clock, timer_poll=None)) as url:
            _, before = await get_json(http, f"{url}/openapi.json")
            outbound.write_text(outbound.read_text().replace("flow: reminder", "flow: reminder-v2"))
            status, _ = await get_json(http, f"{url}/api/flows/reload", method="POST")
            assert status == 200
            _, after = await get_json(http, f"{url}/openapi.json")

    def startable(document: dict[str, Any]) -> Any:
        return document["components"]["schemas"]["CallRequest"]["properties"]["flow"]["enum"]

    assert (startable(before), startable(after)) == (["reminder"], ["reminder-v2"])
