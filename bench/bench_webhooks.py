"""Webhook throughput of the running service, against a bare aiohttp JSON handler measured in the same run.

The engine is the production app (``create_app`` with the real clock) serving ``bench/flows/echo.yaml``
on 127.0.0.1 in this process; the Infobip simulator, in a process of its own (``simulator_process.py``),
plays the platform. ``SESSIONS`` inbound calls are placed through the simulator and answered by the flow,
which parks each in ``listening``. Then ``loadgen.py``, in another process, POSTs Infobip webhooks for those
calls at a fixed concurrency, ``EVENTS_PER_SESSION`` per call at most, so traces stay call-sized:

* no command: ``SAY_FINISHED``, which ``listening`` handles with an internal transition whose only action
  is a pure ``set``. It takes the whole path (parse, session lookup, lock, load, ``Engine.handle``,
  executor, save, timer upkeep) and sends nothing: a matched transition rather than an ignored event
  type, so the figure cannot flatter the engine by skipping work it does for real events.
* one command: ``DTMF_CAPTURED``, echoed back with ``send_dtmf``: exactly one REST call to the simulator,
  which emits no event in return (a ``say`` would send ``SAY_FINISHED`` back, loading the engine with
  events the generator does not count).

Every body is unique (its own timestamp; digits = its sequence number) so duplicate detection never
short-circuits one. Two bare handlers, served by this process like the engine and behind the same
stamping middleware, get the same bodies: one reads and parses them and answers an empty 200 as the
engine does; the other also sends the same send-dtmf through a default aiohttp client session, so
``bare_capacity_one_command_to_bare`` is the one-command goal's ceiling for anything sending commands
with aiohttp. Goals (memory store), on capacity: the engine handles >= 1/2 of the bare handler's
requests per CPU-second with no command, >= 1/3 with one command. ``*_cpu_us_per_request`` is this
process's CPU time per request and capacity is its inverse: the rate each server reaches at its limit,
whoever drives it (the aiohttp generator cannot drive the bare handler to its limit,
``bare_generator_cpu_share`` near 1; wrk can). Rate ratios are reported too; SQLite is reported as well.
Run: ``python bench/bench_webhooks.py``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bench import run_quietly
from flowengine.config import ServiceConfig
from flowengine.runtime.clock import SystemClock
from flowengine.server.app import SERVICE, create_app
from flowengine.server.service import Service
from flowengine.server.serving import serving
from flowengine.simulator.infobip import events as infobip_events

HERE = Path(__file__).resolve().parent
FLOW = HERE / "flows" / "echo.yaml"
LOADGEN = HERE / "loadgen.py"
SIMULATOR = HERE / "simulator_process.py"
SIMULATOR_CREDENTIALS = {"api_key": "secret", "calls_configuration_id": "flowengine-sim"}  # its defaults
SESSIONS = 1_000
EVENTS_PER_SESSION = 12  # per measurement: traces stay the size of a call's, not the 50-step cap
CONCURRENCY = 32
SECONDS = 4.0  # per measurement, at most; the generator also stops when it runs out of bodies
WARMUP = 300  # first answers of each measurement left out
BARE_BODIES = 60_000  # the bare handler is fast: enough bodies to keep it busy for SECONDS
GOAL_NO_COMMAND = 1 / 2
GOAL_ONE_COMMAND = 1 / 3
SEQ_HEADER = "X-Bench-Seq"
PARKED = "listening"


@dataclass(frozen=True)
class Load:
    """One measurement: the generator's figures and this (server) process's CPU time."""

    tool: str  # the generator: wrk or aiohttp
    rate: float
    total: int  # requests answered, warm-up included
    cpu_seconds: float
    generator_cpu_share: float  # near 1.0: the generator, not the server, set the rate

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_seconds / self.total * 1e6 if self.total else 0.0

    def capacity_to(self, bare: Load) -> float:
        """Requests per CPU-second, as a share of ``bare``'s: the rate ratio of the two at their limits."""
        return bare.cpu_us_per_request / self.cpu_us_per_request


@dataclass(frozen=True)
class Stack:
    service: Service
    http: aiohttp.ClientSession  # for the simulator's control API
    simulator_url: str
    webhook_url: str
    stamps: dict[str, float]  # X-Bench-Seq -> wall-clock arrival at the engine


@dataclass(frozen=True)
class Runs:
    """What one engine (one store) measured."""

    no_command: Load
    one_command: Load
    first_command_ms: list[float]  # ascending
    bare: Load | None = None
    bare_one_command: Load | None = None


# -- load ----------------------------------------------------------------------------------------------
async def measure(url: str, bodies: list[bytes], workdir: Path) -> Load:
    """Run the generator against ``url`` in a second process; the server keeps this process's loop."""
    path = workdir / "bodies.jsonl"
    path.write_bytes(b"\n".join(bodies) + b"\n")
    cpu = time.process_time()
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(LOADGEN), "--url", url, "--bodies", str(path), "--concurrency", str(CONCURRENCY),
        "--duration", str(SECONDS), "--warmup", str(WARMUP),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    cpu = time.process_time() - cpu
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed ({process.returncode}): {err.decode(errors='replace')}")
    result = json.loads(out)
    if result["non_2xx"] or result["errors"]:
        raise RuntimeError(f"{url}: {result['non_2xx']} non-2xx answers, {result['errors']} errors")
    return Load(tool=result["tool"], rate=result["rate"], total=result["requests"] + result["warmup"],
                cpu_seconds=cpu, generator_cpu_share=result["cpu_share"])


# -- the bare handlers -------------------------------------------------------------------------------
BARE_HTTP = web.AppKey("bare_http", aiohttp.ClientSession)
BARE_SIMULATOR = web.AppKey("bare_simulator", str)


async def _bare_handler(request: web.Request) -> web.Response:
    json.loads(await request.read())
    return web.Response()


async def _bare_one_command(request: web.Request) -> web.Response:
    """The engine's one-command work with no engine: the same send-dtmf to the simulator, through one
    pooled aiohttp session with default settings, answered before the webhook is."""
    event = json.loads(await request.read())
    url = f"{request.app[BARE_SIMULATOR]}/calls/1/calls/{event['callId']}/send-dtmf"
    headers = {"Authorization": f"App {SIMULATOR_CREDENTIALS['api_key']}"}
    async with request.app[BARE_HTTP].post(url, json={"dtmf": event["properties"]["dtmf"]},
                                           headers=headers) as reply:
        reply.raise_for_status()
        await reply.read()
    return web.Response()


def bare_app(stamps: dict[str, float], simulator_url: str) -> web.Application:
    """Both bare handlers behind the same stamping middleware the engine gets, so the harness costs
    each side the same."""
    app = web.Application(middlewares=[_stamp_webhooks(stamps)])
    app[BARE_SIMULATOR] = simulator_url

    async def client(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as http:
            app[BARE_HTTP] = http
            yield

    app.cleanup_ctx.append(client)
    app.router.add_post("/webhooks/infobip", _bare_handler)
    app.router.add_post("/webhooks/infobip-one-command", _bare_one_command)
    return app


# -- the engine and its platform ----------------------------------------------------------------------
def _stamp_webhooks(stamps: dict[str, float]) -> Middleware:
    @web.middleware
    async def stamp(request: web.Request, handler: Handler) -> web.StreamResponse:
        seq = request.headers.get(SEQ_HEADER)
        if seq is not None:
            stamps[seq] = time.time()
        return await handler(request)

    return stamp


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def simulator_process(port: int, webhook_url: str) -> AsyncIterator[str]:
    """The simulator in its own process (``simulator_process.py``); yields its base URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SIMULATOR), "--port", str(port), "--webhook-url", webhook_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        if line.strip() != b"ready":
            raise RuntimeError(f"the simulator process did not start (exit {process.returncode})")
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


@asynccontextmanager
async def engine_stack(store: str) -> AsyncIterator[Stack]:
    """The engine (this process) and the simulator (another) on loopback, with wall-clock time."""
    port, stamps = _free_port(), dict[str, float]()
    simulator_url = f"http://127.0.0.1:{port}"
    # Unsigned webhooks (insecure_webhooks): the generator sends each body with the same headers, and an
    # HMAC check is a few microseconds of hashing that the bare handlers would not do either.
    config = ServiceConfig(provider="infobip", port=0, store=store, default_flow=FLOW, insecure_webhooks=True,
                           provider_settings={"base_url": simulator_url, **SIMULATOR_CREDENTIALS})
    app = create_app(config, clock=SystemClock())
    app.middlewares.insert(0, _stamp_webhooks(stamps))
    async with serving(app) as engine_url, aiohttp.ClientSession() as http:
        webhook_url = f"{engine_url}{config.webhook_path}/infobip"
        async with simulator_process(port, webhook_url):
            yield Stack(app[SERVICE], http, simulator_url, webhook_url, stamps)


async def _control(stack: Stack, method: str, path: str, body: Any = None) -> Any:
    async with stack.http.request(method, f"{stack.simulator_url}/_simulator/{path}", json=body) as reply:
        reply.raise_for_status()
        return await reply.json()


async def open_sessions(stack: Stack, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Place ``count`` inbound calls and wait until the flow has parked every one in ``listening``;
    returns the calls as the simulator describes them (Infobip's call JSON)."""
    placed = [await _control(stack, "POST", "calls", {"from": f"4470{n:08d}", "to": "4592457976"})
              for n in range(count)]
    call_ids = [reply["callId"] for reply in placed]
    service, waiting = stack.service, set(call_ids)
    deadline = time.monotonic() + timeout
    while waiting:
        for call_id in list(waiting):
            record = await service.store.get(service.session_id_for(call_id))
            if record is not None and record.state == PARKED:
                waiting.discard(call_id)
        if waiting and time.monotonic() > deadline:
            raise RuntimeError(f"{len(waiting)} of {count} sessions did not reach {PARKED!r}")
        await asyncio.sleep(0.05)
    calls = await _control(stack, "GET", "calls")
    return [calls[call_id] for call_id in call_ids]


async def first_command_ms(stack: Stack, skip: int) -> list[float]:
    """Per echoed webhook: from its arrival at the engine to its send-dtmf at the simulator (whose log
    stamps a request when it has answered it), in ms, ascending; the first ``skip`` left out."""
    received = {request["body"]["dtmf"]: request["at"] for request in await _control(stack, "GET", "requests")
                if request["path"].endswith("/send-dtmf")}
    if len(received) < len(stack.stamps):
        raise RuntimeError(f"{len(stack.stamps)} DTMF webhooks but only {len(received)} commands sent")
    skip = skip if len(stack.stamps) > 2 * skip else 0  # a very slow run keeps all it has
    return sorted((received[seq] - at) * 1000 for seq, at in stack.stamps.items() if int(seq) >= skip)


def webhook_bodies(calls: list[dict[str, Any]], count: int, kind: str) -> list[bytes]:
    """``count`` unique Infobip events, round-robin over the calls so concurrent ones hit different
    sessions. ``kind`` is "no_command" (SAY_FINISHED) or "one_command" (DTMF_CAPTURED, digits = seq)."""
    base = time.time()
    bodies = []
    for seq in range(count):
        call, at = calls[seq % len(calls)], base + seq / 1000  # millisecond timestamps: all distinct
        properties: dict[str, Any] = {"customData": None}
        if kind == "no_command":
            type_ = "SAY_FINISHED"
            properties.update(duration=1200, playedCompletely=True)
        else:
            type_ = "DTMF_CAPTURED"
            properties.update(dtmf=str(seq), timeout=False)
        body = infobip_events.envelope(type_, at, configuration=call["callsConfigurationId"],
                                       platform=call["platform"], properties=properties, call_id=call["id"])
        bodies.append(json.dumps(body, separators=(",", ":")).encode())
    return bodies


# -- the runs -----------------------------------------------------------------------------------------
async def engine_runs(store: str, workdir: Path, with_bare: bool) -> Runs:
    """Both kinds of event against one engine; ``with_bare`` first measures the bare handlers on the
    same bodies (the simulator's request log then holds their send-dtmfs before the engine's)."""
    count = SESSIONS * EVENTS_PER_SESSION
    async with engine_stack(store) as stack:
        calls = await open_sessions(stack, SESSIONS)
        quiet = webhook_bodies(calls, max(count, BARE_BODIES) if with_bare else count, "no_command")
        echoed = webhook_bodies(calls, count, "one_command")
        bare = bare_one_command = None
        if with_bare:
            async with serving(bare_app({}, stack.simulator_url)) as url:
                bare = await measure(f"{url}/webhooks/infobip", quiet, workdir)
                bare_one_command = await measure(f"{url}/webhooks/infobip-one-command", echoed, workdir)
        no_command = await measure(stack.webhook_url, quiet[:count], workdir)
        stack.stamps.clear()
        one_command = await measure(stack.webhook_url, echoed, workdir)
        latency = await first_command_ms(stack, WARMUP)
    return Runs(no_command, one_command, latency, bare, bare_one_command)


def _figures(prefix: str, runs: Runs, bare: Load) -> dict[str, float]:
    latency = runs.first_command_ms
    return {
        f"{prefix}_no_command_per_s": runs.no_command.rate,
        f"{prefix}_one_command_per_s": runs.one_command.rate,
        f"{prefix}_ratio_no_command_to_bare": runs.no_command.rate / bare.rate,
        f"{prefix}_ratio_one_command_to_bare": runs.one_command.rate / bare.rate,
        f"{prefix}_capacity_no_command_to_bare": runs.no_command.capacity_to(bare),
        f"{prefix}_capacity_one_command_to_bare": runs.one_command.capacity_to(bare),
        f"{prefix}_first_command_p50_ms": statistics.median(latency),
        f"{prefix}_first_command_p99_ms": latency[max(0, round(len(latency) * 0.99) - 1)],
        f"{prefix}_no_command_cpu_us_per_request": runs.no_command.cpu_us_per_request,
        f"{prefix}_one_command_cpu_us_per_request": runs.one_command.cpu_us_per_request,
    }


async def _all() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        memory = await engine_runs("memory://", workdir, with_bare=True)
        sqlite = await engine_runs(f"sqlite:///{workdir / 'sessions.db'}", workdir, with_bare=False)
    assert memory.bare is not None and memory.bare_one_command is not None
    bare, ceiling = memory.bare, memory.bare_one_command
    return {
        "load_generator": bare.tool, "sessions": SESSIONS, "concurrency": CONCURRENCY,
        "bare_per_s": bare.rate, "bare_cpu_us_per_request": bare.cpu_us_per_request,
        "bare_generator_cpu_share": bare.generator_cpu_share,
        "bare_one_command_per_s": ceiling.rate,
        "bare_one_command_cpu_us_per_request": ceiling.cpu_us_per_request,
        "bare_capacity_one_command_to_bare": ceiling.capacity_to(bare),
        **_figures("memory", memory, bare),
        **_figures("sqlite", sqlite, bare),
        "goal_memory_capacity_no_command_to_bare": GOAL_NO_COMMAND,
        "goal_memory_capacity_one_command_to_bare": GOAL_ONE_COMMAND,
    }


def run() -> dict[str, Any]:
    return run_quietly(_all)


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:44} {value:,.2f}" if isinstance(value, float) else f"{name:44} {value}")
