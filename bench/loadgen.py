"""HTTP load generator for the webhook benchmark, run in its own process so it does not share the
server's event loop (or its core): ``python bench/loadgen.py --url URL --bodies FILE``.

Each line of ``--bodies`` is one request body, POSTed once, in order, over ``--concurrency`` kept-alive
connections; request ``i`` carries ``X-Bench-Seq: i`` so the server side can match it. The run ends when
the bodies are used up or ``--duration`` (at most 10 s) has passed. Prints one JSON object: tool,
requests, seconds, rate, latency percentiles in ms, non_2xx, errors, warmup, and the generator's CPU
seconds and CPU share of its run (near 1.0: the generator, not the server, was the limit).

Two engines, same output: ``wrk`` when it is on PATH (``--tool auto``, the default), driven by a Lua
script that hands out the bodies in order; else an aiohttp client with one task per connection, which
also leaves the first ``--warmup`` answers out of the figures (wrk has no warm-up; its C client sets up
connections in microseconds). Self-contained (no flowengine or bench imports): it is started by path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

MAX_DURATION = 10.0  # seconds: a measurement is bounded whatever the caller asks
SEQ_HEADER = "X-Bench-Seq"

# wrk: one thread (the other core is the server's) hands out the bodies in file order and stops once the
# last one is answered (the few requests asked for past the end repeat the last body). wrk's own duration
# is always the full -d, so the thread times its answers itself (LuaJIT's ffi, CLOCK_MONOTONIC) and
# done() reads that through thread:get. The header name is SEQ_HEADER, written out.
WRK_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) / 1e9
end

local threads = {}
function setup(thread) threads[#threads + 1] = thread end

bodies, next_body, answered, started, finished = {}, 0, 0, 0, 0
function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  started = now()
end
function request()
  next_body = next_body + 1
  local index = math.min(next_body, #bodies)
  local headers = {["Content-Type"] = "application/json", ["X-Bench-Seq"] = tostring(index - 1)}
  return wrk.format("POST", nil, headers, bodies[index])
end
function response(status, headers, body)
  if answered < #bodies then
    answered = answered + 1
    finished = now()
  end
  if answered >= #bodies then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local thread, e = threads[1], summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "non_2xx": %d, "errors": %d, '
    .. '"p50": %d, "p90": %d, "p99": %d, "max": %d}\n',
    thread:get("answered"), thread:get("finished") - thread:get("started"), e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass
class Outcome:
    """What the aiohttp workers saw: per request (completion time, latency seconds, status; 0 = none)."""

    done: list[tuple[float, float, int]] = field(default_factory=list)
    errors: int = 0


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[rank - 1]


# -- aiohttp ---------------------------------------------------------------------------------------------
async def _worker(
    http: aiohttp.ClientSession, url: str, bodies: list[bytes], cursor: list[int], deadline: float,
    outcome: Outcome,
) -> None:
    while cursor[0] < len(bodies) and time.perf_counter() < deadline:
        index = cursor[0]
        cursor[0] += 1  # one event loop: no other worker runs between the read and this write
        started = time.perf_counter()
        try:
            headers = {"Content-Type": "application/json", SEQ_HEADER: str(index)}
            async with http.post(url, data=bodies[index], headers=headers) as reply:
                await reply.read()
                status = reply.status
        except (aiohttp.ClientError, TimeoutError):
            outcome.errors += 1
            status = 0
        ended = time.perf_counter()
        outcome.done.append((ended, ended - started, status))


async def generate(url: str, bodies: list[bytes], concurrency: int, duration: float) -> Outcome:
    outcome = Outcome()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        deadline = time.perf_counter() + min(duration, MAX_DURATION)
        cursor = [0]
        await asyncio.gather(*(_worker(http, url, bodies, cursor, deadline, outcome)
                               for _ in range(concurrency)))
    return outcome


def summarise(outcome: Outcome, warmup: int, cpu_seconds: float, wall_seconds: float) -> dict[str, Any]:
    """Figures over the answers after the first ``warmup`` ones (all of them if there are too few)."""
    done = sorted(outcome.done)
    if len(done) <= warmup + 1:
        warmup = 0
    window = done[warmup:]
    started = done[warmup - 1][0] if warmup else (done[0][0] - done[0][1] if done else 0.0)
    seconds = (window[-1][0] - started) if window else 0.0
    latencies = sorted(latency * 1000 for _, latency, _ in window)
    return {
        "tool": "aiohttp",
        "requests": len(window),
        "seconds": seconds,
        "rate": len(window) / seconds if seconds > 0 else 0.0,
        "latency_ms": {name: percentile(latencies, share)
                       for name, share in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0))},
        "non_2xx": sum(1 for _, _, status in done if not 200 <= status < 300),
        "errors": outcome.errors,
        "warmup": warmup,
        "cpu_seconds": cpu_seconds,
        "cpu_share": cpu_seconds / wall_seconds if wall_seconds > 0 else 0.0,
    }


def run_aiohttp(
    url: str, bodies_file: Path, concurrency: int, duration: float, warmup: int
) -> dict[str, Any]:
    bodies = [line for line in bodies_file.read_bytes().splitlines() if line.strip()]
    cpu, wall = time.process_time(), time.perf_counter()
    outcome = asyncio.run(generate(url, bodies, concurrency, duration))
    return summarise(outcome, warmup, time.process_time() - cpu, time.perf_counter() - wall)


# -- wrk -------------------------------------------------------------------------------------------------
def run_wrk(wrk: str, url: str, bodies_file: Path, concurrency: int, duration: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bodies.lua"
        script.write_text(WRK_SCRIPT, encoding="utf-8")
        seconds = max(1, math.ceil(min(duration, MAX_DURATION)))
        command = [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script),
                   url, "--", str(bodies_file)]
        before, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        finished = subprocess.run(command, capture_output=True, text=True, check=False)
        after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter() - wall
    if finished.returncode != 0:
        raise SystemExit(f"wrk failed ({finished.returncode}): {finished.stderr.strip()}")
    report = json.loads(finished.stdout.strip().splitlines()[-1])  # done() writes the last line
    elapsed = report["seconds"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "tool": "wrk",
        "requests": report["requests"],
        "seconds": elapsed,
        "rate": report["requests"] / elapsed if elapsed > 0 else 0.0,
        "latency_ms": {name: report[name] / 1000 for name in ("p50", "p90", "p99", "max")},
        "non_2xx": report["non_2xx"],
        "errors": report["errors"],
        "warmup": 0,
        "cpu_seconds": cpu,
        "cpu_share": cpu / elapsed if elapsed > 0 else 0.0,  # wrk's own -d wall time includes idling
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="POST each body of a file once, at a fixed concurrency.")
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", required=True, type=Path, help="one request body per line")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=MAX_DURATION, help=f"at most {MAX_DURATION} s")
    parser.add_argument("--warmup", type=int, default=200, help="first answers left out (aiohttp only)")
    parser.add_argument("--tool", choices=("auto", "wrk", "aiohttp"), default="auto")
    args = parser.parse_args(argv)
    wrk = shutil.which("wrk") if args.tool in ("auto", "wrk") else None
    if args.tool == "wrk" and wrk is None:
        parser.error("wrk is not on PATH")
    if wrk is not None:
        result = run_wrk(wrk, args.url, args.bodies, args.concurrency, args.duration)
    else:
        result = run_aiohttp(args.url, args.bodies, args.concurrency, args.duration, args.warmup)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
