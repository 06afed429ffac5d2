"""Schemathesis against the service's own ``/openapi.json``: the engine (real app, SQLite file store) and
the provider's simulator serve on 127.0.0.1 from a thread of their own, while schemathesis' engine, which
is synchronous, generates requests from the document and checks every answer.

Both run on a clock ``SPEED`` times faster than the wall clock (the simulator's ``ScaledClock``): only
waits are shortened, such as the 2 s an unknown call's answered event waits for its session before the
call is taken for an orphan, which would otherwise make a fuzzed Sinch ACE take 2 s.

Webhooks are authenticated the way the provider would (Infobip Basic, Sinch Basic key:secret), with the
credentials handed to schemathesis per security scheme, so generated events reach the parsers and flows
instead of stopping at 401. The bearer token is handed over the same way for the read routes.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import schemathesis
from schemathesis.engine import Status, events, from_schema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from flowengine.config import ServiceConfig
from flowengine.scenarios.stack import provider_settings
from flowengine.server.app import create_app
from flowengine.server.serving import serving
from flowengine.simulator.clock import ScaledClock
from flowengine.simulator.serve import build_simulator

FLOW = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"
# An outbound flow too, so the served description names a flow POST /api/calls can start, and generated
# requests reach the start (and the platform's dial), not only the refusals.
OUTBOUND_FLOW = Path(__file__).resolve().parents[2] / "tests" / "testdata" / "outbound" / "reminder.yaml"
API_TOKEN = "fuzz-token-0123456789abcdef"  # opens the read routes (`api_tokens`)
WEBHOOK_USER, WEBHOOK_PASSWORD = "platform", "fuzz-password"
SPEED = 20.0
START_TIMEOUT = 15.0  # seconds the served stack may take to come up (or to close)
CHECKS = ("not_a_server_error", "documented_status", "content_type_conformance",
          "response_schema_conformance")


def _webhook_auth(provider: str, simulator: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """(the adapter's settings that turn webhook auth on, schemathesis' credentials per scheme)."""
    if provider == "infobip":
        settings = {"webhook_user": WEBHOOK_USER, "webhook_password": WEBHOOK_PASSWORD}
        return settings, {"infobipBasic": {"username": WEBHOOK_USER, "password": WEBHOOK_PASSWORD}}
    key, secret = simulator.application_key, simulator.application_secret
    return {"callback_auth": "basic"}, {"sinchBasic": {"username": key, "password": secret}}


@dataclass
class Served:
    provider: str
    base_url: str = ""
    credentials: dict[str, Any] = field(default_factory=dict)


@contextmanager
def served(provider: str, workdir: Path, store: str | None = None) -> Iterator[Served]:
    """The provider's simulator and the engine, on a thread's event loop, for as long as the block runs;
    ``store`` defaults to a SQLite file in ``workdir``."""
    target = Served(provider)
    workdir.mkdir(parents=True, exist_ok=True)
    ready, failed = threading.Event(), []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def run() -> None:
        clock = ScaledClock(SPEED)
        simulator = build_simulator(provider, clock, "http://127.0.0.1:9/not-yet")
        try:
            async with serving(simulator.app) as simulator_url:
                simulator.api_base_url = simulator_url
                settings, target.credentials = _webhook_auth(provider, simulator)
                config = ServiceConfig(
                    provider=provider, port=0, default_flow=FLOW, flows=(OUTBOUND_FLOW,),
                    api_tokens=(API_TOKEN,),
                    store=store or f"sqlite:///{workdir / 'fuzz.db'}",
                    provider_settings={**provider_settings(simulator, simulator_url), **settings},
                )
                async with serving(create_app(config, clock=clock)) as engine_url:
                    target.base_url = engine_url
                    ready.set()
                    await stop.wait()
        finally:
            await simulator.close()

    def thread_main() -> None:
        try:
            loop.run_until_complete(run())
        except BaseException as exc:  # reported to the waiting side, which raises it
            failed.append(exc)
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=thread_main, name=f"served-{provider}", daemon=True)
    thread.start()
    if not ready.wait(START_TIMEOUT) or failed:
        raise RuntimeError(f"the {provider} stack did not start: {failed[:1]}")
    try:
        yield target
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(START_TIMEOUT)


@dataclass
class Tally:
    """What a run sent and got: answers by status class and by operation, failures with a reproduction."""

    sent: int = 0
    classes: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)  # (operation, check) -> example
    errors: list[str] = field(default_factory=list)

    def add_answer(self, label: str, status: int) -> None:
        self.sent += 1
        self.classes[f"{status // 100}xx"] += 1
        self.statuses[(label, status)] += 1

    def server_errors(self) -> list[str]:
        return [f"{op}: {example}" for (op, check), example in self.failures.items()
                if check == "not_a_server_error"]

    def summary(self) -> str:
        classes = ", ".join(f"{name} {count}" for name, count in sorted(self.classes.items()))
        return f"{self.sent} requests: {classes or 'no answers'}"


PHASES = ("examples", "coverage", "fuzzing", "stateful")
# Sinch's 200 holds SVAML after an ICE, ACE or PIE and nothing after other callbacks; OpenAPI cannot make a
# response's body depend on the request, so those operations check their answers with ``svaml_or_empty``.
_BODY_CHECKS = ("content_type_conformance", "response_schema_conformance")


@schemathesis.check
def documented_status(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                      case: schemathesis.Case) -> bool | None:
    """schemathesis' ``status_code_conformance``, less the 417 aiohttp answers, before any route runs, to
    an ``Expect`` header it cannot meet (negative data adds random headers): no route's answer."""
    if response.status_code == 417 and "expect" in {name.lower() for name in case.headers or {}}:
        return None
    return status_code_conformance(ctx, response, case)


@schemathesis.check
def svaml_or_empty(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                   case: schemathesis.Case) -> bool | None:
    """A Sinch callback's answer: empty, or as documented (content type and schema)."""
    if response.status_code == 200 and not response.content and "content-type" not in response.headers:
        return None
    for check in (content_type_conformance, response_schema_conformance):
        check(ctx, response, case)
    return None


@dataclass(frozen=True)
class Plan:
    """How much to send: examples per operation (positive and negative data), and schemathesis' phases
    (``coverage`` sends each schema's boundary and invalid values: thousands of webhooks)."""

    max_examples: int
    phases: tuple[str, ...] = PHASES
    checks: tuple[str, ...] = CHECKS
    seed: int = 0


def _config(plan: Plan, credentials: dict[str, Any]) -> Any:
    return schemathesis.Config.from_dict({
        "seed": plan.seed,
        "workers": 1,
        "request-timeout": 10,
        # No example database: a run replays nothing an earlier one saved, so the same seed sends the same
        # requests on every machine (with one, what a run found shifted what later runs generated).
        "generation": {"max-examples": plan.max_examples, "mode": "all", "database": "none"},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in plan.checks}},
        "phases": {name: {"enabled": name in plan.phases} for name in PHASES},
        "auth": {"openapi": {"apiToken": {"bearer": API_TOKEN}, **credentials}},
        "operations": [{
            "include-path-regex": "^/webhooks/sinch",
            "checks": {**{name: {"enabled": False} for name in _BODY_CHECKS},
                       "svaml_or_empty": {"enabled": any(name in plan.checks for name in _BODY_CHECKS)}},
        }],
    })


def fuzz(target: Served, plan: Plan) -> Tally:
    """One schemathesis run over every operation of the served document."""
    config = _config(plan, target.credentials)
    schema = schemathesis.openapi.from_url(f"{target.base_url}/openapi.json", config=config)
    tally = Tally()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            _record(tally, event)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            tally.errors.append(repr(getattr(event, "value", getattr(event, "exception", event))))
    return tally


def _record(tally: Tally, event: Any) -> None:
    recorder = event.recorder
    for interaction in recorder.interactions.values():
        if interaction.response is not None:
            tally.add_answer(recorder.label, interaction.response.status_code)
    for checks in recorder.checks.values():
        for check in checks:
            if check.status == Status.FAILURE and check.failure_info is not None:
                key = (recorder.label, check.name)
                tally.failures.setdefault(key, check.failure_info.code_sample)
