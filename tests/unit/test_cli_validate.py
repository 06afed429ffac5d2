"""``flowengine validate`` and ``flowengine schema`` through click's runner, and once as a real process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from flowengine.cli import cli
from flowengine.flow import source
from flowengine.flow.schema import schema_json

ROOT = Path(__file__).resolve().parents[2]
GOOD = """\
flow: good
initial: start
states:
  start:
    entry: [{answer: {call: caller}}]
    on: {call.answered: done}
    after: {10s: done}
  done: {type: final}
"""
WARNS = GOOD.replace("    after: {10s: done}\n", "")
BAD = GOOD.replace("call.answered: done", "call.answered: dnoe")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "flows" / "nested").mkdir(parents=True)
    (tmp_path / "flows" / "good.yaml").write_text(GOOD)
    (tmp_path / "flows" / "nested" / "bad.yml").write_text(BAD)
    (tmp_path / "flows" / "notes.txt").write_text("not a flow")
    (tmp_path / "warns.yaml").write_text(WARNS)
    return tmp_path


def _run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_a_clean_file_exits_0_with_a_summary_on_stderr(tree: Path) -> None:
    code, out, err = _run("validate", str(tree / "flows" / "good.yaml"))
    assert (code, out, err) == (0, "", "no problems in 1 file\n")


def test_a_folder_is_searched_recursively_and_problems_exit_1(tree: Path) -> None:
    code, out, err = _run("validate", str(tree / "flows"))
    assert code == 1
    bad = tree / "flows" / "nested" / "bad.yml"
    assert out == f'{bad}:6:25: error: undefined state "dnoe"; did you mean "done"? [target]\n'
    assert err == "1 error in 2 files\n"


def test_without_a_path_the_flows_folder_is_used(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    code, out, _ = _run("validate")
    assert code == 1
    assert out.startswith("flows/nested/bad.yml:6:25: error:")


def test_without_a_path_or_a_flows_folder_it_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = _run("validate")
    assert code == 2
    assert "no PATH given and there is no flows/ folder here" in err


def test_a_folder_with_no_flow_files_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a flow", encoding="utf-8")
    code, out, err = _run("validate", str(tmp_path))
    assert code == 2 and out == ""
    assert f"no flow files (*.yaml, *.yml) in the folder {tmp_path}" in err


def test_a_missing_path_is_a_usage_error() -> None:
    code, _, err = _run("validate", "does/not/exist.yaml")
    assert code == 2
    assert "does not exist" in err


def test_warnings_pass_unless_strict(tree: Path) -> None:
    path = str(tree / "warns.yaml")
    code, out, err = _run("validate", path)
    assert code == 0
    assert (
        out == f'{path}:4:3: warning: state "start" waits for events but has no "after" timer: a lost event '
        "would leave the session stuck [no-timeout]\n"
    )
    assert err == "1 warning in 1 file\n"
    assert _run("validate", "--strict", path)[0] == 1


def test_quiet_drops_the_summary(tree: Path) -> None:
    assert _run("validate", "-q", str(tree / "flows" / "good.yaml")) == (0, "", "")


def test_stdin_is_read_for_dash() -> None:
    code, out, _ = _run("validate", "-", stdin=BAD)
    assert code == 1
    assert out.startswith("<stdin>:6:25: error: undefined state")


def test_json_format(tree: Path) -> None:
    code, out, err = _run("validate", "--format", "json", str(tree / "flows"))
    assert code == 1 and err == ""
    (row,) = json.loads(out)
    assert row == {
        "path": str(tree / "flows" / "nested" / "bad.yml"),
        "line": 6,
        "col": 25,
        "severity": "error",
        "message": 'undefined state "dnoe"; did you mean "done"?',
        "rule": "target",
    }


def test_github_format_escapes_workflow_command_properties() -> None:
    code, out, _ = _run("validate", "--format", "github", "-", stdin=BAD)
    assert code == 1
    assert out == (
        "::error file=<stdin>,line=6,col=25,title=flowengine [target]::"
        'undefined state "dnoe"; did you mean "done"?\n'
    )


def test_color_always_shows_the_source_line_and_a_caret() -> None:
    code, out, _ = _run("validate", "--color", "always", "-", stdin=BAD)
    assert code == 1
    assert "\x1b[" in out
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in out.splitlines()]
    assert lines[0] == '<stdin>:6:25: error: undefined state "dnoe"; did you mean "done"? [target]'
    assert lines[1] == "    6 |     on: {call.answered: dnoe}"
    caret_line = lines[2]
    assert caret_line.index("^") - caret_line.index("| ") - 2 == 24  # column 25, 1-based


def test_never_coloured_when_piped_even_without_no_color() -> None:
    _, out, _ = _run("validate", "-", stdin=BAD)
    assert "\x1b[" not in out


def test_provider_capabilities_are_checked() -> None:
    deafen = GOOD.replace(
        "entry: [{answer: {call: caller}}]",
        "entry: [{answer: {call: caller}}, {conference_create: {as: room}}, "
        "{deafen: {conference: room, call: caller}}]",
    )
    code, out, _ = _run("validate", "--provider", "sinch", "-q", "-", stdin=deafen)
    assert code == 1
    assert 'provider "sinch" cannot perform action "deafen" [provider]' in out
    code, out, _ = _run("validate", "--provider", "infobip", "-q", "-", stdin=deafen)
    assert (code, out) == (0, "")


def test_provider_places_parameters_and_timeouts_are_checked() -> None:
    """validate --provider reads the platform's capability table: where an action may run (Sinch takes
    a conference join only in a callback's reply), which values it takes, what timeouts it holds."""
    late = """\
flow: late
initial: start
states:
  start:
    entry: [{answer: {call: caller}}, {conference_create: {as: room}}]
    after: {10s: joining}
  joining:
    entry: [{conference_join: {conference: room, call: caller}}]
    on: {participant.joined: done}
    after: {5s: done}
  done: {type: final}
"""
    code, out, _ = _run("validate", "--provider", "sinch", "-q", "-", stdin=late)
    assert code == 1 and '"conference_join" only in the reply' in out and "[provider-place]" in out
    code, out, _ = _run("validate", "--provider", "infobip", "-q", "-", stdin=late)
    assert (code, out) == (0, "")


def test_list_rules() -> None:
    code, out, _ = _run("validate", "--list-rules")
    assert code == 0
    assert "unhandled-failure" in out and "duplicate-key" in out


def test_help_teaches_exit_codes_and_examples() -> None:
    code, out, _ = _run("validate", "--help")
    assert code == 0
    assert "Exit codes:" in out and "flowengine validate --provider sinch flows/" in out


def test_an_internal_error_exits_3_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    # a foreign library failing unexpectedly: PyYAML's loader, which the reader makes for each text
    monkeypatch.setattr(source, "_LOADER", broken)
    code, out, err = _run("validate", "-", stdin=GOOD)
    assert (code, out) == (3, "")
    assert err == "flowengine validate: internal error: RuntimeError: boom\n"
    code, _, err = _run("validate", "--debug", "-", stdin=GOOD)
    assert code == 3
    assert "Traceback" in err


def test_schema_command_prints_the_schema(tmp_path: Path) -> None:
    code, out, _ = _run("schema")
    assert (code, out) == (0, schema_json())
    assert json.loads(_run("schema", "--indent", "0")[1]) == json.loads(schema_json())
    target = tmp_path / "flow.schema.json"
    assert _run("schema", "-o", str(target))[0] == 0
    assert target.read_text() == schema_json()


def test_python_dash_m_in_a_real_process(tree: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "flowengine", "validate", "flows"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert (
        done.stdout
        == 'flows/nested/bad.yml:6:25: error: undefined state "dnoe"; did you mean "done"? [target]\n'
    )
    assert done.stderr == "1 error in 2 files\n"


def test_the_pre_commit_hook_is_declared() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "flowengine-validate"
    assert hook["entry"] == "flowengine validate"
    assert hook["language"] == "python"
    # Flow files only (tests/e2e/test_precommit_hook.py runs it with pre-commit itself).
    assert hook["files"] == r"(^|/)flows/.+\.ya?ml$|\.flow\.ya?ml$"
    assert hook["types"] == ["yaml"]
