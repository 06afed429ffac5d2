"""Cost per whole call (issue 15): ``flowengine serve`` against a hand-written aiohttp app doing the same
seed call, each a real process pinned to one core, driven by a fake platform fast enough not to be the
limit.

The seed call (``seed_call.py``): 17 webhooks and 11 API requests, the Infobip article's conference call
with the second party answering. The load source is ``fake_platform.py``, a process of its own pinned to
the other core: it replays each call's recorded webhooks, pre-encoded, and answers the app's requests with
pre-encoded answers, checking each byte for byte; a call counts only if it ended exactly as recorded (the
benchmark fails otherwise). Its own CPU share is reported (``source_core_share``; near 1 would mean it,
not the app, set the rate).

Targets, in alternating order each round (forward, then backward): ``hand`` (``handwritten_app.py``, no
flowengine), and ``flowengine serve`` with the ``memory``, ``sqlite`` (a temporary file) and ``redis``
(127.0.0.1:6379 db 13, a prefix of its own, removed afterwards) stores; on request (``BENCH_TARGETS``)
``record``, the memory store with ``record:`` on (every call written as a replay file). ``serve`` runs
with its default logging (info, to a file) and ``insecure_webhooks: true``: the fake platform does not sign
its webhooks (an HMAC per webhook would cost the engine a few microseconds the hand-written app does not
spend either).
Per target and round: a warm-up, then

* saturated: ``CALLS`` calls, ``CONCURRENCY`` at a time: calls/s, CPU ms per call of the app process
  (user + system time of all its threads, from /proc, over the run), p99 webhook->answer under that load;
* at ``RATE`` new calls/s for ``RATE_SECONDS``: p50/p99 from a webhook sent to its answer read;
* (memory and hand, first round) idle calls held connected: ``IDLE_FILL`` first, which fills every cache
  the app keeps of recent sessions (``HOT_SESSIONS``), then ``IDLE`` more: the app's resident memory
  growth over those, per call, is what one more idle call costs (``bytes_per_idle_call``); the growth
  over the first ones, caches included, is ``bytes_per_idle_call_filling``.

Figures are medians over the rounds; ``spread`` notes give min-max. ``BENCH_QUICK=1`` (``python -m bench
--quick``) runs one short round. Redis unreachable: its figures are left out with a note.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bench.seed_call import API_KEY, CONFIGURATION, FLOW
from flowengine.stores.base import HOT_SESSIONS

HERE = Path(__file__).resolve().parent
QUICK = os.environ.get("BENCH_QUICK") == "1"
ROUNDS = 1 if QUICK else 3
WARMUP = 100 if QUICK else 300
CALLS = 600 if QUICK else 1000
CONCURRENCY = 48
RATE, RATE_SECONDS = 100.0, (3.0 if QUICK else 4.0)
# Redis costs several times more per call (a round trip per store operation, and the Redis server shares
# the two cores): fewer calls, and a pace it can keep, so its latency figures mean something.
SLOW = {"redis": {"calls": CALLS // 3, "rate": 25.0}}
IDLE = 1_000 if QUICK else 1_500
IDLE_FILL = HOT_SESSIONS + 500
TARGETS = tuple(os.environ.get("BENCH_TARGETS", "hand,memory,sqlite,redis").split(","))
REDIS = "redis://127.0.0.1:6379/13"
APP_CORE, SOURCE_CORE = 0, 1
START_TIMEOUT = 30.0
GOALS = {"memory_cpu_ratio_to_hand": 1.25, "sqlite_cpu_ratio_to_memory": 1.3, "memory_calls_per_s": 250.0,
         "sqlite_p99_ms": 20.0, "memory_bytes_per_idle_call": 4096.0}


def _pinned(core: int) -> Any:
    cores = os.sched_getaffinity(0)
    chosen = {core} if core in cores else {min(cores)}
    return lambda: os.sched_setaffinity(0, chosen)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _get(url: str, token: str | None = None, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        return json.loads(reply.read())


class Source:
    """The fake platform process and its command pipe."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "fake_platform.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            preexec_fn=_pinned(SOURCE_CORE), text=True,
        )
        self.url = str(self._read()["ready"])

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the fake platform stopped (exit {self.process.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class App:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    token: str | None
    log: Path


def _command(name: str, port: int, source: Source, workdir: Path, token: str) -> list[str]:
    if name == "hand":
        return [sys.executable, str(HERE / "handwritten_app.py"), "--port", str(port),
                "--base-url", source.url,
                "--api-key", API_KEY, "--configuration", CONFIGURATION]
    store = {"memory": "memory://", "sqlite": f"sqlite:///{workdir / f'sessions-{port}.db'}",
             "redis": f"{REDIS}?prefix=bench-wholecall-{port}:", "record": "memory://"}[name]
    config = {
        "provider": "infobip", "listen": {"host": "127.0.0.1", "port": port}, "store": store,
        "default_flow": str(FLOW), "insecure_webhooks": True, "api_tokens": [token],
        "infobip": {"base_url": source.url, "api_key": API_KEY, "calls_configuration_id": CONFIGURATION},
    }
    if name == "record":  # the memory store with every session recorded as a replay file
        config["record"] = {"dir": str(workdir / f"recordings-{port}")}
    path = workdir / f"flowengine-{port}.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return [str(Path(sys.executable).parent / "flowengine"), "serve", "--config", str(path)]


@contextlib.contextmanager
def running(name: str, source: Source, workdir: Path) -> Iterator[App]:
    port, token = _free_port(), secrets.token_urlsafe(24)
    log = workdir / f"{name}-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(_command(name, port, source, workdir, token), stdout=out, stderr=out,
                                   preexec_fn=_pinned(APP_CORE))
    app = App(name, process, f"http://127.0.0.1:{port}", None if name == "hand" else token, log)
    try:
        _wait_ready(app)
        yield app
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if name == "redis":
            _wipe_redis(f"bench-wholecall-{port}:")


def _wait_ready(app: App) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            raise RuntimeError(f"{app.name} exited {app.process.returncode}: {app.log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            _get(f"{app.url}/healthz", timeout=1.0)
            return
        time.sleep(0.1)
    raise RuntimeError(f"{app.name} did not start within {START_TIMEOUT:g} s")


def _wipe_redis(prefix: str) -> None:
    import asyncio

    from flowengine.testing import wipe_redis

    asyncio.run(wipe_redis(REDIS, prefix))


def _redis_up() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 6379), timeout=1.0):
        return True
    return False


# -- one target -------------------------------------------------------------------------------------
def _checked(name: str, result: dict[str, Any]) -> dict[str, Any]:
    if result.get("failed") or "error" in result:
        raise RuntimeError(f"{name}: {result.get('failed')} of {result.get('calls')} calls did not end as "
                           f"recorded: {result.get('failures') or result.get('error')}")
    return result


def _sessions_ended(app: App) -> None:
    """The engine's own view: no session left active, the latest ones ended where the seed call ends."""
    if app.token is None:
        return
    active = _get(f"{app.url}/api/sessions?status=active&limit=10", app.token)["sessions"]
    latest = _get(f"{app.url}/api/sessions?limit=50", app.token)["sessions"]
    wrong = [s for s in latest if (s["state"], s["status"]) != ("closing", "ended")]
    if active or wrong or not latest:
        raise RuntimeError(f"{app.name}: sessions not ended as the seed call ends: {(active + wrong)[:3]}")


def measure(name: str, source: Source, workdir: Path, idle: bool) -> dict[str, float]:
    with running(name, source, workdir) as app:
        try:
            return _measure(app, source, idle)
        except RuntimeError as exc:
            notable = [line for line in app.log.read_text().splitlines() if " INFO " not in line]
            raise RuntimeError(f"{exc}\n{name}'s log, bar info lines:\n" + "\n".join(notable[-30:])) from None


def _measure(app: App, source: Source, idle: bool) -> dict[str, float]:
    name = app.name
    source.ask("target", url=f"{app.url}/webhooks/infobip", pid=app.process.pid)
    _checked(name, source.ask("saturate", calls=WARMUP, concurrency=CONCURRENCY))
    sizes = SLOW.get(name, {})
    calls, rate = int(sizes.get("calls", CALLS)), float(sizes.get("rate", RATE))
    full = _checked(name, source.ask("saturate", calls=calls, concurrency=CONCURRENCY))
    paced = _checked(name, source.ask("rate", per_s=rate, seconds=RATE_SECONDS))
    figures = {
        "calls_per_s": full["calls_per_s"], "cpu_per_call_ms": full["app_cpu_ms_per_call"],
        "saturated_p99_ms": full["p99_ms"], "p50_ms": paced["p50_ms"], "p99_ms": paced["p99_ms"],
        "paced_calls_per_s": rate,
        "paced_cpu_per_call_ms": paced["app_cpu_ms_per_call"],
        "source_core_share": full["source_core_share"],
        "source_cpu_per_call_ms": full["source_cpu_s"] / full["ok"] * 1000,
    }
    if idle:
        figures.update(_idle_bytes(app, source))
    _sessions_ended(app)
    return figures


def _idle_bytes(app: App, source: Source) -> dict[str, float]:
    """Resident memory per idle call: over the first ``IDLE_FILL`` (the caches filling) and per call
    beyond them (``IDLE`` more)."""
    sizes = [_rss_bytes(app.process.pid)]
    counts = []
    for calls in (IDLE_FILL, IDLE):
        counts.append(max(1, source.ask("park", calls=calls, concurrency=CONCURRENCY)["parked"]))
        sizes.append(_rss_bytes(app.process.pid))
    _checked(app.name, source.ask("release"))
    return {"bytes_per_idle_call_filling": (sizes[1] - sizes[0]) / counts[0],
            "bytes_per_idle_call": (sizes[2] - sizes[1]) / counts[1]}


# -- all of it ----------------------------------------------------------------------------------------
Seen = dict[str, list[dict[str, float]]]


def _rounds(targets: tuple[str, ...], workdir: Path, progress: IO[str]) -> tuple[Seen, dict[str, str]]:
    """Each target's figures per round; a target that failed is dropped with its error under ``errors``."""
    seen: Seen = {name: [] for name in targets}
    errors: dict[str, str] = {}
    source = Source()
    try:
        for round_ in range(ROUNDS):
            order = targets if round_ % 2 == 0 else tuple(reversed(targets))
            for name in (name for name in order if name not in errors):
                print(f"  wholecall round {round_ + 1}/{ROUNDS}: {name}", file=progress, flush=True)
                idle = round_ == 0 and name in ("hand", "memory")
                try:
                    seen[name].append(measure(name, source, workdir, idle))
                except RuntimeError as exc:  # the other targets still run; the table says why
                    print(f"  wholecall {name} failed: {exc}", file=progress, flush=True)
                    errors[name] = str(exc).splitlines()[0]
    finally:
        source.close()
    return {name: runs for name, runs in seen.items() if name not in errors}, errors


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs if key in run)


def summarise(seen: Seen, errors: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": ROUNDS, "calls_per_run": CALLS, "concurrency": CONCURRENCY}
    out.update({f"{name}_error": error for name, error in errors.items()})
    for name, runs in seen.items():
        for key in runs[0]:
            out[f"{name}_{key}"] = _median(runs, key)
        cpu = sorted(run["cpu_per_call_ms"] for run in runs)
        rate = sorted(run["calls_per_s"] for run in runs)
        out[f"{name}_spread"] = (f"cpu/call {cpu[0]:.2f}-{cpu[-1]:.2f} ms, "
                                 f"calls/s {rate[0]:.0f}-{rate[-1]:.0f}"
                                 f" over {len(runs)} run(s)")
    hand = out.get("hand_cpu_per_call_ms")
    for name in ("memory", "sqlite", "redis"):
        if hand and f"{name}_cpu_per_call_ms" in out:
            out[f"{name}_cpu_ratio_to_hand"] = out[f"{name}_cpu_per_call_ms"] / hand
            out[f"{name}_capacity_calls_per_s"] = 1000 / out[f"{name}_cpu_per_call_ms"]
    for name in ("sqlite", "redis", "record"):
        if "memory_cpu_per_call_ms" in out and f"{name}_cpu_per_call_ms" in out:
            ratio = out[f"{name}_cpu_per_call_ms"] / out["memory_cpu_per_call_ms"]
            out[f"{name}_cpu_ratio_to_memory"] = ratio
    if hand:
        out["hand_capacity_calls_per_s"] = 1000 / hand
    shares = [run["source_core_share"] for runs in seen.values() for run in runs]
    if shares:
        out["source_core_share_max"] = max(shares)
    out.update({f"goal_{key}": goal for key, goal in GOALS.items()})
    return out


def run() -> dict[str, Any]:
    targets = TARGETS if _redis_up() else tuple(name for name in TARGETS if name != "redis")
    with tempfile.TemporaryDirectory(prefix="bench-wholecall-") as tmp:
        result = summarise(*_rounds(targets, Path(tmp), sys.stderr))
    if "redis" in TARGETS and "redis" not in targets:
        result["redis_error"] = "Redis at 127.0.0.1:6379 is not reachable: no Redis figures"
    return result


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:40} {value:,.3f}" if isinstance(value, float) else f"{key:40} {value}")
