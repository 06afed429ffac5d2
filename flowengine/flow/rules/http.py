"""Rules about the ``http`` action: headers that are literal text whose secrets come from the environment
(``${VAR}``), one body at a time, and no credential written into the flow.

A header value is never rendered, so a template there is an error; so is a reference to one of the
service's own variables (the client refuses to send those). A literal value that looks like a credential
(an ``Authorization`` value, a bearer or basic token, a long random-looking string, any value of a
header named like a secret) is a warning: it works, but it is a secret in a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from flowengine.flow.diagnostics import Diagnostic, quote
from flowengine.flow.expressions import has_template
from flowengine.flow.rules.context import Rule, RuleContext
from flowengine.flow.rules.sites import ActionSite
from flowengine.flow.vocabulary import ENV_REFERENCE, HTTP_PROTECTED_ENV
from flowengine.redaction import redact

# Header names whose value is a credential whatever it looks like.
_SECRET_NAME = re.compile(r"(?i)(auth|token|secret|passw|api[-_]?key|cookie|signature|credential)")
# A long run of letters and digits (with the usual token punctuation) mixing both: a key, not a word.
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_\-+/=.]{24,}")


def _http_sites(ctx: RuleContext) -> Iterator[tuple[ActionSite, Mapping[str, Any]]]:
    for site in ctx.actions:
        if site.action.name == "http" and isinstance(site.action.params, Mapping):
            yield site, site.action.params


def header_values(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[action-params] header values are literal text: no templates, none of the service's variables;
    and a request has one body, ``body`` or ``form``."""
    for site, params in _http_sites(ctx):
        path = (*site.path, "http")
        if params.get("body") is not None and params.get("form") is not None:
            yield ctx.at_key((*path, "form"), "give the request a JSON `body` or a `form`, not both",
                             "action-params")
        headers = params.get("headers")
        if not isinstance(headers, Mapping):
            continue
        for name, value in headers.items():
            if not isinstance(value, str):
                continue
            where = (*path, "headers", name)
            if has_template(value):
                yield ctx.at_value(
                    where, f"header {quote(str(name))}: header values are literal text, never templates; "
                    "write a secret as ${VAR} (filled from the service's environment)", "action-params")
            for match in ENV_REFERENCE.finditer(value):
                if match["name"].startswith(HTTP_PROTECTED_ENV):
                    yield ctx.at_value(
                        where, f"header {quote(str(name))}: ${{{match['name']}}} is one of the service's own "
                        "variables (INFOBIP_*, SINCH_*, FLOWENGINE_*), which are never sent", "action-params")


def literal_secrets(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[http-secret] no credential written into the flow: header values and URLs (warning)."""
    for site, params in _http_sites(ctx):
        path = (*site.path, "http")
        headers = params.get("headers")
        for name, value in (headers.items() if isinstance(headers, Mapping) else ()):
            if isinstance(value, str) and _secret_looking(str(name), value):
                yield ctx.at_value(
                    (*path, "headers", name),
                    f"header {quote(str(name))} holds what looks like a secret written into the flow: put "
                    "it in an environment variable and write ${VAR} instead", "http-secret", "warning")
        url = params.get("url")
        if isinstance(url, str) and _url_secret(url):
            yield ctx.at_value(
                (*path, "url"), "the URL holds what looks like a credential (a password or a secret query "
                "value): send it in a header from ${VAR} instead", "http-secret", "warning")


def _secret_looking(name: str, value: str) -> bool:
    literal = ENV_REFERENCE.sub("", value).strip()
    if not literal or has_template(literal):
        return False
    if _SECRET_NAME.search(name):
        # The scheme word alone ("Bearer " before a ${VAR}) is no secret.
        return bool(re.sub(r"^(?i:bearer|basic|token|app|application)\s*", "", literal))
    if redact(f"{name}: {value}") != f"{name}: {value}":
        return True
    return any(re.search(r"[A-Za-z]", t) and re.search(r"\d", t) for t in _TOKEN_LIKE.findall(literal))


def _url_secret(url: str) -> bool:
    if has_template(url):
        url = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", "x", url, flags=re.DOTALL)
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return False
    if password:
        return True
    pairs = parse_qsl(parts.query, keep_blank_values=False)
    return any(redact(f"{key}={value}") != f"{key}={value}" for key, value in pairs if value != "x")


RULES: tuple[Rule, ...] = (header_values, literal_secrets)
