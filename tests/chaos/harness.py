"""The stack under test as real processes on 127.0.0.1: the standalone Infobip simulator, one or more
``flowengine serve`` instances on one SQLite file or one Redis database (own key prefix), and, with
several instances, a balancing relay in front of them. It places calls through the simulator's control
API, crashes and restarts instances, waits (bounded) until everything is over, and collects what the
platform saw (requests, webhooks, calls, conferences) and what the engine says (``/api/sessions``).

    async with Stack(tmp_path, [BRANCHES["answers"]]) as stack:
        placed = await stack.place_calls(["answers"] * 5)
        await stack.crash(0, down=3.5)
        over = await stack.until_over(deadline=60)
        figures = judge(await stack.observe(), placed)
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from chaos.flows import SEED_FLOW, Branch, branch_flow, called_number, callee_number
from chaos.judge import Observation, Placed
from chaos.procs import LOOPBACK, Proc, free_port
from chaos.relay import BalancingRelay
from flowengine.server.serving import serving
from flowengine.simulator.infobip.model import ENDED_STATES
from flowengine.testing import wipe_redis

REDIS_DB = "redis://127.0.0.1:6379/13"  # the chaos runs' own database; each run under its own key prefix
SIMULATOR_KEY, SIMULATOR_CONFIGURATION = "secret", "flowengine-sim"  # the standalone simulator's defaults
SCALED_WINDOW = 86_400.0  # seconds: the engines' timestamp window when the simulator's clock is scaled
POLL = 0.25  # seconds between looks at the simulator and the engine while waiting
# What the engine logs say beyond the figures: (name, text a log line contains).
LOG_SIGNS = (("tracebacks", "Traceback"), ("resumed plans", "resuming an interrupted plan"))


@functools.cache
def simulator_supports(flag: str) -> bool:
    """Whether ``flowengine simulator --help`` lists ``flag`` (e.g. ``--speed``, being added elsewhere)."""
    help_text = subprocess.run(
        [sys.executable, "-m", "flowengine", "simulator", "--help"],
        capture_output=True, text=True, timeout=30, check=False,
    ).stdout
    return flag in help_text


class Stack:
    """Simulator + ``instances`` engines (+ relay when more than one), started on enter, stopped on exit
    (every process, whatever happened; Redis keys of the run deleted)."""

    def __init__(
        self, workdir: Path, branches: Sequence[Branch], *, store: str = "sqlite", instances: int = 1,
        speed: float | None = None,
    ) -> None:
        if store not in ("sqlite", "redis") or instances < 1:
            raise ValueError("store: sqlite or redis; instances >= 1")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.branches = list(branches)
        self.store = store
        self.redis_prefix = f"fe-chaos-{uuid.uuid4().hex[:12]}:"
        # This run's own secrets: the simulator signs its webhooks, the engines check them; the API token
        # opens the engines' /api/sessions to the harness.
        self.webhook_secret = secrets.token_urlsafe(24)
        self.api_token = secrets.token_urlsafe(24)
        self.speed = speed if speed and simulator_supports("--speed") else None
        self.sim_url = f"http://{LOOPBACK}:{free_port()}"
        self.engine_urls = [f"http://{LOOPBACK}:{free_port()}" for _ in range(instances)]
        self.relay: BalancingRelay | None = BalancingRelay(self.engine_urls) if instances > 1 else None
        self.simulator = self._simulator_proc()
        self.engines = [self._engine_proc(i) for i in range(instances)]
        self._exit = AsyncExitStack()
        self._http: aiohttp.ClientSession | None = None

    @property
    def api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"}

    @property
    def store_url(self) -> str:
        if self.store == "redis":
            return f"{REDIS_DB}?prefix={self.redis_prefix}"
        return f"sqlite:///{self.workdir / 'sessions.db'}"  # an absolute path: sqlite:////tmp/...

    # -- processes --------------------------------------------------------------------------------
    def _simulator_proc(self) -> Proc:
        port = self.sim_url.rsplit(":", 1)[1]
        argv = [sys.executable, "-m", "flowengine", "simulator", "-p", "infobip", "--host", LOOPBACK,
                "--port", port, "--webhook-url", "(set on start)",
                "--webhook-hmac-secret", self.webhook_secret]
        if self.speed:
            argv += ["--speed", str(self.speed)]
        return Proc("simulator", argv, f"{self.sim_url}/_simulator/health", self.workdir / "simulator.log")

    def _engine_proc(self, index: int) -> Proc:
        config = self.workdir / f"serve-{index}.yaml"
        argv = [sys.executable, "-m", "flowengine", "serve", "--config", str(config)]
        # /readyz rather than /healthz: it also says the store answers.
        health = f"{self.engine_urls[index]}/readyz"
        return Proc(f"serve-{index}", argv, health, self.workdir / f"serve-{index}.log")

    def _write_configs(self) -> None:
        routes = [{"to": called_number(i), "flow": str(branch_flow(b, i, self.workdir))}
                  for i, b in enumerate(self.branches)]
        for index, url in enumerate(self.engine_urls):
            config = {
                "provider": "infobip",
                "listen": {"host": LOOPBACK, "port": int(url.rsplit(":", 1)[1])},
                "store": self.store_url,
                "routes": routes,
                "default_flow": str(SEED_FLOW),
                "log_level": "info",
                "infobip": {"base_url": self.sim_url, "api_key": SIMULATOR_KEY,
                            "calls_configuration_id": SIMULATOR_CONFIGURATION,
                            "webhook_hmac_secret": self.webhook_secret, **self._timestamp_window()},
                "api_tokens": [self.api_token],
            }
            if self.speed:
                config["replay_ttl"] = 2 * SCALED_WINDOW
            (self.workdir / f"serve-{index}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    def _timestamp_window(self) -> dict[str, float]:
        """A simulator on a scaled clock stamps its events ahead of the wall clock the engines keep (by
        ``speed`` - 1 seconds a second), so their timestamp window is widened to a day there."""
        return {"webhook_max_skew": SCALED_WINDOW} if self.speed else {}

    async def __aenter__(self) -> Stack:
        try:
            await self._start()
        except BaseException:
            await self._exit.aclose()
            raise
        return self

    async def _start(self) -> None:
        self._exit.push_async_callback(self._cleanup)
        self._write_configs()
        self._http = await self._exit.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)))
        webhooks = self.engine_urls[0]
        if self.relay is not None:
            webhooks = await self._exit.enter_async_context(serving(self.relay.app(), host=LOOPBACK))
        self.simulator.argv[self.simulator.argv.index("--webhook-url") + 1] = f"{webhooks}/webhooks/infobip"
        await asyncio.gather(self.simulator.start(), *(engine.start() for engine in self.engines))
        await self.control("PUT", "parties", {callee_number(i): dict(b.callee)
                                              for i, b in enumerate(self.branches)})

    async def __aexit__(self, *_: object) -> None:
        await self._exit.aclose()

    async def _cleanup(self) -> None:
        for proc in (*self.engines, self.simulator):
            proc.stop()
        if self.store == "redis":
            await wipe_redis(REDIS_DB, self.redis_prefix)

    async def crash(self, index: int = 0, *, down: float | None = 3.5) -> float:
        """SIGKILL engine ``index``; restart it on the same port and store after ``down`` seconds (None:
        leave it dead). Returns seconds from the kill until it was ready again (0 when left dead)."""
        engine = self.engines[index]
        engine.kill()
        killed = time.monotonic()
        if down is None:
            return 0.0
        await asyncio.sleep(down)
        await engine.start()
        return time.monotonic() - killed

    # -- the simulator's control API ----------------------------------------------------------------
    async def control(self, method: str, route: str, body: Any = None) -> tuple[int, Any]:
        """``/_simulator/<route>``: (status, parsed JSON or text)."""
        assert self._http is not None
        async with self._http.request(method, f"{self.sim_url}/_simulator/{route}", json=body) as response:
            try:
                return response.status, await response.json(content_type=None)
            except ValueError:
                return response.status, await response.text()

    async def apply(self, route: str, settings: dict[str, Any] | None) -> str:
        """Put platform settings: ``faults`` (API errors, latency, ...) or ``delivery`` (redelivery,
        duplicates, reordering; a route being added elsewhere). Says what happened, for the figures."""
        if not settings:
            return "off"
        status, reply = await self.control("PUT", route, settings)
        if status == 404:
            return "not available"
        if status >= 300:
            return f"refused ({status}: {reply})"
        return "on"

    async def place_calls(self, branch_names: Sequence[str]) -> list[Placed]:
        """One inbound call per name, all at once; returns (call id, branch) for the judge."""
        index = {b.name: i for i, b in enumerate(self.branches)}

        async def place(n: int, name: str) -> Placed:
            branch = self.branches[index[name]]
            body = {"from": f"4477009{n:05d}", "to": called_number(index[name]),
                    "script": dict(branch.caller)}
            status, reply = await self.control("POST", "calls", body)
            if status != 201:
                raise RuntimeError(f"placing a call failed: {status} {reply}")
            return Placed(str(reply["callId"]), branch)

        return list(await asyncio.gather(*(place(n, name) for n, name in enumerate(branch_names))))

    async def requests(self) -> list[dict[str, Any]]:
        return list((await self.control("GET", "requests"))[1])

    async def until_requests(self, check: Callable[[list[dict[str, Any]]], bool], timeout: float) -> bool:
        """Poll the simulator's request log until ``check`` holds; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while not check(await self.requests()):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    # -- waiting and observing ----------------------------------------------------------------------
    async def until_over(self, deadline: float) -> bool:
        """Until every call on the simulator ended, every conference finished and no session is active,
        or ``deadline`` (monotonic) passes: False then."""
        while True:
            if await self._over():
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(POLL)

    async def _over(self) -> bool:
        calls = (await self.control("GET", "calls"))[1]
        conferences = (await self.control("GET", "conferences"))[1]
        if any(c["state"] not in ENDED_STATES for c in calls.values()):
            return False
        if any(not c["finished"] for c in conferences.values()):
            return False
        summaries = await self._session_summaries()
        return summaries is not None and not any(s["status"] == "active" for s in summaries)

    def _live_engine(self) -> str | None:
        return next((url for url, e in zip(self.engine_urls, self.engines, strict=True) if e.running), None)

    async def _session_summaries(self) -> list[dict[str, Any]] | None:
        url = self._live_engine()
        if url is None:
            return None
        assert self._http is not None
        try:
            async with self._http.get(f"{url}/api/sessions", params={"limit": "1000"},
                                      headers=self.api_headers) as response:
                return list((await response.json())["sessions"]) if response.status == 200 else None
        except (aiohttp.ClientError, TimeoutError):
            return None  # the instance is (re)starting

    async def _session_views(self) -> list[dict[str, Any]]:
        summaries = await self._session_summaries()
        url = self._live_engine()
        if summaries is None or url is None:
            raise RuntimeError("no engine instance answers /api/sessions")
        assert self._http is not None
        http = self._http
        limit = asyncio.Semaphore(16)

        async def view(session_id: str) -> dict[str, Any]:
            async with limit, http.get(f"{url}/api/sessions/{session_id}",
                                       headers=self.api_headers) as response:
                return dict(await response.json())

        return list(await asyncio.gather(*(view(s["id"]) for s in summaries)))

    async def observe(self) -> Observation:
        """Everything the judge needs, read once at the end."""
        return Observation(
            calls=(await self.control("GET", "calls"))[1],
            conferences=(await self.control("GET", "conferences"))[1],
            requests=await self.requests(),
            webhooks=(await self.control("GET", "events"))[1],
            sessions=await self._session_views(),
            engine_log={name: sum(e.log_count(needle) for e in self.engines) for name, needle in LOG_SIGNS},
            relay=dict(self.relay.counts) if self.relay is not None else {},
        )

