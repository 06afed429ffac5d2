"""Run the mutants mutmut cannot switch on: those of functions called while their module is imported.

mutmut chooses the mutant when a mutated function is called, in workers forked after the modules were
imported. A factory that builds handlers at import (``infobip.webhooks._participant``) has run by then, so
its mutants never take effect and are reported as surviving whatever the tests check. This runs each such
survivor in a fresh interpreter with the mutant chosen before the import, against the tests its group
names in ``[[tool.flowengine.mutation.at_import]]`` of pyproject.toml, and records the verdict where
``mutmut results`` reads it (the ``.meta`` file next to the mutated module: 1 is killed, 0 survived).

    .venv-mutation/bin/python tests/mutants_at_import.py     # after ``mutmut run``, from the project root
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
TIMEOUT = 120.0  # seconds per mutant: the selected tests take a few


def survivors(prefixes: list[str]) -> dict[Path, list[str]]:
    """Surviving mutants of the listed functions, by the ``.meta`` file that records them."""
    found: dict[Path, list[str]] = {}
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        names = [name for name, code in codes.items()
                 if code == 0 and any(name.startswith(prefix + "__mutmut_") for prefix in prefixes)]
        if names:
            found[meta] = names
    return found


def killed(name: str, tests: list[str]) -> bool:
    env = {**os.environ, "MUTANT_UNDER_TEST": name, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    try:
        result = subprocess.run(command, cwd=MUTANTS, env=env, capture_output=True, timeout=TIMEOUT,
                                check=False)
    except subprocess.TimeoutExpired:
        return True  # as mutmut counts a timeout: the tests noticed something
    return result.returncode != 0


def main() -> int:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["flowengine"]
    if not MUTANTS.is_dir():
        print("no mutants/ directory: run mutmut first", file=sys.stderr)
        return 2
    for group in settings["mutation"]["at_import"]:
        found, tests = survivors(group["functions"]), group["tests"]
        if not found:
            continue  # nothing of this group was mutated this run (see ``only_mutate``), or all killed
        if killed("none", tests):  # with no mutant the tests must pass, or every verdict means nothing
            print(f"{' '.join(tests)} fail with no mutant switched on: fix that first", file=sys.stderr)
            return 2
        for meta, names in found.items():
            with ThreadPoolExecutor(max_workers=2) as pool:
                verdicts = dict(zip(names, pool.map(killed, names, [tests] * len(names)), strict=True))
            doc = json.loads(meta.read_text(encoding="utf-8"))
            for name, dead in verdicts.items():
                doc["exit_code_by_key"][name] = 1 if dead else 0
                print("killed  " if dead else "SURVIVED", name)
            meta.write_text(json.dumps(doc, indent=4), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
