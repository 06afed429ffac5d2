"""The Infobip simulator in a process of its own, for the webhook benchmark: the platform's side of each
command then costs the engine's process nothing, as with the real platform.

``python bench/simulator_process.py --port P --webhook-url URL`` serves on 127.0.0.1:P with wall-clock
time and no event delay, prints ``ready`` once it listens, and runs until terminated. Calls are placed and
requests read through its control API (``/_simulator/``). No logging is configured, so aiohttp's access
log stays off: writing a line per request would tax the machine the engine is measured on.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from flowengine.runtime.clock import SystemClock
from flowengine.simulator.base import Simulator
from flowengine.simulator.serve import run_simulator


def _announce(_simulator: Simulator, _url: str) -> None:
    print("ready", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the Infobip simulator for the webhook benchmark.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--webhook-url", required=True)
    args = parser.parse_args(argv)
    asyncio.run(run_simulator("infobip", "127.0.0.1", args.port, args.webhook_url, clock=SystemClock(),
                              ready=_announce, event_delay=0.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
