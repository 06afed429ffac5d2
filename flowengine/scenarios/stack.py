"""The engine and a simulated platform, each a real aiohttp server on 127.0.0.1, sharing virtual time.

Used by ``flowengine simulate``/``test`` and by the end-to-end tests: the same wiring the service uses in
production (``create_app``), pointed at the simulator instead of the platform.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from flowengine.config import ServiceConfig
from flowengine.providers.infobip.config import DEFAULT_HMAC_HEADER
from flowengine.runtime.clock import VirtualClock
from flowengine.runtime.ports import HttpClient
from flowengine.scenarios.http_mocks import HttpMock, MockedHttp
from flowengine.server.app import SERVICE, create_app
from flowengine.server.http_action import AllowListHttp
from flowengine.server.service import Service
from flowengine.server.serving import serving
from flowengine.simulator.base import Simulator
from flowengine.simulator.infobip.simulator import InfobipSimulator
from flowengine.simulator.parties import PartyBook
from flowengine.simulator.serve import build_simulator
from flowengine.simulator.sinch.simulator import SinchSimulator

FULL_TRACE = 100_000


@dataclass
class Stack:
    provider: str
    clock: VirtualClock
    simulator: Simulator
    app: web.Application
    engine_url: str
    simulator_url: str
    api_token: str = ""  # opens the engine's read API, dashboard and /metrics
    http: MockedHttp | None = None  # the http actions' client, when the run mocks them

    @property
    def api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"}

    @property
    def service(self) -> Service:
        return self.app[SERVICE]

    def live_calls(self) -> list[str]:
        return self.simulator.live_calls()


def provider_settings(simulator: Simulator, url: str) -> dict[str, Any]:
    """What the engine's adapter needs to talk to this simulator (the simulator's own credentials, and
    the HMAC its webhooks carry, if they carry one)."""
    if isinstance(simulator, InfobipSimulator):
        settings = {
            "base_url": url,
            "api_key": simulator.api_key,
            "calls_configuration_id": simulator.calls_configuration_id,
        }
        if simulator.webhook_hmac is not None:
            header, secret = simulator.webhook_hmac
            settings.update(webhook_hmac_header=header, webhook_hmac_secret=secret)
        return settings
    if isinstance(simulator, SinchSimulator):
        return {
            "base_url": url,
            "application_key": simulator.application_key,
            "application_secret": simulator.application_secret,
        }
    raise TypeError(f"no settings for {type(simulator).__name__}")


def webhook_auth(provider: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Simulator options that make its webhooks authenticated as the platform's are, with a secret of
    this run's own (a signed Infobip subscription, a Sinch application secret); ``options`` already
    choosing how (the caller's own) are kept as they are."""
    chosen = dict(options or {})
    if provider == "infobip" and not {"webhook_hmac", "webhook_headers"} & chosen.keys():
        chosen["webhook_hmac"] = (DEFAULT_HMAC_HEADER, secrets.token_urlsafe(24))
    if provider == "sinch" and "application_secret" not in chosen:
        chosen["application_secret"] = base64.b64encode(secrets.token_bytes(24)).decode()
    return chosen


@asynccontextmanager
async def running_stack(
    provider: str,
    flow: Path | None,
    *,
    store: str = "memory://",
    parties: PartyBook | None = None,
    clock: VirtualClock | None = None,
    settings: Mapping[str, Any] | None = None,
    simulator_options: Mapping[str, Any] | None = None,
    http_allow: tuple[str | Mapping[str, Any], ...] = (),
    service_options: Mapping[str, Any] | None = None,
    http_mocks: Sequence[HttpMock] | None = None,
) -> AsyncIterator[Stack]:
    """Start simulator and engine on loopback; ``flow`` answers every inbound call (None: none does, as
    when ``service_options`` gives only outbound ``flows``). The simulator's
    webhooks are authenticated with a secret of this run's (``webhook_auth``) and the engine checks them.
    ``service_options``: more ``ServiceConfig`` fields (``http_timeout``, ...). ``http_mocks``: the http
    actions are answered by these (``http_allow`` hosts reached for real when none matches)."""
    clock = clock if clock is not None else VirtualClock()
    clock.start()
    simulator = build_simulator(
        provider, clock, "http://127.0.0.1:9/not-yet", parties=parties,
        **webhook_auth(provider, simulator_options),
    )
    try:
        async with serving(simulator.app) as simulator_url:
            simulator.api_base_url = simulator_url
            config = ServiceConfig(
                provider=provider,
                port=0,
                store=store,
                default_flow=flow,
                provider_settings={**provider_settings(simulator, simulator_url), **(settings or {})},
                http_allow=http_allow,
                api_tokens=(api_token := secrets.token_urlsafe(24),),
                **dict(service_options or {}),
            )
            mocked: list[MockedHttp] = []
            wrap = None if http_mocks is None else _mocking(http_mocks, clock, config, mocked)
            # A scenario's timeline is its sessions' traces: keep every step, not just the recent ones.
            app = create_app(config, clock=clock, timer_poll=None, trace_limit=FULL_TRACE, wrap_http=wrap)
            async with serving(app) as engine_url:
                simulator.webhook_url = f"{engine_url}{config.webhook_path}/{provider}"
                yield Stack(provider, clock, simulator, app, engine_url, simulator_url, api_token,
                            mocked[0] if mocked else None)
    finally:
        await simulator.close()
        await clock.stop()


def _mocking(
    mocks: Sequence[HttpMock], clock: VirtualClock, config: ServiceConfig, made: list[MockedHttp]
) -> Callable[[AllowListHttp], HttpClient]:
    """What ``create_app`` wraps the service's http client with: the mocks first (kept in ``made``)."""

    def wrap(real: AllowListHttp) -> HttpClient:
        made.append(MockedHttp(mocks, clock, real, real.allowed, config.http_timeout))
        return made[0]

    return wrap
