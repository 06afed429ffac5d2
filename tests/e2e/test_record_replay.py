"""Record and replay end to end, on both platforms: the engine (``record:`` set) and the simulator as real
aiohttp servers on 127.0.0.1 in virtual time. A call is recorded; the replay file holds no caller number
and no secret; ``flowengine replay`` finds nothing changed against the same flow (exit 0) and says where a
changed flow's commands diverge (exit 1). Sessions the API started and steered are recorded and replayed
too."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from flowengine.config import RecordSettings
from flowengine.recordings import fileformat as ff
from flowengine.runtime.outbound import START
from flowengine.scenarios.model import parse_scenario
from flowengine.scenarios.runner import play
from flowengine.scenarios.stack import Stack, provider_settings, running_stack

from .conftest import FLOW, until
from .outbound import CUSTOMER, REMINDER, outbound

PROVIDERS = ["infobip", "sinch"]
# The caller's number is nobody's to keep; the callee's is written in the flow.
CALLER, CALLEE = "447700900001", "447415784323"
TALK = {"caller": {"from": CALLER, "hangup_after": "45s"}, "parties": {CALLEE: {"answer_after": "3s"}}}


def secrets_of(stack: Stack) -> list[str]:
    """Every credential of this run: the platform's API key or application secret, the webhooks' signing
    secret, the engine's API token."""
    settings = provider_settings(stack.simulator, stack.simulator_url)
    found = [str(v) for k, v in settings.items() if k in ("api_key", "application_secret",
                                                            "webhook_hmac_secret")]
    return [*found, stack.api_token]


async def record_call(provider: str, folder: Path) -> tuple[Path, list[str]]:
    scenario = parse_scenario("record", TALK)
    settings = RecordSettings(folder)
    async with running_stack(provider, FLOW, parties=scenario.parties,
                             service_options={"record": settings}) as stack:
        result = await play(stack, scenario)
        assert result.passed, result.failures
        recorder = stack.service.recorder
        assert recorder is not None

        async def written() -> bool:
            return bool(recorder.written)

        await until(written, "the replay file")
        return recorder.written[0], secrets_of(stack)


async def replay(*args: str) -> tuple[int, str]:
    """``flowengine replay`` as a process of its own: (exit code, what it printed)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flowengine", "replay", *args, "--color", "never",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert "Traceback" not in err.decode(), err.decode()
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_recorded_call_holds_no_number_or_secret_and_replays_the_same(
    provider: str, tmp_path: Path
) -> None:
    path, secrets = await record_call(provider, tmp_path / "recordings")
    text = path.read_text()
    assert CALLER not in text and CALLER not in path.name
    for secret in secrets:
        assert secret not in text
    assert "authorization" not in text.lower() and "x-timestamp" not in text.lower()
    document = json.loads(text)
    assert document["format"] == "flowengine-replay/1" and document["complete"] is True
    assert document["end"] == {"state": "closing", "status": "ended"}
    assert document["redacted"]["numbers"] == 1
    webhooks = [e for e in document["entries"] if e["kind"] == "webhook"]
    commands = [e["action"] for e in document["entries"] if e["kind"] == "command"]
    assert commands[:3] == ["answer", "conference_create", "conference_join"]
    assert commands[-1] == "conference_hangup" and "conference_dial" in commands
    first = json.dumps(webhooks[0]["body"])
    assert "999" in first  # the caller, as a placeholder; the callee the flow dials stays as it is
    dial = next(e for e in document["entries"] if e.get("action") == "conference_dial")
    assert dial["args"]["to"]["address"] == CALLEE
    if provider == "sinch":  # the SVAML the ICE was answered with
        assert webhooks[0]["reply"]["body"]["instructions"] == [{"name": "answer"}]

    code, output = await replay(str(path.parent))
    assert code == 0, output
    assert output.startswith("same") and "0 diverged, 1 the same" in output


def changed_flow(folder: Path) -> Path:
    """The seed flow, its connection changed: ``unmute`` instead of ``resume``, another announcement."""
    text = FLOW.read_text()
    connected = "      - resume: {conference: room, call: caller}   # the music stops\n" \
                "      - say: {call: caller, text: Another caller is joining the call now."
    assert connected in text
    text = text.replace(connected, "      - unmute: {conference: room, call: caller}\n"
                                   "      - say: {call: caller, text: You are now connected.")
    path = folder / "changed.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_changed_flow_is_reported_where_its_commands_diverge(provider: str, tmp_path: Path) -> None:
    path, _ = await record_call(provider, tmp_path / "recordings")
    code, output = await replay(str(path), "--flow", str(changed_flow(tmp_path)), "--format", "json")
    assert code == 1, output
    report = json.loads(output)
    assert (report["diverged"], report["same"], report["errors"]) == (1, 0, 0)
    found = {(d["kind"], d["what"]): d for d in report["files"][0]["divergences"]}
    assert set(found) == {("added", "unmute"), ("missing", "resume"), ("changed", "say")}
    changed = found[("changed", "say")]
    assert changed["recorded"] == {"text": "Another caller is joining the call now."}
    assert changed["replayed"] == {"text": "You are now connected."}
    assert "on input" in changed["where"] and "participant.joined" in changed["where"]
    assert "(as recorded)" in found[("missing", "resume")]["where"]
    assert report["files"][0]["end"]["replayed"] == {"state": "closing", "status": "ended"}

    code, text = await replay(str(path), "--flow", str(changed_flow(tmp_path)))
    assert code == 1 and text.startswith("DIVERGED")
    assert "changed   say" in text and 'replayed: {"text": "You are now connected."}' in text


async def record_outbound(provider: str, folder: Path) -> dict[str, Any]:
    async with outbound(provider, {CUSTOMER: {"answer_after": "3s"}},
                        service_options={"record": RecordSettings(folder)}) as side:
        status, started = await side.call(vars={"name": "Ada", "slot": "9:30"})
        assert status == 201, started
        await side.until_status(started["id"], "active")

        async def waiting() -> bool:
            record = await side.record(started["id"])
            return record is not None and record.state == "waiting"

        await until(waiting, "the reminder to be said")
        status, body = await side.send("POST", f"/api/sessions/{started['id']}/events",
                                       {"name": "agent.free", "data": {"agent": "Grace"}})
        assert status == 200, body
        session = await side.until_over(started["id"])
        assert session["state"] == "done"
        recorder = side.stack.service.recorder
        assert recorder is not None

        async def written() -> bool:
            return bool(recorder.written)

        await until(written, "the replay file")
        return json.loads(recorder.written[0].read_text()) | {"path": str(recorder.written[0])}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_session_the_api_started_and_steered_is_recorded_and_replayed(
    provider: str, tmp_path: Path
) -> None:
    document = await record_outbound(provider, tmp_path / "recordings")
    text = json.dumps(document)
    assert CUSTOMER not in text
    inputs = [(e["kind"], e["event"]["name"]) for e in document["entries"] if e["kind"] == "api"]
    assert inputs == [("api", START), ("api", "agent.free")]
    assert document["flow"] == {"name": "reminder", "path": str(REMINDER)}
    code, output = await replay(document["path"])
    assert code == 0, output


async def test_a_flow_that_never_ends_is_stopped_and_reported(tmp_path: Path) -> None:
    """The new version stays connected after a hang-up and re-announces every 5 s: the replay runs its
    timers for a while of virtual time, stops, and says the session did not end as recorded."""
    path, _ = await record_call("infobip", tmp_path / "recordings")
    text = FLOW.read_text()
    closing = ("    on:\n      call.finished: closing      # either party hung up: end the conference for "
               "the other\n    after:\n      4h: closing\n")
    assert closing in text
    looping = tmp_path / "looping.yaml"
    looping.write_text(text.replace(closing, "    on:\n      call.finished: connected\n"
                                                  "    after:\n      5s: connected\n      8h: closing\n"))
    code, output = await replay(str(path), "--flow", str(looping), "--format", "json")
    assert code == 1, output
    (report,) = json.loads(output)["files"]
    kinds = {d["kind"] for d in report["divergences"]}
    assert {"end", "missing", "added"} <= kinds
    assert report["end"] == {"recorded": {"state": "closing", "status": "ended"},
                             "replayed": {"state": "connected", "status": "active"}}


VALUES: tuple[Any, ...] = (None, 0, -1, 1.5, True, "", "x", [], {}, {"a": 1}, "POST", "webhook", "command",
                           1e308)
DAMAGED = 80  # files per provider, from a fixed seed


def damaged(document: Any, rng: Any) -> Any:
    """``document`` with one to three values replaced or removed anywhere in it (a copy)."""
    document = json.loads(json.dumps(document))
    for _ in range(rng.randint(1, 3)):
        places: list[tuple[Any, Any]] = []
        todo: list[Any] = [document]
        while todo:
            node = todo.pop()
            keys: list[Any] = list(node) if isinstance(node, dict) else []
            if isinstance(node, list):
                keys = list(range(len(node)))
            for key in keys:
                places.append((node, key))
                todo.append(node[key])
        node, key = rng.choice(places)
        if rng.random() < 0.8:
            node[key] = json.loads(json.dumps(rng.choice(VALUES)))
        else:
            del node[key]
    return document


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_damaged_replay_file_is_refused_naming_what_is_wrong(provider: str, tmp_path: Path) -> None:
    """Recordings edited by hand or cut short: each is replayed or refused with a message, in one run of
    ``flowengine replay`` over all of them, never an internal error (several kinds were, before)."""
    path, _ = await record_call(provider, tmp_path / "recordings")
    document = json.loads(path.read_text())
    rng = random.Random(provider)
    folder = tmp_path / "damaged"
    folder.mkdir()
    for index in range(DAMAGED):
        (folder / f"{index:03d}{ff.SUFFIX}").write_text(json.dumps(damaged(document, rng)))
    code, out = await replay(str(folder), "--format", "json")
    report = json.loads(out)
    assert code == 2 and report["errors"] > 0  # some damage is refused, with its file named
    assert len(report["files"]) == DAMAGED
