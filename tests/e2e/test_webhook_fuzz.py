"""Hypothesis against every webhook route of both providers, over real HTTP: the engine (sessions in a
SQLite file) and the platform's simulator served on 127.0.0.1 (``running_stack``) from a thread of their
own, the fuzzed requests sent from the test's thread with the standard library's client. Bodies are
events shaped like the platform's with any JSON where the fields go (wrong types, missing fields, lone
surrogates, lists of events), raw bytes, truncated, oversized or deeply nested bodies. Each is
authenticated as the platform would (so it reaches the parser) unless the fuzzer spoils that too.

Whatever arrives, the answer is below 500, each refusal is logged once, on one line (``webhook
refused``), and nothing is logged with a traceback. Bounded: ``EXAMPLES`` requests per provider,
derandomized so ``make test`` sees the same run every time (``FUZZ_SEED=n`` picks another,
``FUZZ_EXAMPLES=n`` a longer run)."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from flowengine.providers.infobip.webhooks import HANDLERS as INFOBIP_HANDLERS
from flowengine.providers.sinch.callbacks import HANDLERS as SINCH_HANDLERS
from flowengine.scenarios.stack import Stack, running_stack

from .sender import authenticated, headers

FLOW = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))  # per provider
GUARD = 30.0  # seconds any one request or start-up may take before the test gives up

# -- what the bodies are made of -------------------------------------------------------------------
TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=10)
SURROGATES = st.sampled_from(["\ud800", "a\udfff", "\udc00\ud800", "\ud83d"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                    TEXT)
INFOBIP_KEYS = [
    "call", "id", "from", "to", "endpoint", "phoneNumber", "identity", "callLog", "callId", "errorCode",
    "name", "hangupSource", "state", "duration", "participant", "reason", "conference", "recording",
    "files", "composedFiles", "fileId", "playedCompletely", "capturedDtmf", "dtmf", "timeout",
    "actionType", "errorDetails",
]
SINCH_KEYS = [
    "endpoint", "type", "status", "value", "menuId", "inputMethod", "amd", "result", "reason", "duration",
    "destination", "conferenceId", "flowengine", "conference", "key",
]


def values(keys: list[str]) -> st.SearchStrategy[Any]:
    """Any JSON, whose objects mostly use the platform's own field names."""
    names = st.one_of(st.sampled_from(keys), TEXT)
    return st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(names, inner, max_size=5), max_leaves=16)


HOSTILE_IDS = st.one_of(SURROGATES, SCALARS)


def usually(plausible: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly what the platform sends, sometimes anything at all (a wrong type, a lone surrogate)."""
    return st.one_of(plausible, plausible, plausible, hostile)


def infobip_event(hostile: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    kinds = [*INFOBIP_HANDLERS, "CALL_RINGING", "MACHINE_DETECTION_FINISHED"]
    anything = SCALARS if hostile else st.nothing()
    call_id = usually(st.sampled_from(["call-1", "call-2"]), HOSTILE_IDS if hostile else st.nothing())
    return st.fixed_dictionaries(
        {"type": usually(st.sampled_from(kinds), anything), "callId": call_id},
        optional={
            "conferenceId": usually(st.just("conf-1"), anything),
            "timestamp": usually(st.just("2026-01-01T00:00:01.000+00:00"), anything),
            "properties": values(INFOBIP_KEYS),
        },
    )


def sinch_callback(hostile: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    anything = SCALARS if hostile else st.nothing()
    tag = st.builds(lambda c, k: json.dumps({"flowengine": {"conference": c, "key": k}}),
                    usually(st.just("conf-1"), anything), usually(st.just("key-1"), anything))
    deep_tag = st.integers(30, 3000).map(lambda n: '{"flowengine":' + "[" * n + "]" * n + "}")
    return st.fixed_dictionaries(
        {"event": usually(st.sampled_from([*SINCH_HANDLERS, "ICE", "unknown"]), anything),
         "callid": usually(st.sampled_from(["call-1", "call-2"]), HOSTILE_IDS if hostile else st.nothing())},
        optional={
            "callId": usually(st.just("call-3"), HOSTILE_IDS if hostile else st.nothing()),
            "custom": st.one_of(tag, deep_tag if hostile else tag, anything),
            "timestamp": usually(st.just("2026-01-01T00:00:01Z"), anything),
            "to": values(SINCH_KEYS), "amd": values(SINCH_KEYS), "menuResult": values(SINCH_KEYS),
            "cli": usually(st.just("447700900001"), anything),
            "result": usually(st.sampled_from(["ANSWERED", "NOANSWER", "BUSY", "FAILED"]), anything),
            "reason": usually(st.sampled_from(["CALLERHANGUP", "MANAGERHANGUP", "TIMEOUT"]), anything),
            "type": usually(st.just("recording_finished"), anything),
            "destination": SCALARS, "duration": SCALARS,
        },
    )


def encoded(value: Any) -> bytes:
    return json.dumps(value).encode()  # ensure_ascii: a lone surrogate travels as its \\u escape


Strategy = st.SearchStrategy


def bodies(event: Strategy[dict[str, Any]], plausible: Strategy[bytes]) -> Strategy[bytes]:
    one = event.map(encoded)
    deep = st.integers(20, 4000).map(lambda n: b"[" * n + b"]" * n)
    deep_inside = st.tuples(event, st.integers(20, 1500)).map(
        lambda pair: encoded(pair[0])[:-1] + b', "x": ' + b"[" * pair[1] + b"]" * pair[1] + b"}")
    truncated = st.tuples(one, st.integers(0, 200)).map(lambda pair: pair[0][: pair[1]])
    raw = st.binary(max_size=200)
    nonstandard = st.sampled_from([b'{"type": NaN}', b'{"event": "ice", "callid": 1e999}', b"\xef\xbb\xbf{}",
                                   b'{"callId": "\xed\xa0\x80"}', b"1" * 5000, b'"\\' * 2000])
    oversized = st.integers(262_145, 270_000).map(lambda n: b'{"type": "x", "pad": "' + b"x" * n + b'"}')
    return st.one_of(one, one, one, one, plausible, plausible,
                     deep, deep_inside, truncated, raw, nonstandard, oversized)


# -- the engine, served from a thread of its own -----------------------------------------------------
@dataclass
class Served:
    provider: str
    store: str
    stack: Stack | None = None
    loop: asyncio.AbstractEventLoop | None = None
    host: str = ""
    port: int = 0
    answers: Counter[int] = field(default_factory=Counter)  # by the webhook routes
    unrouted: int = 0
    _stop: asyncio.Event | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        credentials = authenticated(self.provider)
        async with running_stack(self.provider, FLOW, store=self.store, **credentials) as stack:
            self.stack, self.loop, self._stop = stack, asyncio.get_running_loop(), asyncio.Event()
            self.host, port = stack.engine_url.removeprefix("http://").split(":")
            self.port = int(port)
            self._ready.set()
            await self._stop.wait()

    def stop(self) -> None:
        assert self.loop is not None and self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)

    def post(self, connection: http.client.HTTPConnection, path: str, body: bytes, spoil: bool) -> int:
        assert self.stack is not None
        connection.request("POST", path, body=body, headers=headers(self.stack, path, body, spoil=spoil))
        response = connection.getresponse()
        response.read()
        if response.status == 404 and response.getheader("Content-Type") != "application/json":
            self.unrouted += 1  # aiohttp's router: the path is none of the webhook routes
        else:
            self.answers[response.status] += 1
        return response.status


@pytest.fixture(scope="module", params=["infobip", "sinch"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = Served(request.param, f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'sessions.db'}")
    thread = threading.Thread(target=served.run, name=f"engine-{request.param}", daemon=True)
    thread.start()
    assert served._ready.wait(GUARD), "the engine did not start"
    try:
        yield served
    finally:
        served.stop()
        thread.join(GUARD)
        assert not thread.is_alive()


def routes(provider: str) -> st.SearchStrategy[str]:
    anything = st.text(st.characters(codec="utf-8"), max_size=12)
    kinds = usually(st.sampled_from(["events", "receive", "ice"]), anything)
    return st.one_of(st.just(f"/webhooks/{provider}"),
                     kinds.map(lambda kind: f"/webhooks/{provider}/{quote(kind, safe='')}"))


def test_no_fuzzed_webhook_gets_a_5xx(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    if served.provider == "infobip":  # a body may be a list: up to past webhook.max_events (10)
        event = infobip_event()
        plausible = st.lists(infobip_event(hostile=False), max_size=14).map(encoded)
    else:
        event = sinch_callback()
        plausible = sinch_callback(hostile=False).map(encoded)
    spoiled = st.sampled_from([False] * 9 + [True])  # credentials wrong one time in ten
    connection = http.client.HTTPConnection(served.host, served.port, timeout=GUARD)

    @seed(int(os.environ.get("FUZZ_SEED", "11")))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize="FUZZ_SEED" not in os.environ,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(path=routes(served.provider), body=bodies(event, plausible), spoil=spoiled)
    def one(path: str, body: bytes, spoil: bool) -> None:
        status = served.post(connection, path, body, spoil)
        assert status < 500, (status, path, body[:300])

    try:
        one()
    finally:
        connection.close()
    answers = served.answers
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("webhook refused:")]
    reasons = Counter(re.sub(r" \(POST .*|: .*", "", line.split(" ", 3)[3]) for line in refused)
    print(f"\n{served.provider}: {sum(answers.values()) + served.unrouted} fuzzed webhooks, answers "
          f"{dict(sorted(answers.items()))}, {served.unrouted} paths no route takes; refused:")
    print("\n".join(f"  {n:5d} {reason}" for reason, n in reasons.most_common()))
    assert sum(answers.values()) + served.unrouted >= EXAMPLES
    assert not [status for status in answers if status >= 500]
    assert {200, 400, 401, 413} <= set(answers)  # the fuzzer got past every check, and into the engine
    assert len(refused) == sum(n for status, n in answers.items() if status != 200)  # once each
    assert all("\n" not in line for line in refused)  # one line each, whatever the path held
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
