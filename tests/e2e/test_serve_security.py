"""``flowengine serve`` as a real process: it will not start with webhooks anyone could forge (and says
which settings fix that), starts loudly with ``insecure_webhooks: true`` (a warning and a metric), and
keeps phone numbers out of its log lines."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from flowengine.config import ServiceConfig
from flowengine.errors import ConfigError
from flowengine.providers.infobip.adapter import InfobipAdapter
from flowengine.providers.sinch.adapter import SinchAdapter
from flowengine.scenarios.stack import running_stack
from flowengine.server.app import create_app
from flowengine.simulator.infobip.simulator import InfobipSimulator
from flowengine.simulator.sinch.simulator import DEFAULT_SECRET, SinchSimulator

from .conftest import FLOW

REAL_GUARD = 20.0  # seconds a child may take to start or stop
INFOBIP = {"base_url": "http://127.0.0.1:9", "api_key": "k", "calls_configuration_id": "c"}
CALLER, UNROUTED = "447700900123", "447911123489"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """This environment without provider settings (they would configure the child behind our back)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFOBIP_", "SINCH_"))}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def write_config(path: Path, port: int, **more: Any) -> Path:
    config = {"provider": "infobip", "listen": {"host": "127.0.0.1", "port": port}, "store": "memory://",
              "routes": [{"to": "4592457976", "flow": str(FLOW)}], "infobip": dict(INFOBIP), **more}
    path.write_text(yaml.safe_dump(config))
    return path


def test_serve_refuses_unauthenticated_webhooks_and_says_how_to_fix_it(tmp_path: Path) -> None:
    config = write_config(tmp_path / "fe.yaml", free_port())
    done = subprocess.run([sys.executable, "-m", "flowengine", "serve", "--config", str(config)],
                          capture_output=True, text=True, timeout=REAL_GUARD, env=child_env(), check=False)
    assert done.returncode == 2
    message = done.stderr
    assert "infobip webhooks are not authenticated" in message
    for fix in ("INFOBIP_WEBHOOK_USER", "INFOBIP_WEBHOOK_PASSWORD", "INFOBIP_WEBHOOK_HMAC_SECRET",
                "insecure_webhooks: true"):
        assert fix in message
    assert "Traceback" not in message


def test_serve_on_a_port_already_taken_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        config = write_config(tmp_path / "fe.yaml", port, insecure_webhooks=True)
        command = [sys.executable, "-m", "flowengine", "serve", "--config", str(config)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=REAL_GUARD, env=child_env(),
                              check=False)
    assert done.returncode == 2
    assert f"flowengine: cannot listen on 127.0.0.1:{port}: Address already in use\n" in done.stderr
    assert "Traceback" not in done.stderr


async def test_serve_with_insecure_webhooks_starts_loudly_and_masks_numbers(tmp_path: Path) -> None:
    port, token = free_port(), secrets.token_urlsafe(24)
    config = write_config(tmp_path / "fe.yaml", port, insecure_webhooks=True, api_tokens=["${FE_API_TOKEN}"])
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        child = subprocess.Popen([sys.executable, "-m", "flowengine", "serve", "--config", str(config)],
                                 stdout=out, stderr=subprocess.STDOUT, env=child_env(FE_API_TOKEN=token))
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            await until_ready(http, base, child)
            async with http.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}) as response:
                assert response.status == 200
                assert "flowengine_insecure_webhooks 1.0" in await response.text()
            async with http.get(f"{base}/metrics") as response:
                assert response.status == 401
            # An inbound call to a number no route answers: refused, and logged with the number masked.
            received = {"type": "CALL_RECEIVED", "callId": "c-1", "timestamp": None, "properties": {"call": {
                "id": "c-1", "from": CALLER, "to": UNROUTED,
                "endpoint": {"type": "PHONE", "phoneNumber": CALLER}}}}
            async with http.post(f"{base}/webhooks/infobip", data=json.dumps(received)) as response:
                assert response.status == 404
    finally:
        child.terminate()
        child.wait(REAL_GUARD)
    text = log.read_text()
    assert "INSECURE: webhook authentication is off" in text
    assert "4479******89" in text and UNROUTED not in text


async def until_ready(http: aiohttp.ClientSession, base: str, child: subprocess.Popen[bytes]) -> None:
    for _ in range(int(REAL_GUARD / 0.1)):
        assert child.poll() is None, "serve exited during start-up"
        try:
            async with http.get(f"{base}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("serve did not start listening")


# -- the same rule where apps are built in-process ---------------------------------------------------
def config(**options: Any) -> ServiceConfig:
    settings = {**INFOBIP, **options.pop("settings", {})}
    return ServiceConfig(provider="infobip", port=0, store="memory://", default_flow=FLOW,
                         provider_settings=settings, **options)


def test_an_app_is_not_built_on_unauthenticated_webhooks() -> None:
    with pytest.raises(ConfigError, match="not authenticated"):
        create_app(config())
    assert create_app(config(settings={"webhook_hmac_secret": "s"}))
    assert create_app(config(settings={"webhook_user": "u", "webhook_password": "p"}))
    assert create_app(config(insecure_webhooks=True))


def test_the_replay_memory_must_outlast_the_timestamp_window() -> None:
    with pytest.raises(ConfigError, match="replay_ttl"):
        create_app(config(replay_ttl=500, settings={"webhook_hmac_secret": "s"}))  # window 300 s each way
    assert create_app(config(replay_ttl=600, settings={"webhook_hmac_secret": "s"}))
    assert create_app(config(replay_ttl=100, settings={"webhook_hmac_secret": "s", "webhook_max_skew": 50}))


# -- simulate/test stacks authenticate their own webhooks ---------------------------------------------
async def test_each_infobip_stack_signs_with_a_secret_of_its_own() -> None:
    async with running_stack("infobip", FLOW) as first, running_stack("infobip", FLOW) as second:
        used = []
        for stack in (first, second):
            simulator, adapter = stack.simulator, stack.service.adapter
            assert isinstance(simulator, InfobipSimulator) and isinstance(adapter, InfobipAdapter)
            assert simulator.webhook_hmac is not None and adapter.webhook_auth_enabled
            assert adapter.settings.hmac_secret == simulator.webhook_hmac[1]
            used.append(adapter.settings.hmac_secret)
        assert used[0] != used[1]
        # The other run's signature is not this run's.
        body = b'{"type": "CALL_RINGING", "callId": "x"}'
        async with aiohttp.ClientSession() as http:
            for signer, status in ((second, 401), (first, 200)):
                async with http.post(f"{first.engine_url}/webhooks/infobip", data=body,
                                     headers=signer.simulator.webhooks.headers_for(body)) as response:
                    assert response.status == status


async def test_each_sinch_stack_has_an_application_secret_of_its_own() -> None:
    async with running_stack("sinch", FLOW) as first, running_stack("sinch", FLOW) as second:
        used = []
        for stack in (first, second):
            simulator, adapter = stack.simulator, stack.service.adapter
            assert isinstance(simulator, SinchSimulator) and isinstance(adapter, SinchAdapter)
            assert adapter.settings.application_secret == simulator.application_secret
            used.append(simulator.application_secret)
        assert used[0] != used[1] and DEFAULT_SECRET not in used
