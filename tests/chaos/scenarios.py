"""One bounded chaos run: a stack, N concurrent calls, engine instances SIGKILLed at chosen points (when
the simulator's request log shows the greetings or the dials going out, or at a random instant) and
restarted, a bounded wait until everything is over, the verdict."""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.flows import BRANCHES, MIX
from chaos.harness import Stack
from chaos.judge import Figures, Observation, Placed, judge

TRIGGER_TIMEOUT = 40.0  # seconds a kill waits for its moment before it strikes anyway (and says so)
_SAY = re.compile(r"^/calls/1/calls/[^/]+/say$")
_DIAL = re.compile(r"^/calls/1/conferences/[^/]+/call$")
Requests = list[dict[str, Any]]


def count(requests: Requests, method: str, pattern: re.Pattern[str]) -> int:
    return sum(r["method"] == method and bool(pattern.match(r["path"])) for r in requests)


@dataclass(frozen=True)
class Kill:
    """SIGKILL of engine ``instance`` ``when`` ("greeting": once ``share`` of the calls' greetings went out,
    by default nine in ten; "dial": once ``share`` of the dials went out, by default half, so some are
    between the request and its save; "random": at a seeded instant in ``window`` seconds after the calls
    were placed), ``delay`` seconds later; restarted after ``down`` seconds (None: left dead)."""

    when: str
    instance: int = 0
    delay: float = 0.0
    down: float | None = 3.5
    share: float | None = None
    window: tuple[float, float] = (0.5, 20.0)

    def trigger(self, calls: int) -> Callable[[Requests], bool]:
        if self.when == "greeting":
            said = max(1, math.ceil((self.share or 0.9) * calls))
            return lambda reqs: count(reqs, "POST", _SAY) >= said
        if self.when == "dial":
            dialled = max(1, math.ceil((self.share or 0.5) * calls))
            return lambda reqs: count(reqs, "POST", _DIAL) >= dialled
        raise ValueError(f"no trigger for {self.when!r}")


@dataclass
class Spec:
    name: str
    calls: Sequence[str]  # a branch name per call
    store: str = "sqlite"
    instances: int = 1
    kills: Sequence[Kill] = ()
    faults: dict[str, Any] | None = None  # PUT /_simulator/faults
    delivery: dict[str, Any] | None = None  # PUT /_simulator/delivery (where the simulator has it)
    deadline: float = 150.0  # seconds after placing the calls that the run waits at most
    seed: int = 0
    speed: float | None = None  # --speed for the simulator, where it has the flag


@dataclass
class Result:
    spec: Spec
    figures: Figures
    over: bool  # everything ended before the deadline
    wall: float  # seconds from placing the calls to the verdict
    observed: Observation  # what the verdict was drawn from
    placed: list[Placed]
    notes: list[str] = field(default_factory=list)


def mix(calls: int, names: Sequence[str] = MIX) -> list[str]:
    """``calls`` branch names, round robin."""
    return [names[i % len(names)] for i in range(calls)]


async def run(spec: Spec, workdir: Path) -> Result:
    branches = [BRANCHES[name] for name in dict.fromkeys(spec.calls)]
    notes: list[str] = [f"logs in {workdir}"]
    stack = Stack(workdir, branches, store=spec.store, instances=spec.instances, speed=spec.speed)
    async with stack:
        notes.append(f"faults {await stack.apply('faults', spec.faults)}")
        notes.append(f"delivery policy {await stack.apply('delivery', spec.delivery)}")
        if spec.speed:
            notes.append(f"speed x{stack.speed}" if stack.speed else "--speed not available")
        began = time.monotonic()
        placed = await stack.place_calls(spec.calls)
        rng = random.Random(spec.seed)
        for kill in spec.kills:
            notes.append(await _strike(stack, kill, len(placed), began, rng))
        over = await stack.until_over(began + spec.deadline)
        observed = await stack.observe()
        figures = judge(observed, placed)
        wall = time.monotonic() - began
        notes += [f"{k} in the engine logs: {v}" for k, v in observed.engine_log.items() if v]
        if stack.relay is not None:
            notes.append("relay " + ", ".join(f"{k} {v}" for k, v in sorted(stack.relay.counts.items())))
    return Result(spec, figures, over, wall, observed, placed, notes)


async def _strike(stack: Stack, kill: Kill, calls: int, began: float, rng: random.Random) -> str:
    if kill.when == "random":
        instant = rng.uniform(*kill.window)
        await asyncio.sleep(max(0.0, began + instant - time.monotonic()))
        reached = True
    else:
        reached = await stack.until_requests(kill.trigger(calls), TRIGGER_TIMEOUT)
        await asyncio.sleep(kill.delay)
    at = time.monotonic() - began
    back = await stack.crash(kill.instance, down=kill.down)
    when = kill.when if reached else f"{kill.when}, trigger not reached"
    what = f"serve-{kill.instance} killed at {at:.1f} s ({when})"
    return what + (f", ready again {back:.1f} s later" if kill.down is not None else ", left dead")
