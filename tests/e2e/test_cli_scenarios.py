"""The commands `make run` relies on: every bundled flow's scenarios pass on both simulated platforms."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from flowengine.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def test_every_bundled_scenario_passes_on_both_platforms() -> None:
    result = CliRunner().invoke(cli, ["test", str(ROOT / "flows"), "--format", "json"])
    assert result.exit_code == 0, result.output
    runs = [run for file in json.loads(result.stdout)["files"] for run in file["scenarios"]]
    assert {(r["scenario"], r["provider"]) for r in runs} >= {
        (name, provider)
        for name in ("callee-answers", "callee-no-answer", "callee-busy", "caller-hangs-up")
        for provider in ("infobip", "sinch")
    }
    reminder = {(r["scenario"], r["provider"]) for file in json.loads(result.stdout)["files"]
                if file["path"].endswith("appointment_reminder.yaml") for r in file["scenarios"]}
    assert reminder == {  # the outbound flow's scenarios, started through the API
        (name, provider)
        for name in ("confirms", "cancels", "no-input-then-confirms", "no-input-twice", "hangs-up",
                     "hangs-up-at-once", "machine", "busy", "no-answer", "crm-fails")
        for provider in ("infobip", "sinch")
    }
    assert all(r["passed"] for r in runs), [r for r in runs if not r["passed"]]


def test_a_failed_expectation_exits_1(tmp_path: Path) -> None:
    flow = (ROOT / "flows" / "two_party_conference.yaml").read_text()
    wrong = flow.replace("    expect:\n      state: abandoned", "    expect:\n      state: connected")
    assert wrong != flow
    (tmp_path / "wrong.yaml").write_text(wrong)
    result = CliRunner().invoke(
        cli, ["test", str(tmp_path / "wrong.yaml"), "-p", "infobip", "--color", "never"]
    )
    assert result.exit_code == 1
    assert "  FAIL caller-hangs-up on infobip" in result.stdout
    assert 'ended in state "abandoned", expected "connected"' in result.stdout


REMINDER = ROOT / "flows" / "appointment_reminder.yaml"


def test_an_outbound_scenario_s_http_request_that_differs_fails_naming_it(tmp_path: Path) -> None:
    flow = REMINDER.read_text()
    wrong = flow.replace("json: {result: voicemail, attempts: 0}", "json: {result: confirmed, attempts: 0}")
    assert wrong != flow
    (tmp_path / "wrong.yaml").write_text(wrong)
    result = CliRunner().invoke(cli, ["test", str(tmp_path / "wrong.yaml"), "--color", "never"])
    assert result.exit_code == 1
    for provider in ("infobip", "sinch"):
        assert f"  FAIL machine on {provider}" in result.stdout
    assert ("http request 1 of 1 (POST https://crm.example.com/reminders/results) is not expect.http[0] "
            '(POST https://crm.example.com/*): json.result: was "voicemail", expected "confirmed"'
            ) in result.stdout
    assert "PASS confirms on sinch" in result.stdout


def test_simulate_plays_an_outbound_scenario_through_the_api() -> None:
    result = CliRunner().invoke(cli, ["simulate", str(REMINDER), "-s", "machine", "-p", "all",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)
    assert [(r["provider"], r["passed"], r["state"]) for r in runs] == [
        ("infobip", True, "done"), ("sinch", True, "done")]
    for run in runs:
        assert run["states"] == ["calling", "voicemail", "reporting", "done"]
        assert run["timeline"][0]["text"].startswith("start")  # POST /api/calls: the start and its dial
        (call,) = run["http"]
        assert call["method"] == "POST" and call["json"] == {"appointment": "A-1234", "result": "voicemail",
                                                              "attempts": 0}


def test_a_scenario_that_starts_otherwise_than_its_flow_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "caller.yaml").write_text(_with_caller(REMINDER.read_text()))
    result = CliRunner().invoke(cli, ["simulate", str(tmp_path / "caller.yaml"), "-s", "busy"])
    assert result.exit_code == 2
    assert 'scenario "busy": the flow starts by dialling (start: outbound)' in result.stderr
    assert "start: {outbound: {to:" in result.stderr


def _with_caller(flow: str) -> str:
    """The reminder with its busy scenario started by an inbound caller instead of the API."""
    head, busy = flow.split("  busy:\n", 1)
    body, rest = busy.split("\n  no-answer:", 1)
    body = body.replace("    start: *start\n", '    caller: {from: "447700900001"}\n')
    return f"{head}  busy:\n{body}\n  no-answer:{rest}"


def test_unknown_scenario_is_a_usage_error() -> None:
    result = CliRunner().invoke(
        cli, ["simulate", str(ROOT / "flows" / "two_party_conference.yaml"), "-s", "nope"]
    )
    assert result.exit_code == 2
    assert 'no scenario "nope"' in result.stderr and "callee-answers" in result.stderr


def test_simulate_prints_a_timeline_from_a_real_process() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "flowengine",
            "simulate",
            "flows/two_party_conference.yaml",
            "-s",
            "callee-no-answer",
            "-p",
            "sinch",
            "--wire",
            "--color",
            "never",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("PASS callee-no-answer on sinch")
    assert "dialing -> callee_unavailable" in out
    assert "wire: POST /calling/v1/callouts -> 200" in out
    assert "1 passed, 0 failed" in done.stderr


async def test_scenario_runs_keep_every_step_of_the_trace() -> None:
    # Sessions keep a bounded trace in a service; a scenario's timeline needs every step.
    from flowengine.runtime.session import TRACE_LIMIT
    from flowengine.scenarios.stack import FULL_TRACE, running_stack

    async with running_stack("infobip", ROOT / "flows" / "moderated_conference.yaml") as stack:
        limits = {e.engine.trace_limit for e in stack.service.dispatcher.executors.values()}
    assert limits == {FULL_TRACE} and FULL_TRACE > TRACE_LIMIT


SUMMARY = re.compile(
    r"^(PASS|FAIL)  (?P<name>[a-z-]+) +(?P<provider>infobip|sinch) +(?P<state>\w+) \((?P<status>\w+)\) +"
    r"(?P<seconds>\d+\.\d) virtual s  (?P<commands>\d+) commands?( \(\d+ failed\))?$"
)


def test_simulate_prints_one_summary_line_per_run_and_the_timeline_only_with_v() -> None:
    flow = str(ROOT / "flows" / "two_party_conference.yaml")
    quiet = CliRunner().invoke(cli, ["simulate", flow, "--provider", "all", "--color", "never"])
    assert quiet.exit_code == 0, quiet.output
    lines = quiet.stdout.splitlines()
    matches = [SUMMARY.match(line) for line in lines]
    assert all(matches) and len(lines) == 8, lines
    runs = {(m["name"], m["provider"]): m for m in matches if m}
    assert set(runs) == {(name, provider) for provider in ("infobip", "sinch")
                         for name in ("callee-answers", "callee-no-answer", "callee-busy", "caller-hangs-up")}
    hung_up = runs[("caller-hangs-up", "infobip")]
    assert (hung_up["state"], hung_up["status"], hung_up["seconds"]) == ("abandoned", "ended", "13.1")
    # answer, conference_create, conference_join, say, hold, conference_dial, hangup
    assert hung_up["commands"] == "7"
    assert "8 passed, 0 failed" in quiet.stderr
    assert "no transition" not in quiet.output and "unmatched" not in quiet.output

    verbose = CliRunner().invoke(cli, ["simulate", flow, "-s", "callee-busy", "-v", "--color", "never"])
    assert verbose.exit_code == 0, verbose.output
    assert verbose.stdout.startswith("PASS callee-busy on infobip: ")
    assert "in callee_unavailable: no transition (unmatched)" in verbose.stdout
    assert "dialing -> callee_unavailable" in verbose.stdout


def test_a_failed_run_shows_its_timeline_without_the_unmatched_events(tmp_path: Path) -> None:
    flow = (ROOT / "flows" / "two_party_conference.yaml").read_text()
    wrong = tmp_path / "wrong.yaml"
    expected = "    expect:\n      state: "
    wrong.write_text(flow.replace(expected + "abandoned", expected + "connected"))
    result = CliRunner().invoke(cli, ["simulate", str(wrong), "-s", "caller-hangs-up", "--color", "never"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert SUMMARY.match(lines[0]) and lines[0].startswith("FAIL  caller-hangs-up")
    assert "12.100s  call.finished              dialing -> abandoned" in result.stdout
    assert "no transition" not in result.stdout
    assert "events without a transition left out; -v shows them" in result.stdout
    assert lines[-1] == '  x ended in state "abandoned", expected "connected"'
