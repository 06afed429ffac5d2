"""The description against the real wire: every webhook the simulators send in every bundled scenario, and
every answer the engine gives them, fits the description; so do the read routes' answers, over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator

from flowengine.config import ServiceConfig
from flowengine.providers import PROVIDERS
from flowengine.scenarios.model import load_scenarios
from flowengine.scenarios.runner import play, run_scenario
from flowengine.scenarios.stack import running_stack
from flowengine.server.app import create_app
from flowengine.server.openapi import openapi_document
from flowengine.server.serving import serving

ROOT = Path(__file__).resolve().parents[2]
FLOWS = sorted((ROOT / "flows").glob("*.yaml"))
DOCUMENT = openapi_document()


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for a schema inside the document (its ``$ref``s resolve against the document)."""
    return Draft202012Validator({**DOCUMENT, **schema})


def problems(schema: dict[str, Any], value: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator(schema).iter_errors(value)]


def answer_schema(path: str, status: int, media: str = "application/json", method: str = "get") -> Any:
    answer = DOCUMENT["paths"][path][method]["responses"][str(status)]
    return answer["content"][media]["schema"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_every_simulated_webhook_and_its_answer_fits_the_description(provider: str) -> None:
    hook = DOCUMENT["paths"][f"/webhooks/{provider}"]["post"]
    body = hook["requestBody"]["content"]["application/json"]["schema"]
    kinds: set[str] = set()
    for flow in FLOWS:
        for scenario in load_scenarios(flow).values():
            result = await run_scenario(provider, flow, scenario)
            assert result.passed, result.failures
            for delivered in result.webhooks:
                assert delivered["status"] == 200
                assert problems(body, delivered["body"]) == [], delivered["body"]
                kinds.add(str(delivered["body"].get("type") or delivered["body"].get("event")))
                if delivered["reply"] not in (None, ""):  # Sinch's SVAML after an ICE, ACE or PIE
                    svaml = answer_schema(f"/webhooks/{provider}", 200, method="post")
                    assert problems(svaml, delivered["reply"]) == [], delivered["reply"]
    expected = (
        {"CALL_RECEIVED", "CALL_ESTABLISHED", "CALL_FINISHED", "CALL_FAILED", "CONFERENCE_CREATED",
         "PARTICIPANT_JOINED", "SAY_FINISHED", "DTMF_CAPTURED"}
        if provider == "infobip" else {"ice", "ace", "dice", "pie"}
    )
    assert expected <= kinds


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_read_routes_answer_as_described(provider: str) -> None:
    flow = ROOT / "flows" / "two_party_conference.yaml"
    scenario = load_scenarios(flow)["callee-answers"]
    stack_up = running_stack(provider, flow, parties=scenario.parties)
    async with stack_up as stack, aiohttp.ClientSession() as http:
        result = await play(stack, scenario)
        session_id = stack.service.session_id_for(str(result.session["calls"]["caller"]))

        async def get(path: str, token: bool = True) -> tuple[int, str, Any]:
            headers = stack.api_headers if token else {}
            async with http.get(stack.engine_url + path, headers=headers) as answer:
                text = await answer.text()
                is_json = answer.content_type == "application/json"
                return answer.status, answer.content_type, json.loads(text) if is_json else text

        served = await get("/openapi.json", token=False)  # open, like the probes
        assert served[2] == openapi_document((provider,))
        for path, template in (("/healthz", "/healthz"), ("/readyz", "/readyz"), ("/api/flows", "/api/flows"),
                               ("/api/sessions?limit=5", "/api/sessions"),
                               (f"/api/sessions/{session_id}", "/api/sessions/{id}")):
            status, media, value = await get(path, token=template.startswith("/api"))
            assert (status, media) == (200, "application/json"), path
            assert problems(answer_schema(template, 200), value) == [], path
        assert (await get("/api/sessions?offset=1000000001"))[:2] == (400, "text/plain")
        assert (await get("/api/sessions/nobody"))[:2] == (404, "text/plain")
        assert (await get("/metrics"))[:2] == (200, "text/plain")
        assert (await get("/"))[:2] == (200, "text/html")
        for guarded in ("/", "/metrics", "/api/flows", f"/api/sessions/{session_id}"):
            status, media, value = await get(guarded, token=False)
            assert (status, media) == (401, "application/json"), guarded
            assert problems(answer_schema("/api/flows", 401), value) == []


async def test_without_api_tokens_the_guarded_routes_answer_403_as_described() -> None:
    settings = {"base_url": "http://127.0.0.1:9", "api_key": "k", "calls_configuration_id": "c",
                "webhook_user": "u", "webhook_password": "p"}
    config = ServiceConfig(provider="infobip", store="memory://", provider_settings=settings,
                           default_flow=ROOT / "flows" / "two_party_conference.yaml")
    async with serving(create_app(config, timer_poll=None)) as url, aiohttp.ClientSession() as http:
        async with http.get(url + "/api/flows") as answer:
            assert (answer.status, answer.content_type) == (403, "application/json")
            assert problems(answer_schema("/api/flows", 403), await answer.json()) == []
        async with http.get(url + "/openapi.json") as answer:
            assert answer.status == 200 and (await answer.json())["paths"]["/webhooks/infobip"]
