"""Run the benchmarks and show every figure against its goal and its last baseline.

``python -m bench`` runs every ``bench_<name>.py``; ``python -m bench webhooks runtime`` runs those.
``--json`` prints the results for machines, ``--save-baselines`` writes the measured values into
``baselines.json`` as the new baselines. Exit status 0 whatever the figures say (benchmarks inform, the
test suite gates); 1 if a benchmark crashed, 2 for an unknown benchmark name.

Modules return flat dicts of figures. The shapes they share, read here so no module needs changing:
``goal_<figure>`` is that figure's goal (``baselines.json`` wins where it has one), ``ratio_..._to_goal``
is left out (the table computes the ratio), a nested mapping is flattened to ``outer.inner``, and a value
that is not a number (an error message) is shown as a note.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import math
import os
import pkgutil
import platform
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

HERE = Path(__file__).resolve().parent
BASELINES = HERE / "baselines.json"
PREFIX = "bench_"

Better = Literal["lower", "higher"]
# Unit and direction by how a figure is named, for figures baselines.json does not describe.
_SUFFIXES: tuple[tuple[str, str, Better | None], ...] = (
    ("_per_s", "/s", "higher"), ("_ms", "ms", "lower"), ("_us", "µs", "lower"), ("_cpu_share", "core", None),
)
_PREFIXES: tuple[tuple[str, str, Better | None], ...] = (
    ("us_", "µs", "lower"), ("bytes_", "B", "lower"), ("seconds_", "s", "lower"), ("ratio_", "x", "higher"),
)
# A module's ``goal_<key>`` whose figure has another name: {benchmark: {goal key: figure}}.
GOAL_ALIASES: dict[str, dict[str, str]] = {"validate": {"goal_seconds": "seconds_best"}}


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str = ""
    goal: float | None = None
    better: Better | None = None
    baseline: float | None = None

    @property
    def ratio(self) -> float | None:
        """Value over goal: at most 1 passes a lower-is-better goal, at least 1 a higher-is-better one."""
        return self.value / self.goal if self.goal else None

    @property
    def verdict(self) -> str:
        ratio = self.ratio
        if ratio is None or self.better is None:
            return "-"
        return "pass" if (ratio <= 1 if self.better == "lower" else ratio >= 1) else "FAIL"

    @property
    def vs_baseline(self) -> float | None:
        return self.value / self.baseline if self.baseline else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "verdict": self.verdict, "vs_baseline": self.vs_baseline}


@dataclass
class Result:
    name: str
    seconds: float = 0.0
    figures: list[Figure] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "figures": [f.to_json() for f in self.figures], "notes": self.notes,
                "error": self.error}


# -- reading modules' results --------------------------------------------------------------------------
def discover() -> list[str]:
    """Names of the benchmark modules present (``bench_runtime.py`` -> ``runtime``), sorted."""
    names = (module.name for module in pkgutil.iter_modules([str(HERE)]))
    return sorted(name[len(PREFIX):] for name in names if name.startswith(PREFIX))


def flatten(result: Mapping[str, Any], outer: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in result.items():
        name = f"{outer}.{key}" if outer else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def infer(name: str) -> tuple[str, Better | None]:
    """(unit, better) guessed from the name; ("", None) when the name says nothing."""
    leaf = name.rsplit(".", 1)[-1]
    for suffix, unit, better in _SUFFIXES:
        if leaf.endswith(suffix):
            return unit, better
    for prefix, unit, better in _PREFIXES:
        if leaf.startswith(prefix) or f"_{prefix}" in leaf:
            return unit, better
    return "", None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return value


def adapt(name: str, raw: Mapping[str, Any], specs: Mapping[str, Any]) -> Result:
    """A module's dict -> figures with units, goals and baselines (``specs``: its baselines.json part)."""
    flat = flatten(raw)
    for goal_key, figure in GOAL_ALIASES.get(name, {}).items():
        if goal_key in flat:
            flat[f"goal_{figure}"] = flat[goal_key]
    result = Result(name)
    for key, value in flat.items():
        if key.startswith("goal_") or (key.startswith("ratio_") and key.endswith("_to_goal")):
            continue
        number = _number(value)
        if number is None:
            result.notes[key] = str(value)
            continue
        spec = specs.get(key, {})
        unit, better = infer(key)
        goal = spec.get("goal", _number(flat.get(f"goal_{key}")))
        result.figures.append(Figure(
            key, number, spec.get("unit", unit), goal, spec.get("better", better), spec.get("baseline"),
        ))
    return result


def run_one(name: str, specs: Mapping[str, Any]) -> Result:
    started = time.perf_counter()
    try:
        module = importlib.import_module(f"bench.{PREFIX}{name}")
        raw = module.run()
        if not isinstance(raw, Mapping):
            raise TypeError(f"{PREFIX}{name}.run() returned {type(raw).__name__}, not a dict")
        result = adapt(name, raw, specs)
    except Exception:  # a crashed benchmark is reported and the others still run
        result = Result(name, error=traceback.format_exc())
    result.seconds = time.perf_counter() - started
    gc.collect()
    return result


# -- showing them --------------------------------------------------------------------------------------
def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) or (abs(value) >= 100 and value == int(value)):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def _goal(figure: Figure) -> str:
    if figure.goal is None:
        return "-"
    sign = {"lower": "≤ ", "higher": "≥ "}.get(figure.better or "", "")
    return sign + fmt(figure.goal)


HEADER = ("figure", "value", "unit", "goal", "ratio", "pass", "baseline", "vs base")


def table(results: Sequence[Result]) -> str:
    rows: list[tuple[str, ...]] = []
    for result in results:
        rows.append((f"[{result.name}]  {result.seconds:.1f} s" + ("  CRASHED" if result.error else ""),))
        for f in result.figures:
            rows.append((f"  {f.name}", fmt(f.value), f.unit, _goal(f), fmt(f.ratio), f.verdict,
                         fmt(f.baseline), fmt(f.vs_baseline)))
        rows.extend((f"  {key}: {text}",) for key, text in result.notes.items())
    full = [row for row in [HEADER, *rows] if len(row) == len(HEADER)]
    widths = [max(len(row[i]) for row in full) for i in range(len(HEADER))]

    def line(row: tuple[str, ...]) -> str:
        if len(row) == 1:
            return row[0]
        numbers = (cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))
        cells = [row[0].ljust(widths[0]), *numbers]
        return "  ".join(cells).rstrip()

    return "\n".join([line(HEADER), *(line(row) for row in rows)])


def summary(results: Sequence[Result]) -> str:
    verdicts = [f.verdict for r in results for f in r.figures if f.verdict != "-"]
    crashed = [r.name for r in results if r.error]
    text = f"{verdicts.count('pass')} of {len(verdicts)} goals met"
    failed = [f"{r.name}.{f.name}" for r in results for f in r.figures if f.verdict == "FAIL"]
    if failed:
        text += "; not met: " + ", ".join(failed)
    return text + (f"; crashed: {', '.join(crashed)}" if crashed else "")


# -- baselines -----------------------------------------------------------------------------------------
def load_baselines(path: Path = BASELINES) -> dict[str, Any]:
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def save_baselines(results: Sequence[Result], path: Path = BASELINES) -> None:
    """Record each measured value as its figure's baseline; goals, units and directions are kept (and
    filled in where the file had none, so from then on the file says them)."""
    data = load_baselines(path)
    stamp = f"{datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores, Python {platform.python_version()}"
    for result in results:
        if result.error:
            continue
        old = data.get(result.name, {})
        specs: dict[str, Any] = {"_measured": stamp, **{k: v for k, v in old.items() if k != "_measured"}}
        for f in result.figures:
            spec = specs.setdefault(f.name, {})
            spec["baseline"] = f.value if isinstance(f.value, int) else float(f"{f.value:.4g}")
            for key in ("unit", "better", "goal"):
                if getattr(f, key) not in (None, "") and key not in spec:
                    spec[key] = getattr(f, key)
        data[result.name] = specs
    path.write_text(dump_baselines(data), encoding="utf-8")


def dump_baselines(data: Mapping[str, Any]) -> str:
    """JSON with one line per figure, so a diff of the file reads as a diff of the figures."""
    lines = []
    for name, specs in data.items():
        if not isinstance(specs, Mapping):
            lines.append(f"  {json.dumps(name)}: {json.dumps(specs, ensure_ascii=False)}")
            continue
        inner = ",\n".join(f"    {json.dumps(key)}: {json.dumps(spec, ensure_ascii=False)}"
                           for key, spec in specs.items())
        lines.append(f"  {json.dumps(name)}: {{\n{inner}\n  }}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


# -- command line --------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    known = discover()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="name", help=f"benchmarks to run (default: all: {known})")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--save-baselines", action="store_true", help="write the values into baselines.json")
    parser.add_argument("--quick", action="store_true",
                        help="shorter runs where a benchmark has them (BENCH_QUICK=1): rougher figures")
    args = parser.parse_args(argv)
    if args.quick:
        os.environ["BENCH_QUICK"] = "1"  # read by the modules when they are imported, below
    unknown = [name for name in args.names if name not in known]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(known)}")
    baselines = load_baselines()
    results = []
    for name in args.names or known:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results.append(run_one(name, baselines.get(name, {})))
    for result in results:
        if result.error:
            print(f"benchmark {result.name} crashed:\n{result.error}", file=sys.stderr)
    if args.json:
        json.dump({"benchmarks": {r.name: r.to_json() for r in results}, "summary": summary(results)},
                  sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        print(table(results))
        print(summary(results))
    if args.save_baselines:
        save_baselines(results)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
