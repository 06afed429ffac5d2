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
from flowengine.flow.vocabulary import ACTIONS

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
    result = load_flow(
        path, source=_relative(path), capabilities=capabilities, provider=options.get("provider")
    )
    return report_text(result.diagnostics, {}, False)


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


def _capabilities(provider: str) -> frozenset[str] | None:
    try:
        module = __import__(f"flowengine.providers.{provider}.capabilities", fromlist=["CAPABILITIES"])
    except ModuleNotFoundError:
        return None
    return frozenset(module.CAPABILITIES)


@pytest.mark.parametrize("provider", ["infobip", "sinch"])
@pytest.mark.parametrize("flow", BUNDLED, ids=[f.stem for f in BUNDLED])
def test_bundled_flow_on_a_provider_reports_exactly_what_it_cannot_do(flow: Path, provider: str) -> None:
    capabilities = _capabilities(provider)
    if capabilities is None:
        pytest.skip(f"{provider} declares no capabilities yet")
    if load_flow(flow).flow is None:
        pytest.skip("a file of shared states: checked through the flows that include it")
    result = load_flow(flow, capabilities=capabilities, provider=provider)
    assert result.flow is not None or result.errors
    used = {action.name for _, action in load_flow(flow).flow.actions()}  # type: ignore[union-attr]
    missing = {name for name in used if name in ACTIONS and not ACTIONS[name].pure and name != "http"}
    missing -= capabilities
    reported = {re.search(r'action "([a-z_]+)"', d.message).group(1) for d in result.diagnostics}  # type: ignore[union-attr]
    assert reported == missing
    assert all(d.rule == "provider" for d in result.diagnostics)
