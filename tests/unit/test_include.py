"""``include:``: shared states, handlers and variables merged from files of their own, with every
diagnostic about them pointing into the file that holds them."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowengine.flow.loader import load_flow
from flowengine.flow.model import Pos
from flowengine.scenarios.suite import STATES_FILE, run_files

CLOSING = """\
vars:
  farewell: Goodbye.
on:
  call.finished: {target: done, when: "event.call == 'caller'"}
states:
  goodbye:
    entry:
      - say: {call: caller, text: "{{ vars.farewell }}"}
    on: {say.finished: done}
    after: {10s: done}
  done: {type: final}
"""
FLOW = """\
flow: main
include: [shared/closing.yaml]
initial: start
states:
  start:
    entry:
      - answer: {call: caller}
    on: {call.answered: goodbye}
    after: {10s: goodbye}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "closing.yaml").write_text(CLOSING, encoding="utf-8")
    (tmp_path / "main.yaml").write_text(FLOW, encoding="utf-8")
    return tmp_path


def test_included_states_handlers_and_vars_join_the_flow(folder: Path) -> None:
    result = load_flow(folder / "main.yaml")
    assert result.diagnostics == ()
    flow = result.flow
    assert flow is not None
    assert list(flow.states) == ["start", "goodbye", "done"]
    assert set(flow.on) == {"call.finished"} and flow.vars == {"farewell": "Goodbye."}
    say = flow.states["goodbye"].entry[0]
    shared = str(folder / "shared" / "closing.yaml")
    assert (say.pos, say.pos.file if say.pos else None) == (Pos(8, 9), shared)
    start = flow.states["start"].entry[0].pos
    assert start is not None and (start.line, start.file) == (7, "")  # the flow's own file
    assert result.included == {shared: CLOSING}


def test_a_problem_in_an_included_file_is_reported_there(folder: Path) -> None:
    broken = CLOSING.replace("{say.finished: done}", "{say.finished: dnoe}")
    (folder / "shared" / "closing.yaml").write_text(broken, encoding="utf-8")
    result = load_flow(folder / "main.yaml", source="main.yaml")
    assert [(d.path, d.line, d.col, d.rule) for d in result.errors] == [
        (str(Path("shared/closing.yaml")), 9, 24, "target")]


def test_names_defined_twice_are_errors_wherever_they_are(folder: Path) -> None:
    (folder / "shared" / "more.yaml").write_text("states:\n  goodbye: {type: final}\n", encoding="utf-8")
    text = FLOW.replace("[shared/closing.yaml]", "[shared/closing.yaml, shared/more.yaml]")
    (folder / "main.yaml").write_text(text + "  done: {type: final}\n", encoding="utf-8")
    result = load_flow(folder / "main.yaml", source="main.yaml")
    found = [(d.path, d.line, d.message) for d in result.errors]
    assert found == [
        ("shared/closing.yaml", 11, 'state "done" is defined twice: here and at main.yaml:10:3; rename one'),
        ("shared/more.yaml", 2, 'state "goodbye" is defined twice: here and at shared/closing.yaml:6:3; '
                                "rename one"),
    ]


def test_a_flow_read_from_text_includes_relative_to_the_working_directory(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(folder)
    assert load_flow(FLOW).diagnostics == ()


def test_a_states_file_on_its_own_is_checked_for_its_shape_and_expressions(folder: Path) -> None:
    shared = folder / "shared" / "closing.yaml"
    result = load_flow(shared)
    assert (result.flow, result.diagnostics) == (None, ())  # targets like "done" may live in the includer
    shared.write_text(CLOSING.replace("vars.farewell }}", "vars.farewell | uppper }}"), encoding="utf-8")
    assert [(d.line, d.rule) for d in load_flow(shared).diagnostics] == [(8, "filter")]
    shared.write_text(CLOSING.replace("type: final", "type: finale"), encoding="utf-8")
    assert [(d.line, d.rule) for d in load_flow(shared).diagnostics] == [(11, "schema")]


async def test_flowengine_test_notes_a_states_file_and_plays_the_flow(folder: Path) -> None:
    (folder / "main.yaml").write_text(
        FLOW + "scenarios:\n  bye:\n    caller: {hangup_after: 20s}\n"
        "    expect: {state: done, states: [start, goodbye, done]}\n",
        encoding="utf-8")
    run = await run_files([folder / "main.yaml", folder / "shared" / "closing.yaml"], ["infobip"])
    assert run.passed, [(f.path, f.problems, [r.failures for r in f.results]) for f in run.files]
    assert run.files[1].notes == [STATES_FILE] and not run.files[1].results
    assert len(run.files[0].results) == 1
