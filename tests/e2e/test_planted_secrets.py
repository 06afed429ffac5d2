"""No secret is ever echoed. Marked secrets are planted where a deployment keeps them (the provider's
keys and webhook password in the environment, a token and a password in an ``http`` action's URL, a
password in the Redis URL), real calls run through ``flowengine serve`` (a process on 127.0.0.1, with
its store in a real SQLite file, driving an in-process simulator), and then every place the service
speaks is searched: its log, every HTTP answer it gave (webhook replies, refusals, the read API, the
dashboard, metrics), and the raw bytes of the SQLite files, both while it runs and after it stopped.

Sinch's application key is not planted: it is an identifier every callback body carries in the clear
(``applicationKey``); its secret is.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from flowengine.runtime.clock import SystemClock
from flowengine.server.serving import serving
from flowengine.simulator.base import Simulator
from flowengine.simulator.serve import build_simulator

REAL_GUARD = 20.0  # seconds of wall time any wait may take before the test gives up
REDIS = "127.0.0.1:6379/15"  # this test's database (its keys under a prefix of its own, removed after)


def planted(kind: str) -> str:
    """A marked secret: letters and digits only, so it reads the same in every encoding it could take."""
    return f"PLANTED{kind}{uuid.uuid4().hex[:12]}"


@dataclass
class Secrets:
    values: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: str) -> str:
        self.values[name] = value
        return value

    def found_in(self, text: str | bytes) -> list[str]:
        data = text.encode() if isinstance(text, str) else text
        return sorted(name for name, value in self.values.items() if value.encode() in data)


@dataclass
class Heard:
    """Everything the service said: HTTP answers as (what, body), and its log file."""

    answers: list[tuple[str, bytes]] = field(default_factory=list)
    files: list[tuple[str, bytes]] = field(default_factory=list)

    def leaks(self, secrets: Secrets) -> list[str]:
        return [f"{where}: {names}" for where, data in (*self.answers, *self.files)
                if (names := secrets.found_in(data))]


def child_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` over this shell's environment without its provider settings (never a real platform's)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("INFOBIP_", "SINCH_"))}
    return {**base, **env, "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve(config: dict[str, Any], workdir: Path, env: dict[str, str]) -> AsyncIterator[Path]:
    """``flowengine serve`` with ``config`` and ``env`` (nothing of this shell's provider settings);
    yields its log file once /healthz answers, stops it with SIGTERM (bounded) afterwards."""
    path = workdir / "flowengine.yaml"
    path.write_text(yaml.safe_dump(config))
    log = workdir / "serve.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "flowengine", "serve", "--config", str(path),
            stdout=out, stderr=asyncio.subprocess.STDOUT, env=child_env(env),
        )
    url = f"http://127.0.0.1:{config['listen']['port']}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(int(REAL_GUARD / 0.1)):
                if process.returncode is not None:
                    raise AssertionError(f"serve exited: {log.read_text()}")
                try:
                    async with http.get(url + "/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("serve did not start listening")
        yield log
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), REAL_GUARD)
            except TimeoutError:
                process.kill()
                await process.wait()


def crm_app(hits: list[str]) -> web.Application:
    async def lookup(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"name": "Ada"})

    async def fail(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"error": "down"}, status=500)

    app = web.Application()
    app.router.add_route("*", "/lookup", lookup)
    app.router.add_route("*", "/fail", fail)
    return app


def flow_text(crm_port: int, secrets: Secrets) -> str:
    """Answer, log and call the CRM with credentials in the URL; then three http actions that fail
    (an answer 500, a host off the list, a malformed URL), in a row, so the session is aborted."""
    token, password = secrets.values["crm_token"], secrets.values["crm_password"]
    crm = f"http://crm:{password}@127.0.0.1:{crm_port}"
    return yaml.safe_dump({
        "flow": "planted", "version": 1, "initial": "lookup",
        "states": {
            "lookup": {
                "entry": [
                    {"answer": {"call": "caller"}},
                    {"log": {"message": f"{crm}/lookup?token={token}, Authorization: Bearer {token}"}},
                    {"http": {"url": f"{crm}/lookup?token={token}", "as": "customer"}},
                ],
                "on": {"call.answered": "failing", "action.failed": "failing"},
                "after": {"20s": "bye"},
            },
            "failing": {
                "entry": [{"http": {"url": f"{crm}/fail?token={token}"}}],
                "on": {"action.failed": "unlisted"},
            },
            "unlisted": {
                "entry": [{"http": {"url": f"https://x:{password}@crm.example.org/?token={token}"}}],
                "on": {"action.failed": "malformed"},
            },
            "malformed": {
                "entry": [{"http": {"url": f"http://127.0.0.1:{crm_port}\\@evil.example/?token={token}"}}],
                "on": {"action.failed": "bye"},
            },
            "bye": {"entry": [{"hangup": {"call": "caller"}}], "type": "final"},
        },
    })


def provider_side(provider: str, secrets: Secrets, webhook_url: str) -> tuple[Simulator, dict[str, str]]:
    """The simulator, holding the same planted credentials as the environment given to ``serve``."""
    clock = SystemClock()
    if provider == "infobip":
        key, password = secrets.add("infobip_api_key", planted("key")), planted("hookpw")
        secrets.add("webhook_password", password)
        basic = secrets.add("webhook_basic", base64.b64encode(f"flowengine:{password}".encode()).decode())
        simulator = build_simulator("infobip", clock, webhook_url, api_key=key,
                                    webhook_headers={"Authorization": f"Basic {basic}"})
        return simulator, {"INFOBIP_API_KEY": key, "INFOBIP_CALLS_CONFIGURATION_ID": "planted-test",
                           "INFOBIP_WEBHOOK_USER": "flowengine", "INFOBIP_WEBHOOK_PASSWORD": password}
    raw = planted("sinchsecret")
    secrets.add("sinch_secret_raw", raw)
    secret = secrets.add("sinch_secret", base64.b64encode(raw.encode()).decode())
    simulator = build_simulator("sinch", clock, webhook_url, application_key="planted-app",
                                application_secret=secret)
    return simulator, {"SINCH_APPLICATION_KEY": "planted-app", "SINCH_APPLICATION_SECRET": secret}


async def answered(http: aiohttp.ClientSession, heard: Heard, method: str, url: str, **kw: Any) -> Any:
    async with http.request(method, url, **kw) as response:
        body = await response.read()
    heard.answers.append((f"{method} {url} -> {response.status}", body))
    return response.status, body


async def until_over(http: aiohttp.ClientSession, heard: Heard, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + REAL_GUARD
    while time.monotonic() < deadline:
        async with http.get(f"{url}/api/sessions") as response:
            sessions = (await response.json())["sessions"]
        if sessions and all(s["status"] in ("ended", "failed") for s in sessions):
            return dict(sessions[0])
        await asyncio.sleep(0.1)
    raise AssertionError("the session did not end")


def store_files(workdir: Path) -> list[tuple[str, bytes]]:
    return [(f"store file {p.name}", p.read_bytes()) for p in sorted(workdir.glob("sessions.db*"))]


@pytest.mark.parametrize("provider", ["infobip", "sinch"])
async def test_no_planted_secret_is_echoed(tmp_path: Path, provider: str) -> None:
    secrets, heard, hits = Secrets(), Heard(), list[str]()
    secrets.add("crm_token", planted("token"))
    secrets.add("crm_password", planted("crmpw"))
    api_token = secrets.add("api_token", planted("apitoken"))
    port = free_port()
    engine_url = f"http://127.0.0.1:{port}"
    simulator, env = provider_side(provider, secrets, f"{engine_url}/webhooks/{provider}")
    async with serving(crm_app(hits)) as crm_url, serving(simulator.app) as simulator_url:
        simulator.api_base_url = simulator_url
        crm_port = int(crm_url.rsplit(":", 1)[1])
        (tmp_path / "planted.yaml").write_text(flow_text(crm_port, secrets))
        config = {
            "provider": provider, "listen": {"host": "127.0.0.1", "port": port},
            "store": f"sqlite:///{tmp_path / 'sessions.db'}", "default_flow": "planted.yaml",
            "http_allow": [{"host": "127.0.0.1", "ports": [crm_port], "private": True}],
            "log_level": "debug", "api_tokens": ["${FLOWENGINE_API_TOKEN}"],
        }
        env = {**env, f"{provider.upper()}_BASE_URL": simulator_url, "FLOWENGINE_API_TOKEN": api_token}
        reader = {"Authorization": f"Bearer {api_token}"}  # the read API's own secret: never echoed either
        async with serve(config, tmp_path, env) as log, aiohttp.ClientSession(headers=reader) as http:
            await simulator.place_inbound_call("447700900001", "447700900002")
            session = await until_over(http, heard, engine_url)
            running = store_files(tmp_path)  # the WAL as it is while the service runs
            for route in ("/api/sessions", f"/api/sessions/{session['id']}", "/api/flows", "/",
                          "/sessions", f"/sessions/{session['id']}", "/metrics", "/readyz", "/healthz"):
                await answered(http, heard, "GET", engine_url + route)
            bad_auth = {"Authorization": "Basic " + secrets.values.get("webhook_basic", "x")[::-1],
                        "x-token": secrets.values["crm_token"]}
            await answered(http, heard, "POST", f"{engine_url}/webhooks/{provider}", data=b"{}",
                           headers=bad_auth)
            await answered(http, heard, "POST", f"{engine_url}/webhooks/{provider}",
                           data=f'{{"token": "{secrets.values["crm_token"]}"'.encode())
        await simulator.close()
    heard.answers += [(f"webhook reply {e['body'].get('type') or e['body'].get('event')}",
                       repr(e["reply"]).encode()) for e in simulator.events]
    heard.files += [("serve log", log.read_bytes()), *running, *store_files(tmp_path)]

    # The secrets were really used: the CRM was called with the token, the session went the whole way.
    assert hits == ["/lookup", "/fail"]
    assert session["status"] == "failed"  # three failed actions in a row abort it
    log_text = log.read_text()
    assert "token=***" in log_text and "Bearer ***" in log_text and "crm:***@127.0.0.1" in log_text
    assert [name for name, data in store_files(tmp_path) if data]  # there is a store to search
    assert heard.leaks(secrets) == []


async def test_a_redis_url_password_is_never_echoed(tmp_path: Path) -> None:
    """The store URL's password: in a start-up error (an option that does not parse), and while the
    service runs with Redis out of reach (readiness, a webhook answered 503, the log lines about it)."""
    secrets, heard = Secrets(), Heard()
    password = secrets.add("redis_password", planted("redispw"))
    hook_password = secrets.add("webhook_password", planted("hookpw"))
    basic = secrets.add("webhook_basic", base64.b64encode(f"flowengine:{hook_password}".encode()).decode())
    port = free_port()
    config: dict[str, Any] = {
        "provider": "infobip", "listen": {"host": "127.0.0.1", "port": port},
        "store": f"redis://:{password}@{REDIS}?lock_timeout=soon",
        "default_flow": str(Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"),
    }
    env = {"INFOBIP_BASE_URL": "http://127.0.0.1:9", "INFOBIP_API_KEY": "k",
           "INFOBIP_CALLS_CONFIGURATION_ID": "c", "INFOBIP_WEBHOOK_USER": "flowengine",
           "INFOBIP_WEBHOOK_PASSWORD": hook_password}
    (tmp_path / "flowengine.yaml").write_text(yaml.safe_dump(config))
    argv = [sys.executable, "-m", "flowengine", "serve", "--config", str(tmp_path / "flowengine.yaml")]
    refused = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, env=child_env(env), timeout=REAL_GUARD, check=False
    )
    assert refused.returncode == 2
    assert f"redis://:***@{REDIS}?lock_timeout=***" in refused.stderr.decode()
    heard.files.append(("start-up error", refused.stdout + refused.stderr))

    config["store"] = f"redis://:{password}@127.0.0.1:1/15"  # nobody listens there
    async with serve(config, tmp_path, env) as log, aiohttp.ClientSession() as http:
        assert (await answered(http, heard, "GET", f"http://127.0.0.1:{port}/readyz"))[0] == 503
        status, _ = await answered(
            http, heard, "POST", f"http://127.0.0.1:{port}/webhooks/infobip",
            json={"type": "CALL_RECEIVED", "callId": "c-1", "properties": {"call": {"id": "c-1"}}},
            headers={"Authorization": f"Basic {basic}"},
        )
    assert status == 503
    text = log.read_text()
    assert "Redis store" in text and "127.0.0.1:1" in text  # the log says what failed, and where
    heard.files.append(("serve log", log.read_bytes()))
    assert heard.leaks(secrets) == []
