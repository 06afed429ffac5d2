"""A ``flowengine test`` run: every scenario of every flow file on the chosen platforms, what each file
lacks (scenarios, a flow that loads, enough coverage), and the verdict. The reporters render it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowengine.errors import FlowEngineError
from flowengine.flow.loader import load_flow
from flowengine.flow.model import Flow
from flowengine.runtime.engine import FAILED_STATE
from flowengine.scenarios.coverage import Coverage, measure
from flowengine.scenarios.model import Scenario, load_scenarios
from flowengine.scenarios.runner import Limits, ScenarioResult, run_scenario

STATES_FILE = "a file of shared states (include:), tested through the flows that include it"
NO_SCENARIOS = "no scenarios, so nothing was tested: add a `scenarios:` section (or pass --allow-empty)"


@dataclass
class FileRun:
    """One flow file's part of the run."""

    path: Path
    flow: str | None = None  # the flow's name, once it loads
    results: list[ScenarioResult] = field(default_factory=list)
    coverage: Coverage | None = None  # None when nothing ran
    problems: list[str] = field(default_factory=list)  # what fails the file besides its scenarios
    notes: list[str] = field(default_factory=list)  # said, but failing nothing

    @property
    def passed(self) -> bool:
        return not self.problems and all(r.passed for r in self.results)


@dataclass
class TestRun:
    files: list[FileRun]
    min_coverage: float | None = None

    @property
    def results(self) -> list[ScenarioResult]:
        return [r for f in self.files for r in f.results]

    @property
    def passed(self) -> bool:
        return all(f.passed for f in self.files)

    def summary(self) -> str:
        """``N passed, N failed``, then what else failed the run."""
        failed = sum(not r.passed for r in self.results)
        text = f"{len(self.results) - failed} passed, {failed} failed"
        troubled = [str(f.path) for f in self.files if f.problems]
        if troubled:
            text += f"; {_plural(len(troubled), 'file')} with problems: {', '.join(troubled)}"
        return text


async def run_files(
    paths: Sequence[Path],
    providers: Sequence[str],
    *,
    allow_empty: bool = False,
    min_coverage: float | None = None,
    limits: Limits | None = None,
    http_allow: tuple[str | Mapping[str, Any], ...] = (),
) -> TestRun:
    run = TestRun([], min_coverage)
    for path in paths:
        run.files.append(await _run_file(path, providers, allow_empty, min_coverage, limits, http_allow))
    return run


async def _run_file(
    path: Path, providers: Sequence[str], allow_empty: bool, min_coverage: float | None,
    limits: Limits | None, http_allow: tuple[str | Mapping[str, Any], ...] = (),
) -> FileRun:
    file = FileRun(path)
    flow = _load(file)
    if flow is None:
        return file
    try:
        scenarios = load_scenarios(path)
    except FlowEngineError as exc:
        file.problems.append(str(exc))
        return file
    if not scenarios:
        (file.notes if allow_empty else file.problems).append(NO_SCENARIOS)
        return file
    refused: set[str] = set()
    for scenario in scenarios.values():
        for provider in (p for p in providers if p not in refused):
            try:
                result = await run_scenario(provider, path, scenario, limits=limits, http_allow=http_allow)
            except FlowEngineError as exc:  # e.g. the service refuses a flow this platform cannot run
                refused.add(provider)
                file.problems.append(f"cannot run on {provider}: {exc}")
                continue
            result.failures.extend(unknown_states(flow, scenario))
            file.results.append(result)
    file.coverage = measure(flow, [r.session for r in file.results])
    if min_coverage is not None and file.coverage.below(min_coverage):
        c = file.coverage
        file.problems.append(
            f"coverage below --min-coverage {min_coverage:g}%: states {c.state_percent:.1f}%, "
            f"transitions {c.transition_percent:.1f}%"
        )
    return file


def _load(file: FileRun) -> Flow | None:
    loaded = load_flow(file.path, source=str(file.path))
    errors = [d for d in loaded.diagnostics if d.severity == "error"]
    if loaded.flow is None and not errors:  # a file of shared states: played through the flows including it
        file.notes.append(STATES_FILE)
        return None
    if loaded.flow is None or errors:
        first = errors[0] if errors else None
        where = f": {first.path}:{first.line}:{first.col}: {first.message}" if first else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        file.problems.append(
            f"the flow does not load{where}{more}; `flowengine validate {file.path}` lists every problem"
        )
        return None
    file.flow = loaded.flow.name
    return loaded.flow


def unknown_states(flow: Flow, scenario: Scenario) -> list[str]:
    """Expectations naming states the flow does not have (a typo there could never be met)."""
    return [
        f'expect names state "{name}", which the flow does not have'
        for name in dict.fromkeys(scenario.expect.states_named())
        if name not in flow.states and name != FAILED_STATE  # where an unhandled failure leaves it
    ]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
