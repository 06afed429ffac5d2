"""Golden files: every rule and YAML trap has tests/testdata/err/<case>.yaml with its exact text output in
<case>.out; everything in tests/testdata/ok and flows/ validates clean.

Regenerate the .out files after an intended change with ``UPDATE_GOLDEN=1 pytest tests/unit/test_golden.py``
and review the diff.

Where a message ends in a library's own wording (YAML's ``invalid YAML: …``, Jinja's ``invalid
template: …``), which changes between the library's releases, the .out line holds ``…`` in its place:
the path, line:col, rule and our own words around it are still compared exactly (an update keeps it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from flowengine.flow.loader import load_flow
from flowengine.flow.reporters import report_text
from flowengine.flow.rules import RULE_DOCS
from flowengine.providers import PROVIDERS, platform

ROOT = Path(__file__).resolve().parents[2]
ERR = ROOT / "tests" / "testdata" / "err"
OK = ROOT / "tests" / "testdata" / "ok"
FLOWS = ROOT / "flows"
# A first-line directive for cases that need options: "# golden: provider=x capabilities=a,b".
_DIRECTIVE = re.compile(r"^# golden: (.*)$", re.MULTILINE)


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _run(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    match = _DIRECTIVE.search(text)
    options = dict(item.split("=", 1) for item in match.group(1).split()) if match else {}
    capabilities = frozenset(options["capabilities"].split(",")) if "capabilities" in options else None
    provider = options.get("provider")
    table = platform(provider) if provider in PROVIDERS and capabilities is None else None
    result = load_flow(
        path, source=_relative(path), capabilities=capabilities, provider=provider, platform=table
    )
    return report_text(result.diagnostics, {}, False)


def _rows(path: Path) -> set[str]:
    """The capability-table rows a golden case shows (its directive's ``rows=a,b``)."""
    match = _DIRECTIVE.search(path.read_text(encoding="utf-8"))
    options = dict(item.split("=", 1) for item in match.group(1).split()) if match else {}
    return set(options["rows"].split(",")) if "rows" in options else set()


ERR_CASES = sorted(ERR.glob("*.yaml"))


@pytest.mark.parametrize("case", ERR_CASES, ids=[c.stem for c in ERR_CASES])
def test_error_case_matches_its_golden_output(case: Path) -> None:
    expected_file = case.with_suffix(".out")
    actual = _run(case)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected_file.write_text(_keep_wildcards(actual, expected_file), encoding="utf-8")
    assert actual, f"{case.name} produced no diagnostics"
    assert _keep_wildcards(actual, expected_file) == expected_file.read_text(encoding="utf-8")


def _keep_wildcards(actual: str, expected_file: Path) -> str:
    """``actual`` with each line that a wildcard line of the golden file matches replaced by that line."""
    expected = expected_file.read_text(encoding="utf-8").splitlines() if expected_file.exists() else []
    wild = [(re.compile(".*".join(map(re.escape, x.split("…")))), x) for x in expected if "…" in x]
    lines = [next((kept for p, kept in wild if p.fullmatch(line)), line) for line in actual.splitlines()]
    return "".join(line + "\n" for line in lines)


def test_wildcards_stand_only_for_library_wording() -> None:
    for out in ERR.glob("*.out"):
        for line in out.read_text(encoding="utf-8").splitlines():
            assert "…" not in line or re.search(r": … \[[a-z-]+\]$", line), f"{out.name}: {line}"


def test_every_rule_has_a_golden_case() -> None:
    outputs = "".join(c.with_suffix(".out").read_text(encoding="utf-8") for c in ERR_CASES)
    covered = set(re.findall(r"\[([a-z-]+)\]$", outputs, re.MULTILINE))
    assert set(RULE_DOCS) - {"io"} <= covered


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_capability_row_has_a_golden_case_that_reports_it(provider: str) -> None:
    """Each row of a platform's capability table that ``validate`` reports has an error case naming it,
    whose output carries the row's rule, with that provider named."""
    table = platform(provider)
    reported = {row.id: row.rule for row in table.constraints if row.reported}
    if table.cannot:
        reported[f"{provider}/cannot"] = "provider"
    shown = {row: case for case in ERR_CASES for row in _rows(case)}
    assert set(reported) <= set(shown), set(reported) - set(shown)
    for row, rule in reported.items():
        output = shown[row].with_suffix(".out").read_text(encoding="utf-8")
        assert re.search(rf'provider "{provider}" .*\[{rule}\]$', output, re.MULTILINE), row


def test_every_golden_output_has_its_case() -> None:
    assert {p.stem for p in ERR.glob("*.out")} == {c.stem for c in ERR_CASES}


OK_CASES = sorted(OK.glob("*.yaml"))


@pytest.mark.parametrize("case", OK_CASES, ids=[c.stem for c in OK_CASES])
def test_ok_case_validates_clean(case: Path) -> None:
    result = load_flow(case)
    assert result.diagnostics == ()
    assert result.flow is not None


BUNDLED = sorted(FLOWS.rglob("*.yaml"))  # examples/ too


@pytest.mark.parametrize("flow", BUNDLED, ids=[f.stem for f in BUNDLED])
def test_bundled_flow_validates_clean(flow: Path) -> None:
    result = load_flow(flow)
    assert result.diagnostics == ()


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("flow", BUNDLED, ids=[f.stem for f in BUNDLED])
def test_bundled_flow_runs_on_every_provider(flow: Path, provider: str) -> None:
    """Every bundled flow passes each platform's checks: what it does, it may do there, where it does it."""
    if load_flow(flow).flow is None:
        pytest.skip("a file of shared states: checked through the flows that include it")
    result = load_flow(flow, platform=platform(provider))
    assert result.diagnostics == ()
