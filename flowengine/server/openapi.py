"""The service's OpenAPI 3.1 description: every route ``create_app`` registers, built here and nowhere else.

``flowengine schema --openapi`` prints it for both providers (the published ``schemas/openapi.json``); the
app serves it at ``/openapi.json`` for its own provider and webhook path. A test compares the document's
operations with the app's router in both directions, so a route added without a description fails.

Every GET route also answers HEAD (aiohttp's default), so each GET has its HEAD twin, without bodies.
Webhook bodies are the providers' own (``providers.infobip.webhook_schema``,
``providers.sinch.callback_schema``); a webhook the service refuses gets a 4xx with ``Error`` as body.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from flowengine import __version__
from flowengine.config_schema import default
from flowengine.providers import PROVIDERS
from flowengine.server.api import MAX_LIMIT, MAX_OFFSET
from flowengine.server.openapi_control import control_paths, control_schemas
from flowengine.server.openapi_schemas import JSON, REF, SCHEMAS, Schema

OPENAPI_VERSION = "3.1.0"
DEFAULT_WEBHOOK_PATH: str = default("webhook", "path")  # the published document uses the config's default

_SECURITY_SCHEMES: Schema = {
    "apiToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A token listed in the config's `api_tokens` (values from the environment), compared "
        "in constant time. Required on /api/*, / and /metrics (unless `metrics_public: true`); with no "
        "`api_tokens` configured those routes answer 403.",
    },
    "dashboardCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "flowengine_dashboard",
        "description": "The dashboard's sign-in cookie (POST /login with an API token): HttpOnly, "
        "SameSite=Strict, 12 hours; opens the dashboard's pages only, never /api or /metrics.",
    },
    "infobipBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "Infobip's BASIC webhook security: the user and password of the subscription.",
    },
    "infobipHmac": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Signature",
        "description": "Infobip's HMAC webhook security: the HMAC of the raw body (hex or base64, optionally "
        "`sha256=`-prefixed). Header name and algorithm are settings (defaults X-Signature, sha256).",
    },
    "sinchSigned": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "Sinch's signed request: `Application <applicationKey>:<signature>`, the signature "
        "being Base64(HMAC-SHA256(secret, method, Content-MD5, Content-Type, x-timestamp, path)).",
    },
    "sinchTimestamp": {
        "type": "apiKey",
        "in": "header",
        "name": "x-timestamp",
        "description": "The signed request's time (ISO 8601), part of the signature; one further than "
        "`SINCH_CALLBACK_MAX_SKEW` (default 300 s) from now, either way, is refused.",
    },
    "sinchBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "Basic applicationKey:applicationSecret, accepted when `callback_auth: basic`.",
    },
}
_WEBHOOK_SECURITY: dict[str, list[Schema]] = {
    "infobip": [{"infobipBasic": []}, {"infobipHmac": []}, {"infobipBasic": [], "infobipHmac": []}],
    "sinch": [{"sinchSigned": [], "sinchTimestamp": []}, {"sinchBasic": []}],
}
_WEBHOOK_AUTH_NOTE = {
    "infobip": "Every method configured (Basic, HMAC) is enforced.",
    "sinch": "Signed callbacks by default; Basic key:secret when `callback_auth: basic`.",
}
_BODIES: dict[str, str] = {"infobip": "InfobipWebhookBody", "sinch": "SinchCallback"}
_TOKEN: list[Schema] = [{"apiToken": []}]
_ONCE = "A redelivered event is acknowledged and not handled twice."

def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _ref(name: str) -> Schema:
    return {"$ref": REF + name}


def _text(media: str, description: str) -> Schema:
    return {"description": description, "content": {media: {"schema": {"type": "string"}}}}


_UNAUTHORIZED = {
    "description": "No bearer token, or a wrong one (`Authorization: Bearer <token>`).",
    "headers": {"WWW-Authenticate": {"schema": {"const": 'Bearer realm="flowengine"'}}},
    "content": {JSON: {"schema": _ref("Error")}},
}
_NO_TOKENS = _json(_ref("Error"), "No `api_tokens` configured: the error says how to configure one.")
_WEBHOOKREFUSALS: Schema = {
    "400": _json(_ref("Error"), "Unusable body: not JSON, not an event, a required field missing or of "
                 "the wrong type, too deep or too many events."),
    "401": _json(_ref("Error"), "The provider's authentication failed: missing, wrong, or stale (a time "
                 "further than the window, default 5 minutes, from now)."),
    "404": _json(_ref("Error"), "No flow answers calls to that number, or no session owns that call."),
    "413": _json(_ref("Error"), "Body over `webhook.max_body_bytes` (default 262144)."),
    "503": _json(_ref("Error"), "The session store is unavailable: the platform retries, nothing is lost."),
}
_STORE_DOWN = _json(_ref("Error"), "The session store is unavailable.")


def _operation(op_id: str, tag: str, summary: str, responses: Schema, **more: Any) -> Schema:
    return {"operationId": op_id, "tags": [tag], "summary": summary, "responses": responses, **more}


def _head(get: Schema) -> Schema:
    """GET's HEAD twin: same parameters and statuses, no bodies."""
    responses = {code: {"description": answer["description"]} for code, answer in get["responses"].items()}
    head = {**get, "operationId": "head" + get["operationId"][3:], "responses": responses}
    head["summary"] = get["summary"] + " (headers only)"
    return head


_PAGING: list[Schema] = [
    {"name": "limit", "in": "query", "schema": {"type": "integer"},
     "description": f"At most this many (default 100, capped at {MAX_LIMIT}; negative counts as 0)."},
    {"name": "offset", "in": "query", "schema": {"type": "integer", "maximum": MAX_OFFSET},
     "description": "Skip this many (default 0; negative counts as 0)."},
    {"name": "status", "in": "query", "schema": {"type": "string"},
     "description": "Only sessions in this status (active, ended, failed)."},
    {"name": "flow", "in": "query", "schema": {"type": "string"},
     "description": "Only sessions of this flow."},
]
_SESSION_ID: Schema = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def _list_of(key: str, item: str) -> Schema:
    return {"type": "object", "required": [key], "properties": {key: {"type": "array", "items": _ref(item)}}}


def _flows_listing() -> Schema:
    listing = _list_of("flows", "Flow")
    listing["properties"]["retired"] = {"type": "array", "items": _ref("RetiredFlow")}
    return listing


def _open_routes(metrics_public: bool) -> dict[str, Schema]:
    """Routes without credentials (and /metrics, open only with ``metrics_public``), as GET operations."""
    alive = {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}}
    metrics = {"200": _text("text/plain", "The metrics.")}
    if not metrics_public:
        metrics.update({"401": _UNAUTHORIZED, "403": _NO_TOKENS})
    return {
        "/healthz": _operation("getHealth", "health", "Liveness: the process answers", {
            "200": _json(alive, "Alive.")}, security=[]),
        "/readyz": _operation("getReadiness", "health", "Readiness: the store answers", {
            "200": _json(_ref("Readiness"), "Ready to take webhooks."),
            "503": _json(_ref("Readiness"), "The session store does not answer.")}, security=[]),
        "/metrics": _operation("getMetrics", "metrics", "Prometheus metrics (text exposition format)",
                               metrics, security=[] if metrics_public else _TOKEN),
        "/openapi.json": _operation("getOpenapi", "meta", "This description", {
            "200": _json({"type": "object", "required": ["openapi", "paths"]}, "The OpenAPI document.")},
            security=[]),
    }


def _guarded_routes() -> dict[str, Schema]:
    """The dashboard and the read API (bearer token), as GET operations."""
    refused = {"401": _UNAUTHORIZED, "403": _NO_TOKENS, "503": _STORE_DOWN}
    bad_paging = f"limit or offset is not an integer, or offset is over {MAX_OFFSET}."
    return {
        "/api/sessions": _operation("getSessions", "api", "Sessions, most recently updated first", {
            "200": _json(_list_of("sessions", "SessionSummary"), "The page of sessions."),
            "400": _text("text/plain", bad_paging), **refused}, parameters=_PAGING, security=_TOKEN),
        "/api/sessions/{id}": _operation("getSession", "api", "One session with its trace", {
            "200": _json(_ref("Session"), "The session."),
            "404": _text("text/plain", "No session with that id."), **refused},
            parameters=[_SESSION_ID], security=_TOKEN),
        "/api/pacing": _operation("getPacing", "api", "Call-creation pacing: queue depth and waits", {
            "200": _json(_ref("Pacing"), "Each paced provider's rule, queue and waits."), **refused},
            security=_TOKEN),
        "/api/flows": _operation("getFlows", "api", "The loaded flows' graphs and versions", {
            "200": _json(_flows_listing(), "The flows, and the versions live sessions hold."), **refused},
            security=_TOKEN),
    }


_HTML = "text/html"
_BROWSER = [*_TOKEN, {"dashboardCookie": []}]
_SIGN_IN_FIRST = {"description": "A browser without credentials is sent to the sign-in form.",
                  "headers": {"Location": {"schema": {"type": "string"}}}}


def _dashboard_pages() -> dict[str, Schema]:
    """The dashboard's pages (token or sign-in cookie), as GET operations; HTML, no scripts."""
    refused = {"303": _SIGN_IN_FIRST, "401": _UNAUTHORIZED, "403": _NO_TOKENS, "503": _STORE_DOWN}
    described = (("flow", "Only this flow's sessions."), ("state", "Only sessions in this state."),
                 ("status", "active, ended or failed."), ("page", "Page number."))
    filters = [{"name": name, "in": "query", "schema": {"type": "string"}, "description": what}
               for name, what in described]
    return {
        "/": _operation("getDashboard", "dashboard", "Each flow drawn, with live sessions per state", {
            "200": _text(_HTML, "The page (refreshes itself)."), **refused}, security=_BROWSER),
        "/sessions": _operation("getSessionsPage", "dashboard", "Sessions, filtered and paged", {
            "200": _text(_HTML, "The page."), "400": _text(_HTML, "A filter that cannot be used."),
            **refused}, parameters=filters, security=_BROWSER),
        "/sessions/{id}": _operation("getSessionPage", "dashboard", "One session and its trace", {
            "200": _text(_HTML, "The page."), "404": _text(_HTML, "No session with that id."), **refused},
            parameters=[_SESSION_ID], security=_BROWSER),
        "/login": _operation("getLogin", "dashboard", "The sign-in form", {
            "200": _text(_HTML, "The form."), "403": _text(_HTML, "No `api_tokens` configured.")},
            parameters=[{"name": "next", "in": "query", "schema": {"type": "string"},
                         "description": "Where to go once signed in (a path of this site)."}], security=[]),
        "/static/dashboard.css": _operation("getStylesheet", "dashboard", "The pages' style sheet", {
            "200": _text("text/css", "The style sheet.")}, security=[]),
    }


def _dashboard_sign_in() -> dict[str, Schema]:
    """Signing a browser in and out: the token in a form body, never in a URL; same-site posts only."""
    form = {"type": "object", "properties": {"token": {"type": "string"}, "next": {"type": "string"}}}
    body = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": form}}}
    cross_site = _text(_HTML, "Posted from another site, or no `api_tokens` configured.")
    done = {"description": "Signed in (the cookie is set) or out; on to the page.",
            "headers": {"Location": {"schema": {"type": "string"}}}}
    return {
        "/login": {"post": _operation("postLogin", "dashboard", "Sign in with an API token", {
            "303": done, "400": _text(_HTML, "Not a form."), "401": _text(_HTML, "Not one of the tokens."),
            "403": cross_site}, requestBody=body, security=[])},
        "/logout": {"post": _operation("postLogout", "dashboard", "Sign out (the cookie is cleared)", {
            "303": done, "403": cross_site}, security=[])},
    }


def _webhook_routes(provider: str, webhook_path: str) -> dict[str, Schema]:
    title = provider.capitalize()
    body = _ref(_BODIES[provider]) if provider in _BODIES else {}
    answered: Schema = {"description": "Handled or ignored (an event no flow reacts to)."}
    if provider == "sinch":
        answered["description"] += " An ICE, ACE or PIE gets its SVAML; other callbacks an empty body."
        answered["content"] = {JSON: {"schema": _ref("Svaml")}}
    post = _operation(
        f"{provider}Webhook", "webhooks", f"{title} webhook: events in, the flow's steps taken",
        {"200": answered, **_WEBHOOKREFUSALS},
        description=" ".join(filter(None, (_WEBHOOK_AUTH_NOTE.get(provider), _ONCE))),
        security=_WEBHOOK_SECURITY.get(provider, []),
        requestBody={"required": True, "content": {JSON: {"schema": body}}},
    )
    kind = {"name": "kind", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "Any last segment, e.g. Infobip's separate receive and event URLs "
            "(`receive`, `event`): every URL takes every event."}
    with_kind = {**post, "operationId": f"{provider}WebhookKind", "parameters": [kind]}
    base = f"{webhook_path}/{provider}"
    return {base: {"post": post}, base + "/{kind}": {"post": with_kind}}


def openapi_document(
    providers: Sequence[str] = PROVIDERS,
    *,
    webhook_path: str = DEFAULT_WEBHOOK_PATH,
    metrics_public: bool = False,
    outbound_flows: Sequence[str] | None = None,
) -> Schema:
    """The description of an app serving ``providers``' webhooks under ``webhook_path`` (the published
    document: both providers, the default path, any flow name); ``outbound_flows``: the flows a served
    app starts calls with."""
    paths: Schema = {}
    for provider in providers:
        paths.update(_webhook_routes(provider, webhook_path))
    for path, get in {**_open_routes(metrics_public), **_guarded_routes(), **_dashboard_pages()}.items():
        paths[path] = {"get": get, "head": _head(get)}
    for path, item in _dashboard_sign_in().items():
        paths[path] = {**paths.get(path, {}), **item}
    for path, operations in control_paths({"401": _UNAUTHORIZED, "403": _NO_TOKENS}).items():
        paths.setdefault(path, {}).update(operations)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "flowengine",
            "version": __version__,
            "description": "Declarative YAML call flows on Infobip and Sinch: the platforms' webhooks in, "
            "health, metrics, an API (read sessions and flows; start outbound calls, deliver events to "
            "sessions, end them) and a dashboard out.",
        },
        "tags": [{"name": name} for name in ("webhooks", "health", "metrics", "api", "dashboard", "meta")],
        "paths": paths,
        "components": {"securitySchemes": _SECURITY_SCHEMES,
                       "schemas": {**SCHEMAS, **control_schemas(outbound_flows)}},
    }


def openapi_json(indent: int | None = 2, **options: Any) -> str:
    """``openapi_document(**options)`` as the published file's text."""
    return json.dumps(openapi_document(**options), indent=indent, ensure_ascii=False) + "\n"
