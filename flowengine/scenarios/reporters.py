"""Reporters for ``flowengine test``: text (for people), JSON (for tools), JUnit XML (for CI systems).

As for ``validate`` (``flowengine.flow.reporters``), each is a plain function registered in ``REPORTERS``
by format name; ``color`` only ever matters to the text one.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

from flowengine.scenarios.coverage import Coverage
from flowengine.scenarios.runner import ScenarioResult, states_entered
from flowengine.scenarios.suite import FileRun, TestRun
from flowengine.scenarios.timeline import format_result, paint, result_json

Reporter = Callable[[TestRun, bool, bool], str]  # (run, colour, verbose) -> output
MAX_ROWS = 200  # of a timeline shown for a failure


# -- text ------------------------------------------------------------------------------------------------
def report_text(run: TestRun, color: bool, verbose: bool) -> str:
    """Per file: a line per scenario run (the timeline of each failure, or of all with --verbose), the
    coverage with what was never entered or fired, and what else failed the file."""
    return "\n\n".join(_text_file(f, color, verbose) for f in run.files) + "\n"


def _text_file(file: FileRun, color: bool, verbose: bool) -> str:
    head = f"{file.path}" + (f" (flow {file.flow})" if file.flow else "")
    lines = [paint(head, "1", color)]
    for result in file.results:
        if verbose or not result.passed:
            lines.append(_indent(format_result(result, color=color, max_rows=MAX_ROWS)))
        else:
            mark, seconds = paint("PASS", "32", color), result.virtual_seconds
            lines.append(f"  {mark} {result.scenario.name} on {result.provider} ({seconds:.1f} virtual s)")
    if file.coverage is not None:
        lines += _text_coverage(file.coverage)
    lines += [f"  {paint('x', '31', color)} {problem}".replace("\n", "\n    ") for problem in file.problems]
    lines += [f"  - {note}" for note in file.notes]
    return "\n".join(lines)


def _text_coverage(c: Coverage) -> list[str]:
    states, transitions = len(c.states), len(c.transitions)
    lines = [
        f"  coverage: states {states - len(c.states_missed)}/{states} ({c.state_percent:.1f}%), "
        f"transitions {transitions - len(c.transitions_missed)}/{transitions} ({c.transition_percent:.1f}%)"
    ]
    if c.states_missed:
        lines.append("    states never entered: " + ", ".join(c.states_missed))
    if c.transitions_missed:
        lines.append("    transitions never fired:")
        lines += [f"      {t.label}" for t in c.transitions_missed]
    return lines


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


# -- JSON ------------------------------------------------------------------------------------------------
def report_json(run: TestRun, color: bool, verbose: bool) -> str:
    """``{passed, summary, min_coverage, files: [{path, flow, passed, problems, notes, coverage,
    scenarios: [...]}]}``; each scenario as ``flowengine simulate --format json`` prints it."""
    failed = sum(not r.passed for r in run.results)
    doc = {
        "passed": run.passed,
        "summary": {"passed": len(run.results) - failed, "failed": failed, "files": len(run.files),
                    "files_failed": sum(not f.passed for f in run.files)},
        "min_coverage": run.min_coverage,
        "files": [
            {
                "path": str(f.path),
                "flow": f.flow,
                "passed": f.passed,
                "problems": f.problems,
                "notes": f.notes,
                "coverage": f.coverage.to_json() if f.coverage is not None else None,
                "scenarios": [result_json(r) for r in f.results],
            }
            for f in run.files
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


# -- JUnit XML -------------------------------------------------------------------------------------------
# Not allowed in XML 1.0 even escaped; a platform's error text could carry one.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("?", text)


def report_junit(run: TestRun, color: bool, verbose: bool) -> str:
    """JUnit XML as CI systems read it (GitLab, Jenkins, GitHub test reporters): a ``testsuite`` per flow
    file, a ``testcase`` per scenario and platform with a ``failure`` when it failed; a file's own
    problems (no scenarios, coverage short of --min-coverage, a flow that does not load) are a failed
    ``testcase`` of their own, an allowed empty file a skipped one."""
    root = ET.Element("testsuites", name="flowengine test")
    for file in run.files:
        root.append(_suite(file))
    _count(root, root.findall("testsuite"))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite(file: FileRun) -> ET.Element:
    suite = ET.Element("testsuite", name=str(file.path))
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="flow", value=file.flow or "")
    if file.coverage is not None:
        ET.SubElement(props, "property", name="coverage.states", value=f"{file.coverage.state_percent:.1f}")
        ET.SubElement(
            props, "property", name="coverage.transitions", value=f"{file.coverage.transition_percent:.1f}"
        )
    classname = file.flow or str(file.path)
    for result in file.results:
        suite.append(_case(result, classname, str(file.path)))
    for problem in file.problems:
        case = ET.SubElement(suite, "testcase", classname=classname, name=_problem_name(problem),
                             file=str(file.path), time="0")
        ET.SubElement(case, "failure", message=_clean(problem), type="file")
    for note in file.notes:
        case = ET.SubElement(suite, "testcase", classname=classname, name="scenarios", file=str(file.path),
                             time="0")
        ET.SubElement(case, "skipped", message=_clean(note))
    if file.coverage is not None:
        out = ET.SubElement(suite, "system-out")
        out.text = _clean("\n".join(_text_coverage(file.coverage)))
    _count(suite, suite.findall("testcase"))
    return suite


def _problem_name(problem: str) -> str:
    if problem.startswith("coverage"):
        return "coverage"
    return "scenarios" if problem.startswith("no scenarios") else "flow"


def _case(result: ScenarioResult, classname: str, path: str) -> ET.Element:
    case = ET.Element(
        "testcase", classname=f"{classname}.{result.provider}", name=result.scenario.name, file=path,
        time=f"{result.real_seconds:.3f}",
    )
    if not result.passed:
        kind = f"{result.limit}-limit" if result.limit else "expectation"
        failure = ET.SubElement(case, "failure", message=_clean(result.failures[0]), type=kind)
        failure.text = _clean(format_result(result, max_rows=MAX_ROWS))
    else:
        out = ET.SubElement(case, "system-out")
        out.text = _clean("states: " + " -> ".join(states_entered(result.session)))
    return case


def _count(element: ET.Element, children: list[ET.Element]) -> None:
    """The tests/failures/errors/skipped/time attributes CI systems read, summed from the children."""
    if element.tag == "testsuite":
        cases = children
        failures = sum(c.find("failure") is not None for c in cases)
        skipped = sum(c.find("skipped") is not None for c in cases)
        tests = len(cases)
        seconds = sum(float(c.get("time", "0")) for c in cases)
    else:
        tests = sum(int(s.get("tests", "0")) for s in children)
        failures = sum(int(s.get("failures", "0")) for s in children)
        skipped = sum(int(s.get("skipped", "0")) for s in children)
        seconds = sum(float(s.get("time", "0")) for s in children)
    element.set("tests", str(tests))
    element.set("failures", str(failures))
    element.set("errors", "0")
    element.set("skipped", str(skipped))
    element.set("time", f"{seconds:.3f}")


REPORTERS: dict[str, Reporter] = {"text": report_text, "json": report_json, "junit": report_junit}
