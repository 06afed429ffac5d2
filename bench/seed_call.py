"""The seed call on the wire: what the platform sends and what it is asked, recorded once from the Infobip
simulator, replayed by the whole-call benchmark's fake platform (``fake_platform.py``).

The seed scenario (``flows/two_party_conference.yaml``, scenario ``callee-answers``; the Infobip article
"Connect two calls in a conference"): the caller is answered and put in a conference, greeted, held with
music while the second party is dialled, the second party answers, the music stops, an announcement, the
caller hangs up and the conference is ended: 17 webhooks and 11 API requests.

``seed_call.json`` holds that conversation with its ids as placeholders: each request the app must send
(method, path, exact body bytes) with the simulator's answer, and each webhook with ``after``, the number
of requests the app must have sent before the platform lets it out (a webhook's time on the platform's
clock is not before those requests; the caller's hang-up, at 45 s, comes after the announcement's).
``python -m bench.seed_call`` records it again from the simulator; ``tests/unit/test_bench_seed_call.py``
checks the file still matches what the simulator and the engine do.

Importing this module needs no flowengine (the fake platform runs it); recording does.
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RECORDING = HERE / "flows" / "seed_call.json"
FLOW = HERE.parent / "flows" / "two_party_conference.yaml"
SCENARIO = "callee-answers"
PROVIDER = "infobip"
API_KEY = "bench-api-key"
CONFIGURATION = "flowengine-bench"
# Placeholders in the recording; each call gets its own values (same lengths as the real ones).
CALLER, ROOM, CALLEE, SESSION = "@CALLER@", "@ROOM@", "@CALLEE@", "@SESSION@"
API_URL, TIMESTAMP, CONFIG_ID = "@API_URL@", "@TIMESTAMP@", "@CONFIG@"


@dataclass(frozen=True)
class CallIds:
    """One call's ids. ``session`` is the engine's session id for the caller's call (a hash of it, so
    a hand-written app can derive the same conference name and correlation key)."""

    caller: str
    room: str
    callee: str

    @property
    def session(self) -> str:
        return session_id(self.caller)

    @classmethod
    def make(cls, nonce: int, n: int) -> CallIds:
        """Distinct per (nonce, n), shaped like the platform's UUIDs."""
        def one(role: int) -> str:
            return str(uuid.UUID(int=(nonce << 64) | (n << 2) | role, version=4))
        return cls(one(0), one(1), one(2))

    def fill(self, text: str) -> str:
        return (text.replace(CALLER, self.caller).replace(ROOM, self.room).replace(CALLEE, self.callee)
                .replace(SESSION, self.session))


def session_id(call_id: str) -> str:
    """The engine's session id for an inbound call (``Service.session_id_for``), derived the same way."""
    return "s-" + hashlib.sha256(f"{PROVIDER}:{call_id}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Conversation:
    """The recording: ``requests`` (method, path, body, status, answer) and ``webhooks`` (body, after)
    as templates."""

    requests: tuple[Mapping[str, Any], ...]
    webhooks: tuple[Mapping[str, Any], ...]

    @classmethod
    def load(cls, path: Path = RECORDING) -> Conversation:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return cls(tuple(doc["requests"]), tuple(doc["webhooks"]))

    def to_json(self) -> str:
        def lines(items: Sequence[Mapping[str, Any]]) -> str:
            return ",\n".join("    " + json.dumps(item, ensure_ascii=False) for item in items)
        return (f'{{\n  "scenario": "{SCENARIO}",\n  "requests": [\n{lines(self.requests)}\n  ],\n'
                f'  "webhooks": [\n{lines(self.webhooks)}\n  ]\n}}\n')


def iso_now() -> str:
    """Infobip's timestamp format, for now: webhooks older than the engine's window are refused."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# -- recording ---------------------------------------------------------------------------------------
def record() -> Conversation:
    """Play the seed scenario on the Infobip simulator against the engine and return what went over the
    wire, ids made placeholders."""
    import asyncio

    return asyncio.run(_record())


async def _record() -> Conversation:
    from aiohttp import web
    from aiohttp.typedefs import Handler

    from flowengine.config import ServiceConfig
    from flowengine.runtime.clock import VirtualClock
    from flowengine.scenarios.model import load_scenarios
    from flowengine.scenarios.runner import play
    from flowengine.scenarios.stack import Stack, provider_settings, webhook_auth
    from flowengine.server.app import create_app
    from flowengine.server.serving import serving
    from flowengine.simulator.serve import build_simulator

    scenario = load_scenarios(FLOW)[SCENARIO]
    answers: list[tuple[bytes, str]] = []

    @web.middleware
    async def keep_answers(request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        response = await handler(request)
        if not request.path.startswith("/_simulator/") and isinstance(response, web.Response):
            body = response.body if isinstance(response.body, bytes) else b""
            answers.append((raw, body.decode()))
        return response

    # running_stack's wiring, with the answers kept (a served app's middlewares can no longer change).
    clock = VirtualClock()
    clock.start()
    simulator = build_simulator(PROVIDER, clock, "http://127.0.0.1:9/not-yet", parties=scenario.parties,
                                **webhook_auth(PROVIDER))
    simulator.app.middlewares.insert(0, keep_answers)
    try:
        async with serving(simulator.app) as api_url:
            simulator.api_base_url = api_url
            config = ServiceConfig(provider=PROVIDER, port=0, store="memory://", default_flow=FLOW,
                                   provider_settings=provider_settings(simulator, api_url))
            app = create_app(config, clock=clock, timer_poll=None)
            async with serving(app) as engine_url:
                simulator.webhook_url = f"{engine_url}{config.webhook_path}/{PROVIDER}"
                result = await play(Stack(PROVIDER, clock, simulator, app, engine_url, api_url), scenario)
    finally:
        await simulator.close()
        await clock.stop()
    if not result.passed:
        raise RuntimeError(f"the seed scenario failed on the simulator: {result.failures}")
    return _templated(result.requests, answers, result.webhooks, api_url, result.session["id"])


def _templated(requests: list[dict[str, Any]], answers: list[tuple[bytes, str]],
               webhooks: list[dict[str, Any]], api_url: str, session: str) -> Conversation:
    by_role = _roles(webhooks)
    configuration = str(webhooks[0]["body"]["callsConfigurationId"])

    def template(text: str) -> str:
        for real, placeholder in ((api_url, API_URL), (session, SESSION), (configuration, CONFIG_ID),
                                  *by_role.items()):
            text = text.replace(real, placeholder)
        return text

    recorded = []
    for request, (raw, answer) in zip(requests, answers, strict=True):
        recorded.append({"method": request["method"], "path": template(request["path"]),
                         "body": template(raw.decode()), "status": request["status"],
                         "answer": template(answer)})
    times = [round(request["at"], 3) for request in requests]
    hooks = []
    for event in webhooks:
        body = dict(event["body"])
        at = datetime.fromisoformat(body["timestamp"]).timestamp()
        body["timestamp"] = TIMESTAMP
        raw = json.dumps(body, separators=(",", ":"))  # as the simulator sends it
        hooks.append({"type": body["type"], "after": sum(1 for t in times if t <= round(at, 3)),
                      "body": template(raw)})
    return Conversation(tuple(recorded), tuple(hooks))


def _roles(webhooks: list[dict[str, Any]]) -> dict[str, str]:
    """Real id -> placeholder: the first call is the caller, the first conference the room, the other
    call the callee."""
    calls = list(dict.fromkeys(e["body"]["callId"] for e in webhooks if e["body"].get("callId")))
    rooms = list(dict.fromkeys(e["body"]["conferenceId"] for e in webhooks if e["body"].get("conferenceId")))
    if len(calls) != 2 or len(rooms) != 1:
        raise RuntimeError(f"expected 2 calls and 1 conference in the seed call, got {calls} and {rooms}")
    return {calls[0]: CALLER, rooms[0]: ROOM, calls[1]: CALLEE}


def pairs(conversation: Conversation) -> Iterator[tuple[str, str]]:
    """(method, path) of each request, for messages."""
    for request in conversation.requests:
        yield request["method"], request["path"]


def main() -> int:
    conversation = record()
    RECORDING.write_text(conversation.to_json(), encoding="utf-8")
    print(f"recorded {len(conversation.requests)} requests and {len(conversation.webhooks)} webhooks "
          f"to {RECORDING}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
