"""Instructions per whole seed call, counted by valgrind's callgrind: a figure the machine's load does not
move, for A/B comparisons of small changes on a shared machine (where CPU ms per call wanders ±15 %
from one short run to the next, it repeats here within ~0.3 %).

The app (``flowengine serve`` on the memory store, or ``--store``, or the hand-written app with
``--hand``) runs under callgrind with instrumentation off while it starts, driven by
``fake_platform.py`` as in ``bench_wholecall.py``; after ``WARMUP`` calls the counters are zeroed,
``--calls`` calls run with ``--concurrency`` in flight, and the counters are dumped. Python code is
counted as the interpreter's instructions (no per-function view of Python code: use py-spy for that).

    python -m bench.instructions                        # this checkout
    python -m bench.instructions /tmp/main /tmp/branch  # trees from `git archive`, run in turn

Each tree runs with ``PYTHONPATH`` on it and this venv's packages. Needs valgrind (``apt-get install
valgrind``). Calls are ~50 times slower than without it: 60 calls take ~20 s.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import bench_wholecall as wholecall

WARMUP = 20
START_TIMEOUT = 300.0  # seconds: valgrind starts the app slowly


def count(tree: str | None, name: str, calls: int, concurrency: int) -> float:
    """Instructions per call of app ``name`` (``hand`` or a store's name) run from ``tree``."""
    env = {**os.environ, **({"PYTHONPATH": tree} if tree else {})}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = wholecall.Source()
        port, token = wholecall._free_port(), "bench-instructions-token"
        out = work / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                   *wholecall._command(name, port, source, work, token)]
        with open(work / "app.log", "wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=log, env=env,
                                       preexec_fn=wholecall._pinned(wholecall.APP_CORE))
        app = wholecall.App(name, process, f"http://127.0.0.1:{port}", token, work / "app.log")
        try:
            wholecall.START_TIMEOUT = START_TIMEOUT
            wholecall._wait_ready(app)
            _control("-i", "on", process.pid)
            source.ask("target", url=f"{app.url}/webhooks/infobip", pid=process.pid)
            wholecall._checked(name, source.ask("saturate", calls=WARMUP, concurrency=concurrency))
            _control("-z", None, process.pid)
            wholecall._checked(name, source.ask("saturate", calls=calls, concurrency=concurrency))
            _control("-d", None, process.pid)
        finally:
            process.terminate()
            process.wait()
            source.close()
        dumped = [p for p in work.glob("callgrind.out.*") if "Trigger: dump" in p.read_text()]
        found = re.search(r"^(?:summary|totals): (\d+)", dumped[0].read_text(), re.M) if dumped else None
        if found is None:
            raise RuntimeError(f"no callgrind dump: {(work / 'app.log').read_text()[-2000:]}")
        return int(found.group(1)) / calls


def _control(option: str, value: str | None, pid: int) -> None:
    subprocess.run(["callgrind_control", option, *([value] if value else []), str(pid)], check=True,
                   capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="*", help="source trees to run in turn (default: this checkout)")
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--store", default="memory", choices=("memory", "sqlite"))
    parser.add_argument("--hand", action="store_true", help="the hand-written app instead")
    args = parser.parse_args()
    name = "hand" if args.hand else args.store
    for tree in args.trees or [None]:
        per_call = count(tree, name, args.calls, args.concurrency)
        print(f"{tree or 'this checkout'}: {name} {per_call / 1e6:.3f} M instructions per call "
              f"({args.calls} calls, {args.concurrency} in flight)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
