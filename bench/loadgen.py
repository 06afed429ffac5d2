"""HTTP load generator for the webhook benchmark, run in its own process so it does not share the
server's event loop (or its core): ``python bench/loadgen.py --url URL --bodies FILE``.

Each line of ``--bodies`` is one request body, POSTed once, in order, by ``--concurrency`` workers over
kept-alive connections; request ``i`` carries ``X-Bench-Seq: i`` so the server side can match it. The run
ends when the bodies are used up or ``--duration`` has passed. The first ``--warmup`` answers (connection
set-up, first-touch caches) are left out of the figures. Prints one JSON object: requests, seconds, rate,
latency percentiles in ms, non_2xx, errors, and this process's CPU seconds and CPU share of its run (near
1.0 means the generator, not the server, was the limit).

Self-contained on purpose (no flowengine or bench imports): it is started by path with ``sys.executable``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

MAX_DURATION = 10.0  # seconds: a measurement is bounded whatever the caller asks


@dataclass
class Outcome:
    """What the workers saw: per request (completion time, latency seconds, status; 0 = no answer)."""

    done: list[tuple[float, float, int]] = field(default_factory=list)
    errors: int = 0


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[rank - 1]


async def _worker(
    http: aiohttp.ClientSession, url: str, bodies: list[bytes], cursor: list[int], deadline: float,
    outcome: Outcome,
) -> None:
    headers = {"Content-Type": "application/json"}
    while cursor[0] < len(bodies) and time.perf_counter() < deadline:
        index = cursor[0]
        cursor[0] += 1  # one event loop: no other worker runs between the read and this write
        started = time.perf_counter()
        try:
            async with http.post(url, data=bodies[index], headers={**headers, "X-Bench-Seq": str(index)}) as reply:
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
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", required=True, type=Path, help="one request body per line")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=MAX_DURATION, help=f"seconds (at most {MAX_DURATION})")
    parser.add_argument("--warmup", type=int, default=200, help="first answers left out of the figures")
    args = parser.parse_args(argv)
    bodies = [line for line in args.bodies.read_bytes().splitlines() if line.strip()]
    cpu, wall = time.process_time(), time.perf_counter()
    outcome = asyncio.run(generate(args.url, bodies, args.concurrency, args.duration))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    json.dump(summarise(outcome, args.warmup, cpu, wall), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
