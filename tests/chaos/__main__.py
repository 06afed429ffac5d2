"""``make chaos`` (``PYTHONPATH=tests python -m chaos``): the large bounded runs and their figures.

A runner rather than pytest: the runs are measurements, not pass/fail tests. The figures inform and the
expectations a run misses are named, but only a crash of the harness itself makes the exit status
non-zero; one table across all runs is printed at the end; nothing in ``make test``'s collection or
options changes. Each run stops by itself (``--deadline`` after its calls were placed); every process
is killed at its end; the logs stay in the printed directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaos.scenarios import Kill, Result, Spec, mix, run

# The fault mix of the harness's platform-fault run. Only keys today's simulator takes; a simulator
# with more (429, answers lost, slow answers) takes them through --faults.
FAULTS = {"error_rate": 0.05, "error_status": 503, "latency": 0.02, "seed": 7}
# The delivery policy of the same run: redelivery with backoff, duplicated and reordered webhooks
# (``PUT /_simulator/delivery``; a simulator without that route says "not available").
DELIVERY = {"redelivery": "retry", "duplicate_rate": 0.1, "reorder_rate": 0.1, "seed": 7}


# The exactly-once issue's mix, on 200 calls: 7 % 500, 7 % 429 with Retry-After, 3 % carried out but the
# answer lost, 3 % answered after 12 s (past the 3 s command deadline); 10 % of webhooks duplicated and
# 10 % delayed (overtaken), redelivered with backoff. The issue's bar: >= 199/200, 0 act-once doubled.
ISSUE_FAULTS = {"error_rate": 0.07, "error_status": 500, "throttle_rate": 0.07, "retry_after": 1,
                "lost_rate": 0.03, "lost_as": "drop", "slow_rate": 0.03, "slow_seconds": 12, "seed": 7}
ISSUE_DELIVERY = {"redelivery": "retry", "attempts": 6, "initial_delay": 1, "factor": 2, "max_delay": 8,
                  "duplicate_rate": 0.1, "reorder_rate": 0.1, "reorder_delay": 2, "seed": 7}
ISSUE_CALLS = 200

IN_FLIGHT_MIX = ("answers", "busy", "caller-hangs-up")  # no-answer's 60 s adds nothing here


def specs(args: argparse.Namespace) -> list[Spec]:
    calls = mix(args.calls)
    common: dict[str, Any] = {"deadline": args.deadline, "speed": args.speed, "delivery": args.delivery}
    return [
        Spec("sqlite, no kill (control)", calls, **common),
        # Killed 6 s into the ~8.5 s greeting: every say.finished falls into the 3.5 s the engine is down.
        Spec("sqlite, kill in greeting", calls, kills=[Kill("greeting", delay=6.0)], **common),
        Spec("sqlite, kill at dial", calls, kills=[Kill("dial")], **common),
        Spec("sqlite, kill at random", calls, kills=[Kill("random")], seed=args.seed, **common),
        # Between a command and its save: every API answer 0.5 s late keeps commands in flight long enough
        # for the kill to catch some. Few calls: the simulator delivers all webhooks through one queue, so
        # 50 calls at that latency would take minutes to get anywhere.
        Spec("sqlite, kill mid-plan (0.5 s API latency)", mix(min(args.calls, 8), IN_FLIGHT_MIX),
             kills=[Kill("dial", share=0.25)], **{**common, "faults": {"latency": 0.5}}),
        Spec("redis x2 relay, kill 1 at dial", calls, store="redis", instances=2,
             kills=[Kill("dial", instance=1, down=None)], **common),
        Spec("sqlite, platform faults", calls, faults=args.faults,
             **{**common, "delivery": args.delivery or DELIVERY}),
        Spec(f"sqlite, the issue's fault mix ({ISSUE_CALLS} calls)", mix(ISSUE_CALLS), faults=ISSUE_FAULTS,
             **{**common, "deadline": max(args.deadline, 300.0), "delivery": ISSUE_DELIVERY}),
    ]


HEADER = ("run", "calls", "correct", "doubled", "act-once", "orphan calls", "orphan confs", "stuck",
          "timer rescues", "hooks failed", "over", "wall s")


def row(result: Result) -> tuple[str, ...]:
    f = result.figures
    figures = (f.calls, f.correct, f.doubled, f.doubled_act_once, f.orphan_calls, f.orphan_conferences,
               f.stuck, f.rescued, f.webhooks_failed)
    return (result.spec.name, *map(str, figures), "yes" if result.over else "no", f"{result.wall:.0f}")


def missed(result: Result) -> list[str]:
    """The promise, per run: every call ends as the flow says, nothing doubled, nobody left in a call."""
    f = result.figures
    checks = [(f.correct == f.calls, f"correct ends {f.correct}/{f.calls}"),
              (f.doubled == 0, f"{f.doubled} commands carried out twice"),
              (f.orphan_calls == 0, f"{f.orphan_calls} orphan calls"),
              (f.orphan_conferences == 0, f"{f.orphan_conferences} orphan conferences"),
              (f.stuck == 0, f"{f.stuck} sessions still active"),
              (result.over, "not over by the deadline")]
    return [why for ok, why in checks if not ok]


def table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in (HEADER, *rows)) for i in range(len(HEADER))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(HEADER), rule, *(line(r) for r in rows)])


def details(result: Result) -> str:
    f = result.figures
    out = [f"== {result.spec.name}", *(f"   {n}" for n in result.notes)]
    failed = missed(result)
    out.append("   expectations failed: " + ("; ".join(failed) if failed else "none"))
    out += [f"   wrong end x{n}: {why}" for why, n in f.wrong.most_common()]
    out += [f"   doubled x{n}: {kind}" for kind, n in f.doubled_kinds.most_common()]
    out += [f"   evidence: {e}" for e in f.evidence]
    if f.unheard:
        out.append(f"   correct on the flow's path for a greeting the platform failed (say not sent again, "
                   f"the caller hung up while the flow waited for its greeting timer): {f.unheard}")
    if f.timers_fired:
        fired = ", ".join(f"{k} x{n}" for k, n in f.timers_fired.most_common())
        out.append(f"   moved on by a flow timer: {fired}")
    if f.unattributed:
        out.append(f"   requests carried out that no session owns: {f.unattributed}")
    return "\n".join(out)


async def main(args: argparse.Namespace) -> int:
    root = Path(tempfile.mkdtemp(prefix="flowengine-chaos-"))
    print(f"chaos: {args.calls} calls a run, logs under {root}", flush=True)
    results, crashed = [], []
    for number, spec in enumerate(specs(args)):
        if args.only and not any(word in spec.name for word in args.only):
            continue
        began = time.monotonic()
        print(f"-- {spec.name} ...", flush=True)
        try:
            result = await run(spec, root / f"run-{number}")
        except Exception:  # the harness broke, not the engine: say so, go on with the other runs
            crashed.append(spec.name)
            print(f"   HARNESS CRASHED after {time.monotonic() - began:.0f} s:\n{traceback.format_exc()}")
            continue
        results.append(result)
        print(details(result), flush=True)
    print("\n" + table([row(r) for r in results]))
    print("\n(doubled: 2xx requests beyond what the flow sends on the path each session took; act-once: "
          "answer, conference, join, say, play, dial among them; timer rescues: sessions a flow timer moved "
          "on, i.e. that waited for a lost event; hooks failed: webhook POSTs the engine did not take)")
    for name in crashed:
        print(f"harness crashed in: {name}")
    return 1 if crashed else 0


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=50, help="concurrent calls a run (default 50)")
    parser.add_argument("--deadline", type=float, default=150.0, help="seconds a run waits at most")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random kill instant")
    parser.add_argument("--speed", type=float, help="--speed for the simulator, if it has the flag")
    parser.add_argument("--faults", type=json.loads, default=FAULTS, help="JSON for PUT /_simulator/faults")
    parser.add_argument("--delivery", type=json.loads, help="JSON for PUT /_simulator/delivery, every run")
    parser.add_argument("--only", nargs="*", help="run only the runs whose name contains one of these")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse(sys.argv[1:]))))
