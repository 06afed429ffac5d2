"""Who may read: every read route (the API, the dashboard, /metrics) refuses a request without the bearer
token or with a wrong one and serves the right one; the probes stay open; ``metrics_public`` opens
/metrics alone; with no token configured the read routes are closed, saying how to configure one."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from flowengine.config import ServiceConfig
from flowengine.server.app import create_app
from flowengine.server.serving import serving

from .conftest import FLOW

TOKEN, OTHER_TOKEN = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
READ_ROUTES = ["/", "/api/sessions", "/api/sessions/s-nobody", "/api/flows", "/metrics"]
SERVED = {"/": 200, "/api/sessions": 200, "/api/sessions/s-nobody": 404, "/api/flows": 200, "/metrics": 200}
SETTINGS = {"base_url": "http://127.0.0.1:9", "api_key": "k", "calls_configuration_id": "c",
            "webhook_hmac_secret": "hook-secret"}


@asynccontextmanager
async def service(**options: Any) -> AsyncIterator[str]:
    config = ServiceConfig(provider="infobip", port=0, store="memory://", default_flow=FLOW,
                           provider_settings=SETTINGS, **options)
    async with serving(create_app(config, timer_poll=None)) as url:
        yield url


async def get(url: str, **headers: str) -> tuple[int, dict[str, str], Any]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, dict(response.headers), body


@pytest.mark.parametrize("route", READ_ROUTES)
async def test_a_read_route_wants_the_token(route: str) -> None:
    async with service(api_tokens=(TOKEN, OTHER_TOKEN)) as url:
        refused = [
            await get(url + route),
            await get(url + route, Authorization=f"Bearer {TOKEN[:-1]}"),  # a prefix of it
            await get(url + route, Authorization=f"Bearer {TOKEN}x"),
            await get(url + route, Authorization="Bearer "),
            await get(url + route, Authorization=f"Basic {TOKEN}"),
            await get(url + route, Authorization=TOKEN),  # no scheme
            await get(url + route, Authorization="Bearer ünïcödé"),
        ]
        served = [
            await get(url + route, Authorization=f"Bearer {TOKEN}"),
            await get(url + route, Authorization=f"bearer {OTHER_TOKEN}"),  # either token; scheme any case
        ]
    for status, headers, body in refused:
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        assert body["status"] == 401 and "bearer token" in body["error"]
    assert [status for status, _, _ in served] == [SERVED[route]] * 2


async def test_probes_and_webhooks_are_not_behind_the_token() -> None:
    async with service(api_tokens=(TOKEN,)) as url:
        assert (await get(url + "/healthz"))[0] == 200
        assert (await get(url + "/readyz"))[0] == 200
        hook = url + "/webhooks/infobip"
        async with aiohttp.ClientSession() as http, http.post(hook, data=b"{}") as response:
            # refused by the webhook's own authentication, not asked for a bearer token
            assert response.status == 401 and "WWW-Authenticate" not in response.headers
            assert "HMAC" in (await response.json())["error"]
        # No route there: 404 (nothing to guard, and every route is public in the OpenAPI document); a
        # route nobody declared open stays closed (the guard goes by the matched route, not the path).
        assert (await get(url + "/nowhere"))[0] == 404
        assert (await get(url + "/api/sessions"))[0] == 401


async def test_metrics_public_opens_metrics_alone() -> None:
    async with service(api_tokens=(TOKEN,), metrics_public=True) as url:
        status, _, text = await get(url + "/metrics")
        assert status == 200 and "flowengine_webhooks_total" in text
        assert "flowengine_insecure_webhooks 0.0" in text
        for route in READ_ROUTES[:-1]:
            assert (await get(url + route))[0] == 401


async def test_without_tokens_the_read_routes_are_closed_and_say_how_to_open_them() -> None:
    async with service() as url:
        for route in READ_ROUTES:
            status, _, body = await get(url + route, Authorization=f"Bearer {TOKEN}")
            assert status == 403 and "api_tokens" in body["error"] and "Bearer" in body["error"]
        assert (await get(url + "/healthz"))[0] == 200


async def test_metrics_public_without_tokens_serves_metrics_only() -> None:
    async with service(metrics_public=True) as url:
        assert (await get(url + "/metrics"))[0] == 200
        assert (await get(url + "/api/sessions"))[0] == 403
