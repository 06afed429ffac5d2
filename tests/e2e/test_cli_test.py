"""`flowengine test` as CI runs it: files without scenarios, coverage and --min-coverage, the text, JSON
and JUnit reports, the two time limits, re-entries in expectations, colour only on a terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from flowengine.cli import cli

ROOT = Path(__file__).resolve().parents[2]
FLOWENGINE = [sys.executable, "-m", "flowengine"]

PICK = """\
flow: pick
version: 1
initial: answering
on:
  call.finished: {target: done, when: "event.call == 'caller'"}
states:
  answering:
    entry: [{answer: {call: caller}}]
    on: {call.answered: menu}
    after: {10s: done}
  menu:
    entry:
      - capture_dtmf: {call: caller, max_digits: 1, timeout: 5s, prompt: Press 1 to accept.}
    on:
      dtmf.captured:
        - {target: accepted, when: "event.digits == '1'"}
        - declined
    after: {30s: done}
  accepted:
    entry: [{say: {call: caller, text: Accepted.}}]
    on: {say.finished: bye}
    after: {30s: bye}
  declined:
    entry: [{say: {call: caller, text: Declined.}}]
    on: {say.finished: bye}
    after: {30s: bye}
  bye:
    type: final
    entry: [{hangup: {call: caller}}]
  done:
    type: final
"""

SCENARIOS = """\
scenarios:
  presses-1:
    caller: {press: [[1s, "1"]], hangup_after: 2m}
    expect: {state: bye, status: ended, states: [answering, menu, accepted, bye]}
  presses-2:
    caller: {press: [[1s, "2"]], hangup_after: 2m}
    expect: {state: bye, status: ended, states: [answering, menu, declined, bye], visits: {accepted: 0}}
"""

# Waits without a timer for a hang-up that never comes, or re-enters itself every `every`.
LOOP = """\
flow: loop
version: 1
initial: answering
states:
  answering:
    entry: [{{answer: {{call: caller}}}}]
    on: {{call.answered: waiting}}
    after: {{10s: done}}
  waiting:
    on: {{call.finished: done}}
    after: {{{every}: waiting}}
  done:
    type: final
scenarios:
  nobody-hangs-up:
    expect: {{state: done}}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["test", *args])


def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLOWENGINE, "test", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **(env or {})},
    )


# -- files without scenarios ----------------------------------------------------------------------------
def test_a_file_without_scenarios_fails_the_run_unless_allowed(tmp_path: Path) -> None:
    empty = write(tmp_path, "empty.yaml", PICK)
    done = run(str(empty), "--color", "never")
    assert done.returncode == 1, done.stderr
    assert "no scenarios, so nothing was tested" in done.stdout and "--allow-empty" in done.stdout
    assert done.stderr.strip() == f"0 passed, 0 failed; 1 file with problems: {empty}"

    allowed = run(str(empty), "--allow-empty", "--color", "never")
    assert allowed.returncode == 0, allowed.stdout
    assert "- no scenarios, so nothing was tested" in allowed.stdout


def test_one_empty_file_among_tested_ones_still_fails(tmp_path: Path) -> None:
    write(tmp_path, "a_pick.yaml", PICK + SCENARIOS)
    write(tmp_path, "b_empty.yaml", PICK)
    result = invoke(str(tmp_path), "-p", "infobip", "--color", "never")
    assert result.exit_code == 1
    assert "2 passed, 0 failed; 1 file with problems:" in result.stderr and "b_empty.yaml" in result.stderr


# -- coverage -------------------------------------------------------------------------------------------
def test_coverage_per_flow_lists_what_was_never_entered_or_fired(tmp_path: Path) -> None:
    flow = write(tmp_path, "pick.yaml", PICK + SCENARIOS)
    result = invoke(str(flow), "-p", "infobip", "--color", "never")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "PASS presses-1 on infobip" in out and "PASS presses-2 on infobip" in out
    assert "coverage: states 5/6 (83.3%), transitions 5/10 (50.0%)" in out
    assert "states never entered: done" in out
    missed = out.split("transitions never fired:\n", 1)[1].splitlines()
    assert missed == [
        "      (any state): call.finished [when event.call == 'caller'] -> done (line 5)",
        "      answering: after 10s -> done (line 10)",
        "      menu: after 30s -> done (line 18)",
        "      accepted: after 30s -> bye (line 22)",
        "      declined: after 30s -> bye (line 26)",
    ]


def test_min_coverage_fails_a_flow_under_it(tmp_path: Path) -> None:
    flow = write(tmp_path, "pick.yaml", PICK + SCENARIOS)
    assert invoke(str(flow), "-p", "infobip", "--min-coverage", "50").exit_code == 0
    short = invoke(str(flow), "-p", "infobip", "--min-coverage", "60", "--color", "never")
    assert short.exit_code == 1
    assert "x coverage below --min-coverage 60%: states 83.3%, transitions 50.0%" in short.stdout
    assert short.stderr.startswith("2 passed, 0 failed; 1 file with problems")


def test_coverage_adds_up_over_both_platforms_and_scenarios(tmp_path: Path) -> None:
    one = write(tmp_path, "pick.yaml", PICK + SCENARIOS.split("  presses-2:")[0])
    result = invoke(str(one), "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    (file,) = doc["files"]
    assert [(s["scenario"], s["provider"]) for s in file["scenarios"]] == [
        ("presses-1", "infobip"), ("presses-1", "sinch"),
    ]
    assert file["coverage"]["states"] == {
        "covered": 4, "total": 6, "percent": 66.7, "missed": ["declined", "done"],
    }
    assert (file["coverage"]["transitions"]["covered"], file["coverage"]["transitions"]["total"]) == (3, 10)


# -- report formats -------------------------------------------------------------------------------------
def test_json_report(tmp_path: Path) -> None:
    wrong = SCENARIOS.replace("[answering, menu, declined, bye]", "[menu]")
    flow = write(tmp_path, "pick.yaml", PICK + wrong)
    result = invoke(str(flow), str(write(tmp_path, "empty.yaml", PICK)), "-p", "sinch", "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["passed"] is False and doc["min_coverage"] is None
    assert doc["summary"] == {"passed": 1, "failed": 1, "files": 2, "files_failed": 2}
    pick, empty = doc["files"]
    assert (pick["flow"], pick["passed"], pick["problems"]) == ("pick", False, [])
    failed = pick["scenarios"][1]
    assert failed["passed"] is False and failed["limit"] is None
    assert failed["states"] == ["answering", "menu", "declined", "bye"]
    assert failed["failures"] == [
        "went through states ['answering', 'menu', 'declined', 'bye'], expected ['menu']"
    ]
    assert empty["coverage"] is None and empty["scenarios"] == []
    assert empty["problems"][0].startswith("no scenarios")


def test_junit_report_is_xml_ci_systems_read(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", PICK + SCENARIOS.replace("visits: {accepted: 0}", "visits: {accepted: 1}"))
    write(tmp_path, "b.yaml", PICK)
    done = run(str(tmp_path), "--format", "junit", "--min-coverage", "90")
    assert done.returncode == 1, done.stderr
    root = ET.fromstring(done.stdout)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]
    a, b = suites
    # a: 2 scenarios x 2 platforms, presses-2 failing on both, and the coverage case.
    cases = a.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("pick.infobip", "presses-1"), ("pick.sinch", "presses-1"),
        ("pick.infobip", "presses-2"), ("pick.sinch", "presses-2"), ("pick", "coverage"),
    ]
    failures = [c.find("failure") for c in cases]
    assert [f is not None for f in failures] == [False, False, True, True, True]
    assert failures[2] is not None and failures[2].get("type") == "expectation"
    assert failures[2].get("message") == 'entered state "accepted" never, expected once'
    assert "FAIL presses-2 on infobip" in (failures[2].text or "")
    assert failures[4] is not None and "below --min-coverage 90%" in (failures[4].get("message") or "")
    props = {p.get("name"): p.get("value") for p in a.iter("property")}
    assert props == {"flow": "pick", "coverage.states": "83.3", "coverage.transitions": "50.0"}
    assert (a.get("tests"), a.get("failures"), a.get("errors"), a.get("skipped")) == ("5", "3", "0", "0")
    assert float(a.get("time") or 0) > 0
    # b: no scenarios is a failed case of its own.
    (case,) = b.findall("testcase")
    failure = case.find("failure")
    assert failure is not None and (failure.get("message") or "").startswith("no scenarios")
    assert (b.get("tests"), b.get("failures")) == ("1", "1")
    assert (root.get("tests"), root.get("failures")) == ("6", "4")
    assert sum(len(s.findall("testcase")) for s in suites) == int(root.get("tests") or 0)


def test_junit_marks_an_allowed_empty_file_skipped(tmp_path: Path) -> None:
    result = invoke(str(write(tmp_path, "empty.yaml", PICK)), "--format", "junit", "--allow-empty")
    assert result.exit_code == 0
    suite = ET.fromstring(result.stdout).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("1", "0", "1")


# -- limits ---------------------------------------------------------------------------------------------
def test_a_run_stopped_by_the_real_time_limit_says_so(tmp_path: Path) -> None:
    flow = write(tmp_path, "loop.yaml", LOOP.format(every="1s"))  # 14 400 steps to the virtual limit
    started = time.monotonic()
    done = run(str(flow), "-p", "infobip", "--real-limit", "1s", "--format", "json")
    assert done.returncode == 1, done.stderr
    assert time.monotonic() - started < 60
    (scenario,) = json.loads(done.stdout)["files"][0]["scenarios"]
    assert scenario["limit"] == "real-time"
    assert scenario["failures"][0].startswith(
        'hit the real-time limit: not over after 1 real second, in state "waiting", with virtual time at '
    )
    assert "of the 14400 seconds allowed" in scenario["failures"][0]
    assert "virtual-time limit" not in done.stdout


def test_a_run_stopped_by_the_virtual_time_limit_says_so(tmp_path: Path) -> None:
    flow = write(tmp_path, "loop.yaml", LOOP.format(every="1h"))
    result = invoke(str(flow), "-p", "infobip", "--virtual-limit", "3h", "--color", "never")
    assert result.exit_code == 1
    said = 'x hit the virtual-time limit: not over after 10800 virtual seconds, in state "waiting"'
    assert said in result.stdout
    assert "real-time limit" not in result.stdout
    assert result.stdout.count("waiting -> waiting (entered again)") == 3


# -- re-entries -----------------------------------------------------------------------------------------
def test_the_bundled_ivr_expects_its_menu_three_times() -> None:
    result = invoke(str(ROOT / "flows" / "ivr_menu.yaml"), "--format", "json")
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)["files"][0]["scenarios"]
    repeats = [r for r in runs if r["scenario"] == "no-key-pressed"]
    assert {r["provider"] for r in repeats} == {"infobip", "sinch"}
    assert all(r["states"].count("menu") == 3 and r["passed"] for r in repeats)


def test_a_wrong_count_of_re_entries_fails(tmp_path: Path) -> None:
    flow = (ROOT / "flows" / "ivr_menu.yaml").read_text()
    wrong = flow.replace("visits: {menu: 3, dialing_sales: 0}", "visits: {menu: 2}")
    assert wrong != flow
    result = invoke(str(write(tmp_path, "ivr.yaml", wrong)), "-p", "infobip", "--color", "never")
    assert result.exit_code == 1
    assert "FAIL no-key-pressed on infobip" in result.stdout
    assert 'x entered state "menu" 3 times, expected twice' in result.stdout
    assert "menu -> menu (entered again)" in result.stdout


# -- problems in the file itself ------------------------------------------------------------------------
def test_a_flow_that_does_not_load_fails_its_file_and_the_rest_still_runs(tmp_path: Path) -> None:
    write(tmp_path, "a_broken.yaml", PICK.replace("declined\n    after", "declned\n    after") + SCENARIOS)
    write(tmp_path, "b_pick.yaml", PICK + SCENARIOS)
    result = invoke(str(tmp_path), "-p", "infobip", "--color", "never")
    assert result.exit_code == 1
    assert "x the flow does not load: " in result.stdout and "declned" in result.stdout
    assert "`flowengine validate" in result.stdout
    assert "PASS presses-2 on infobip" in result.stdout


def test_a_flow_one_platform_cannot_run_fails_there_and_runs_on_the_other(tmp_path: Path) -> None:
    stops = PICK.replace("{say: {call: caller, text: Declined.}}", "{stop_play: {call: caller}}")
    result = invoke(str(write(tmp_path, "pick.yaml", stops + SCENARIOS)), "--color", "never")
    assert result.exit_code == 1
    assert "PASS presses-1 on infobip" in result.stdout and "presses-1 on sinch" not in result.stdout
    assert "  x cannot run on sinch: flows failed to load:\n    " in result.stdout
    assert 'provider "sinch" cannot perform action "stop_play"' in result.stdout


def test_an_expectation_naming_a_missing_state_fails(tmp_path: Path) -> None:
    typo = SCENARIOS.replace("visits: {accepted: 0}", "visits: {acepted: 0}")
    flow = write(tmp_path, "pick.yaml", PICK + typo)
    result = invoke(str(flow), "-p", "infobip", "--color", "never")
    assert result.exit_code == 1
    assert 'x expect names state "acepted", which the flow does not have' in result.stdout


# -- the command line -----------------------------------------------------------------------------------
def test_help_teaches_and_lists_the_exit_codes() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    text = result.stdout
    for needle in ("scenarios:", "visits: {menu: 3}", "--min-coverage", "--allow-empty", "--format",
                   "junit", "--real-limit", "--virtual-limit", "Exit codes:",
                   "0  every scenario passed", "1  a scenario failed", "2  usage error"):
        assert needle in text, needle


@pytest.mark.parametrize(
    "args",
    [("--min-coverage", "150"), ("--real-limit", "soon"), ("--virtual-limit", "0"), ("--format", "xml"),
     ("no/such/file.yaml",)],
)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    assert invoke(*args).exit_code == 2


def on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run with stdout on a pseudo-terminal; what it printed."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=follower, stderr=subprocess.DEVNULL, env=env)
        os.close(follower)
        chunks: list[bytes] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if not ready:
                # Ended: done once nothing is left to read (it may have written just before it ended).
                if proc.poll() is not None and not select.select([leader], [], [], 0)[0]:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=30)
        return b"".join(chunks).decode()
    finally:
        os.close(leader)


def test_colour_only_on_a_terminal(tmp_path: Path) -> None:
    flow = write(tmp_path, "pick.yaml", PICK + SCENARIOS)
    args = [*FLOWENGINE, "test", str(flow), "-p", "infobip"]
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    assert "\x1b[32mPASS\x1b[0m presses-1 on infobip" in on_a_terminal(args, env)
    assert "\x1b[" not in on_a_terminal(args, {**env, "NO_COLOR": "1"})
    piped = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert piped.returncode == 0 and "PASS presses-1 on infobip" in piped.stdout
    assert "\x1b[" not in piped.stdout + piped.stderr
