"""``make fuzz``: schemathesis' every phase against each provider's served ``/openapi.json``, with counts.

    PYTHONPATH=tests python -m apifuzz [--examples 200] [--provider infobip|sinch|all] [--seed 0]

Prints, per provider: requests sent and answers by status class, the answers per operation, every check
that failed (with a curl line to reproduce it) and what the service logged. Exits 1 if any answer was 5xx.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from apifuzz.harness import PHASES, Plan, Tally, fuzz, served
from flowengine.providers import PROVIDERS


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m apifuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="examples per operation and phase")
    parser.add_argument("--provider", choices=[*PROVIDERS, "all"], default="all")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def _logged(path: Path) -> str:
    """What the service logged, counted: lines by level and tracebacks."""
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    levels = {level: sum(line.startswith(level + " ") for line in text.splitlines())
              for level in ("WARNING", "ERROR", "CRITICAL")}
    counts = ", ".join(f"{count} {level}" for level, count in levels.items())
    return f"{counts}, {text.count('Traceback (most recent call last)')} tracebacks ({path})"


def _report(provider: str, tally: Tally, seconds: float, log: Path) -> None:
    print(f"\n== {provider}: {tally.summary()} in {seconds:.0f} s")
    width = max((len(label) for label, _ in tally.statuses), default=0)
    for (label, status), count in sorted(tally.statuses.items()):
        print(f"   {label:<{width}}  {status}  {count}")
    print(f"   logged: {_logged(log)}")
    for (label, check), example in sorted(tally.failures.items()):
        print(f"   FAILED {check} on {label}\n      {example}")
    for error in tally.errors:
        print(f"   ERROR {error}")


def main() -> int:
    args = _arguments()
    plan = Plan(max_examples=args.examples, phases=PHASES, seed=args.seed)
    providers = PROVIDERS if args.provider == "all" else (args.provider,)
    server_errors = 0
    workdir = Path(tempfile.mkdtemp(prefix="flowengine-fuzz-"))
    for provider in providers:
        log = workdir / f"{provider}.log"
        handler = logging.FileHandler(log, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
        started = time.monotonic()
        with served(provider, workdir / provider) as target:
            tally = fuzz(target, plan)
        handler.close()
        _report(provider, tally, time.monotonic() - started, log)
        server_errors += tally.classes["5xx"]
    print(f"\n{server_errors} answers 5xx" + (" (see above)" if server_errors else ""))
    return 1 if server_errors else 0


if __name__ == "__main__":
    sys.exit(main())
