"""``flowengine call``: start an outbound flow's session on a running service (``POST /api/calls``)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import click

from flowengine.cli._common import EXIT_FATAL, EXIT_OK, EXIT_PROBLEMS

DEFAULT_URL = "http://127.0.0.1:8080"
TOKEN_ENV = "FLOWENGINE_API_TOKEN"
URL_ENV = "FLOWENGINE_URL"
REQUEST_TIMEOUT = 30.0  # seconds one request may take (the start waits for the platform's answer)
POLL = 0.5  # seconds between two looks at a session being waited for


@dataclass
class Refused(Exception):
    """The service answered, and not with success: its status and its reason."""

    status: int
    reason: str


@click.command("call")
@click.argument("flow")
@click.option("--to", "to", required=True, help="Number to dial, in international format (447700900001).")
@click.option("--from", "from_", help="Caller id (default: the flow's, else the provider's).")
@click.option("--var", "var_items", multiple=True, metavar="NAME=VALUE",
              help="A flow variable, read as its declared type (repeatable).")
@click.option("--idempotency-key", help="Retrying with the same key never starts a second call.")
@click.option("--url", default=lambda: os.environ.get(URL_ENV, DEFAULT_URL),
              show_default=f"${URL_ENV} or {DEFAULT_URL}", help="The service's base URL.")
@click.option("--token-env", default=TOKEN_ENV, show_default=True, metavar="VAR",
              help="Environment variable holding the API token.")
@click.option("--token", help="The API token itself (others on this machine can see it: prefer --token-env).")
@click.option("--wait", is_flag=True, help="Wait until the session is over; exit 1 if it failed.")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds --wait waits at most.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(
    flow: str, to: str, from_: str | None, var_items: tuple[str, ...], idempotency_key: str | None, url: str,
    token_env: str, token: str | None, wait: bool, timeout: float, fmt: str,
) -> None:
    """Start an outbound flow's session on a running service: it dials TO and the
    flow begins when the call is answered or fails.

    \b
    Examples:
      export FLOWENGINE_API_TOKEN=...        # one of the service's api_tokens
      flowengine call reminder --to 447700900001 --var name=Ada --var slot=9:30
      flowengine call reminder --to 447700900001 --idempotency-key job-42 --wait

    Variables are checked against the flow's declared ones (names and types) by
    the service before anything is dialled.

    Exit codes: 0 started (with --wait: ended), 1 refused by the service (or,
    with --wait, the session failed or did not end in time), 2 usage error,
    3 the service could not be reached.
    """
    secret = token or os.environ.get(token_env)
    if not secret:
        raise click.UsageError(f"no API token: set {token_env} to one of the service's api_tokens")
    items = _pairs(var_items)
    import aiohttp  # only this subcommand needs an HTTP client

    try:
        answer = asyncio.run(_start(url.rstrip("/"), secret, flow, to, from_, items, idempotency_key,
                                    wait, timeout))
    except Refused as refused:
        click.echo(f"refused ({refused.status}): {refused.reason}", err=True)
        sys.exit(EXIT_PROBLEMS)
    except (TimeoutError, OSError, aiohttp.ClientError) as exc:
        click.echo(f"cannot reach the service at {url}: {exc or type(exc).__name__}", err=True)
        sys.exit(EXIT_FATAL)
    final = answer.get("final")
    _report(answer, url.rstrip("/"), fmt)
    sys.exit(EXIT_PROBLEMS if wait and (final is None or final.get("status") != "ended") else EXIT_OK)


def _pairs(items: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.UsageError(f"--var wants NAME=VALUE, not {item!r}")
        pairs[name] = value
    return pairs


async def _start(url: str, token: str, flow: str, to: str, from_: str | None, items: dict[str, str],
                 key: str | None, wait: bool, timeout: float) -> dict[str, Any]:
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"}
    limits = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(headers=headers, timeout=limits) as http:
        body: dict[str, Any] = {"flow": flow, "to": to, "vars": await _typed(http, url, flow, items)}
        body.update({k: v for k, v in (("from", from_), ("idempotency_key", key)) if v is not None})
        answer = await _request(http, "POST", f"{url}/api/calls", body)
        if wait:
            answer["final"] = await _until_over(http, url, str(answer["id"]), timeout)
        return answer


async def _typed(http: Any, url: str, flow: str, items: dict[str, str]) -> dict[str, Any]:
    """``--var`` values read as the flow's declared types (the service lists them); a name the flow does
    not declare is sent as text, for the service to refuse with its reason."""
    from flowengine.flow.variables import parse_text

    if not items:
        return {}
    flows = (await _request(http, "GET", f"{url}/api/flows")).get("flows", [])
    types: dict[str, str] = next((f.get("vars", {}) for f in flows if f.get("name") == flow), {})
    typed: dict[str, Any] = {}
    for name, text in items.items():
        try:
            typed[name] = parse_text(types[name], text) if name in types else text
        except ValueError as exc:
            raise click.UsageError(f"--var {name}: {exc}") from None
    return typed


async def _request(http: Any, method: str, url: str, body: Any = None) -> dict[str, Any]:
    async with http.request(method, url, json=body) as response:
        text = await response.text()
        try:
            doc = json.loads(text) if text else {}
        except ValueError:
            doc = {"error": text[:200]}
        if response.status >= 400:
            raise Refused(response.status, str(doc.get("error") if isinstance(doc, dict) else doc))
        return doc if isinstance(doc, dict) else {}


async def _until_over(http: Any, url: str, session_id: str, timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session = await _request(http, "GET", f"{url}/api/sessions/{session_id}")
        if session.get("status") in ("ended", "failed"):
            return session
        await asyncio.sleep(POLL)
    return None


def _report(answer: dict[str, Any], url: str, fmt: str) -> None:
    waited = "final" in answer
    final = answer.pop("final", None)
    if fmt == "json":
        click.echo(json.dumps({**answer, **({"final": final} if final is not None else {})}, indent=2))
        return
    again = " (the same request was made before: nothing dialled again)" if answer.get("replayed") else ""
    click.echo(f"session {answer['id']} of {answer['flow']}: {answer['status']}{again}")
    click.echo(f"  {url}{answer['url']}")
    if final is not None:
        click.echo(f"  over: {final['status']} in state {final['state']}")
    elif waited:
        click.echo("  not over within --timeout")
