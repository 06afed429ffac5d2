"""The OpenAPI description: published as generated, valid OpenAPI 3.1, and in step with the app's router
in both directions (every route described, every described operation a route)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from flowengine.cli import cli
from flowengine.config import ServiceConfig
from flowengine.errors import WebhookError
from flowengine.providers import PROVIDERS
from flowengine.providers.infobip import webhook_schema
from flowengine.providers.infobip.webhooks import HANDLERS as INFOBIP_HANDLERS
from flowengine.providers.infobip.webhooks import parse_events
from flowengine.providers.sinch import callback_schema
from flowengine.providers.sinch.callbacks import HANDLERS as SINCH_HANDLERS
from flowengine.providers.sinch.callbacks import read_callback
from flowengine.server.app import create_app, description
from flowengine.server.openapi import openapi_document

ROOT = Path(__file__).resolve().parents[2]
FLOW = ROOT / "flows" / "two_party_conference.yaml"
SETTINGS: dict[str, dict[str, str]] = {
    "infobip": {"base_url": "http://127.0.0.1:9", "api_key": "k", "calls_configuration_id": "c",
                "webhook_user": "u", "webhook_password": "p"},
    "sinch": {"base_url": "http://127.0.0.1:9", "application_key": "k", "application_secret": "c2VjcmV0"},
}
METHODS = ("get", "head", "post", "put", "patch", "delete", "options", "trace")


def app_for(provider: str, webhook_path: str = "/webhooks") -> web.Application:
    config = ServiceConfig(provider=provider, store="memory://", default_flow=FLOW, webhook_path=webhook_path,
                           provider_settings=SETTINGS[provider])
    return create_app(config, timer_poll=None)


def routes(app: web.Application) -> set[str]:
    """``METHOD /path`` of every route the app's router holds (path templates as aiohttp writes them)."""
    return {f"{route.method} {route.resource.canonical}" for route in app.router.routes()
            if route.resource is not None}


def operations(document: dict[str, Any]) -> set[str]:
    return {f"{method.upper()} {path}" for path, item in document["paths"].items()
            for method in item if method in METHODS}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("webhook_path", ["/webhooks", "/hooks/v2"])
def test_the_served_description_holds_every_route_of_the_app_and_nothing_else(
    provider: str, webhook_path: str
) -> None:
    app = app_for(provider, webhook_path)
    served = json.loads(description(app))
    assert routes(app) - operations(served) == set(), "routes nobody described"
    assert operations(served) - routes(app) == set(), "described operations that are no route"
    assert f"POST {webhook_path}/{provider}" in operations(served)
    assert "HEAD /api/sessions/{id}" in operations(served)  # aiohttp answers HEAD on every GET route


def test_the_published_description_is_every_route_of_both_providers() -> None:
    published = openapi_document()
    every_route = set().union(*(routes(app_for(provider)) for provider in PROVIDERS))
    assert operations(published) == every_route
    assert {"POST /webhooks/infobip/{kind}", "POST /webhooks/sinch", "GET /metrics", "GET /"} <= every_route


def test_the_published_file_is_the_generated_one() -> None:
    published = json.loads((ROOT / "schemas" / "openapi.json").read_text(encoding="utf-8"))
    assert published == openapi_document()
    printed = CliRunner().invoke(cli, ["schema", "--openapi"])
    assert printed.exit_code == 0 and json.loads(printed.stdout) == published


def test_schema_refuses_two_documents_at_once() -> None:
    printed = CliRunner().invoke(cli, ["schema", "--openapi", "--config"])
    assert printed.exit_code == 2 and "choose one" in printed.output


def test_the_description_is_valid_openapi_3_1_with_valid_schemas() -> None:
    document = openapi_document()
    OPENAPI_31_VALIDATOR.validate(document)
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    # Every $ref resolves: validating through each named schema walks its references.
    for name in document["components"]["schemas"]:
        validator = Draft202012Validator({**document, "$ref": f"#/components/schemas/{name}"})
        list(validator.iter_errors({}))


def test_security_follows_the_route() -> None:
    document = openapi_document()
    paths = document["paths"]
    for open_path in ("/healthz", "/readyz", "/openapi.json"):
        assert paths[open_path]["get"]["security"] == []
    for guarded in ("/api/sessions", "/api/sessions/{id}", "/api/flows", "/metrics"):
        assert paths[guarded]["get"]["security"] == [{"apiToken": []}]
        assert "401" in paths[guarded]["get"]["responses"]
    for page in ("/", "/sessions", "/sessions/{id}"):  # a browser signs in once, for its cookie
        assert paths[page]["get"]["security"] == [{"apiToken": []}, {"dashboardCookie": []}]
        assert "401" in paths[page]["get"]["responses"]
    for sign_in in ("/login", "/static/dashboard.css"):
        assert paths[sign_in]["get"]["security"] == []
    assert openapi_document(metrics_public=True)["paths"]["/metrics"]["get"]["security"] == []
    assert {"infobipBasic"} <= {k for s in paths["/webhooks/infobip"]["post"]["security"] for k in s}
    sinch = paths["/webhooks/sinch"]["post"]["security"]
    assert {"sinchSigned", "sinchTimestamp", "sinchBasic"} <= {k for s in sinch for k in s}
    for provider in PROVIDERS:
        answers = paths[f"/webhooks/{provider}"]["post"]["responses"]
        assert {"200", "400", "401", "404", "413", "503"} <= set(answers)


def test_every_event_type_the_parsers_handle_is_described() -> None:
    assert sorted(webhook_schema.HANDLED) == sorted(INFOBIP_HANDLERS)
    assert sorted(callback_schema.HANDLED) == sorted(SINCH_HANDLERS)


@functools.cache
def body_validator(provider: str) -> Draft202012Validator:
    document = openapi_document()
    schema = document["paths"][f"/webhooks/{provider}"]["post"]["requestBody"]["content"]["application/json"]
    return Draft202012Validator({**document, **schema["schema"]})


def test_the_sinch_reference_callback_is_a_valid_body() -> None:
    # The signing test vector's body (shared/reference/sinch-calling-api.md, section 1).
    body = {"event": "ace", "callid": "822aa4b7-05b4-4d83-87c7-1f835ee0b6f6_257",
            "timestamp": "2014-09-24T10:59:41Z", "version": 1}
    validator = body_validator("sinch")
    assert list(validator.iter_errors(body)) == []
    assert validator.is_valid({"event": "ACE", "callId": "c-1"})  # any case; either spelling of the id
    assert validator.is_valid({"event": "recording"})  # an event no flow reacts to: acknowledged
    for refused in ({"event": "ace"}, {"event": "Dice", "callid": ""}, {"event": ""}, {"callid": "c-1"}, []):
        assert not validator.is_valid(refused), refused  # what read_callback answers 400 to


def test_what_the_infobip_parser_refuses_is_outside_the_body_schema() -> None:
    validator = body_validator("infobip")
    assert validator.is_valid({"type": "CALL_RECEIVED", "callId": "c-1", "properties": {"call": {
        "id": "c-1", "endpoint": {"type": "PHONE", "phoneNumber": "447700900001"}, "to": "4592457976"}}})
    assert validator.is_valid([{"type": "CALL_RINGING"}, {"type": "CALL_FINISHED", "callId": "c-1"}])
    assert validator.is_valid({"type": "PARTICIPANT_JOINED", "conferenceId": "r-1"})
    assert validator.is_valid({"type": "CALL_RINGING"})  # an event no flow reacts to: acknowledged
    # A handled type about no call or conference: the parser refuses it (400), so the schema does too.
    for refused in ({}, {"type": ""}, {"type": 7}, ["CALL_RECEIVED"], "CALL_RECEIVED",
                    {"type": "CALL_FINISHED"}, [{"type": "CALL_FINISHED", "callId": ""}],
                    {"type": "PARTICIPANT_JOINED", "conferenceId": None}):
        assert not validator.is_valid(refused), refused
        assert not _accepted(parse_events, refused), refused


def _accepted(parse: Any, body: Any) -> bool:
    try:
        parse(json.dumps(body).encode())
    except WebhookError:
        return False
    return True


@pytest.mark.parametrize(("provider", "parse"), [("infobip", parse_events), ("sinch", read_callback)])
def test_every_body_the_description_admits_is_one_the_parser_accepts(provider: str, parse: Any) -> None:
    # Bodies drawn from the description itself (schemathesis' positive data). Not the converse: a parser
    # reads an optional field of the wrong type as absent, where the schemas say what the platform sends
    # (the refusals are pinned above).
    operation = schemathesis.openapi.from_dict(openapi_document())[f"/webhooks/{provider}"]["POST"]
    drawn: list[Any] = []

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def admitted_is_accepted(case: Any) -> None:
        drawn.append(case.body)
        assert _accepted(parse, case.body), case.body

    admitted_is_accepted()
    assert len(drawn) >= 40 and any(isinstance(body, dict) and len(body) > 2 for body in drawn)
