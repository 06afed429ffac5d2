"""Replay files: number placeholders consistent within a file, secrets and named fields masked, files
that are not replay files refused with a message naming what is wrong, commands matched to the recording
(added, missing, changed), and ``flowengine replay``'s exit codes for what it cannot read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flowengine.cli import cli
from flowengine.errors import RecordingError
from flowengine.recordings import fileformat as ff
from flowengine.recordings.redact import Redactor, known_numbers
from flowengine.recordings.replayer import load_recording
from flowengine.recordings.script import Script
from flowengine.runtime.ports import Endpoint

FLOW = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"


# -- redaction -----------------------------------------------------------------------------------------
def test_the_same_number_gets_the_same_placeholder_wherever_and_however_it_is_written() -> None:
    redactor = Redactor()
    body = redactor.json({"from": "+447911123489", "to": "4915112345678",
                          "events": [{"cli": "447911123489", "note": "call +4915112345678 back"}]})
    caller, callee = body["from"], body["to"]
    assert caller.startswith("+999") and len(caller) == len("+447911123489")
    assert callee.startswith("999") and len(callee) == len("4915112345678") and callee != caller.lstrip("+")
    assert body["events"][0]["cli"] == caller.lstrip("+")
    assert body["events"][0]["note"] == f"call +{callee} back"
    assert redactor.numbers == 2
    assert Redactor().text("447911123489") == caller.lstrip("+")  # another file numbers from 1 again


def test_what_is_not_a_phone_number_stays() -> None:
    redactor = Redactor()
    kept = {"callid": "4398599d1ba84ef3bde0a82dfb61abed", "uuid": "12345678-90ab-cdef-1234-567890abcdef",
            "at": "1767225600.5", "when": "2026-01-01T00:00:45Z", "short": "12345", "epoch": 1767225600}
    assert redactor.json(kept) == kept and redactor.numbers == 0


def test_numbers_the_service_publishes_are_kept() -> None:
    keep = known_numbers(["to: '4592457976'", 'callee: "447415784323"'])
    assert keep == {"4592457976", "447415784323"}
    redactor = Redactor(keep=keep)
    assert redactor.json({"to": "4592457976", "from": "447700900001"}) == {
        "to": "4592457976", "from": "999000000001"}


def test_secrets_and_named_fields_are_masked_and_only_the_content_type_header_is_kept() -> None:
    redactor = Redactor(fields=["pin", "customer.email"])
    doc = redactor.json({
        "url": "https://user:hunter2@crm.example.com/hook?token=abc123&id=7",
        "PIN": "4711", "customer": {"email": "ada@example.com", "name": "Ada"},
        "email": "kept@example.com", "nested": [{"pin": {"deep": 1}}],
        "header": "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9abcdefgh",
    })
    assert doc["url"] == "https://user:***@crm.example.com/hook?token=***&id=***"
    assert doc["PIN"] == "***" and doc["nested"] == [{"pin": "***"}]
    assert doc["customer"] == {"email": "***", "name": "Ada"} and doc["email"] == "kept@example.com"
    assert "eyJ" not in doc["header"]
    headers = redactor.headers({"Content-Type": "application/json", "Authorization": "Application k:sig",
                                "X-Timestamp": "2026-01-01T00:00:00Z", "X-Signature": "abc"})
    assert headers == {"content-type": "application/json"}


# -- files -----------------------------------------------------------------------------------------------
def document(*entries: dict[str, Any], **head: Any) -> dict[str, Any]:
    return {"format": ff.FORMAT, "provider": "infobip", "flow": {"name": "f", "path": str(FLOW)},
            "started": 1767225600.0, "complete": True, "end": {"state": "done", "status": "ended"},
            **head, "entries": list(entries)}


def command(n: int, action: str, **args: Any) -> dict[str, Any]:
    return {"n": n, "t": float(n), "kind": "command", "action": action, "args": args, "during": None,
            "result": {"id": None, "data": {}}}


def test_a_file_round_trips_with_one_entry_per_line(tmp_path: Path) -> None:
    doc = document(command(0, "answer", call_id="c1"), command(1, "say", call_id="c1", text="hi"))
    path = tmp_path / f"x{ff.SUFFIX}"
    ff.write(path, doc)
    assert ff.load(path) == doc
    assert len(path.read_text().splitlines()) == 2 + 2 + 1  # head, "entries": [, two entries, ]}
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize(("content", "message"), [
    (b"\xff\xfe", "not UTF-8"),
    (b"{not json", "not JSON"),
    (b'{"format": "something-else/2"}', 'says "something-else/2"'),
    (b"[1, 2]", "has no format"),
    (json.dumps({"format": ff.FORMAT}).encode(), "'provider' is a required property"),
    (json.dumps(document({"n": 0, "t": 0, "kind": "telepathy"})).encode(), "entries[0].kind"),
    (json.dumps(document({"n": 0, "t": 0, "kind": "command", "action": "say"})).encode(),
     "'args' is a required property"),
    (json.dumps(document({"n": 0, "t": -1, "kind": "api", "session": "s", "event": {"name": "x"}})).encode(),
     "entries[0].t"),
    # Deeper down, every field the replayer reads (each of these failed mid-replay, exit 3, before)
    (json.dumps(document({"n": 0, "t": 0, "kind": "api", "event": {"name": "x"}})).encode(),
     "'session' is a required property"),
    (json.dumps(document({"n": 0, "t": 0, "kind": "api", "session": "s", "event": {"name": "x", "data": 5}}))
     .encode(), "entries[0].event.data"),
    (json.dumps(document({**command(0, "say"), "result": {"data": [1]}})).encode(), "entries[0].result.data"),
    (json.dumps(document({**command(0, "say"), "follow_ups": ["call.answered"]})).encode(),
     "entries[0].follow_ups[0]"),
    (json.dumps(document({"n": 0, "t": 0, "kind": "observe", "seen": {"calls": {"c1": True}}})).encode(),
     "entries[0].seen.calls.c1"),
    (json.dumps(document(redacted={"fields": True})).encode(), "redacted.fields"),
])
def test_what_is_not_a_replay_file_is_refused_saying_why(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.replay.json"
    path.write_bytes(content)
    with pytest.raises(RecordingError) as caught:
        ff.load(path)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)


def test_a_recording_whose_flow_is_gone_asks_for_one(tmp_path: Path) -> None:
    path = tmp_path / "x.replay.json"
    ff.write(path, document(flow={"name": "f", "path": str(tmp_path / "gone.yaml")}))
    with pytest.raises(RecordingError, match="is not here: give --flow"):
        load_recording(path, None)
    _, flow = load_recording(path, FLOW)
    assert flow.name == "two-party-conference"


# -- matching ---------------------------------------------------------------------------------------------
def test_commands_are_matched_in_order_and_departures_named() -> None:
    script = Script(document(
        command(0, "answer", call_id="c1"), command(1, "play", call_id="c1"),
        command(2, "say", call_id="c1", text="hello"), command(3, "hangup", call_id="c1"),
    ))
    assert script.command("answer", {"call_id": "c1"}) is not None
    assert script.command("record", {"call_id": "c1"}) is None  # new: answered as success by the channel
    entry = script.command("say", {"call_id": "c1", "text": "hi"})
    assert entry is not None and entry["n"] == 2
    script.finish()
    found = [(d.kind, d.what, d.recorded, d.replayed) for d in script.divergences]
    assert found == [
        ("added", "record", None, {"call_id": "c1"}),
        ("missing", "play", {"call_id": "c1"}, None),
        ("changed", "say", {"text": "hello"}, {"text": "hi"}),
        ("missing", "hangup", {"call_id": "c1"}, None),
    ]


def test_arguments_are_compared_as_the_recording_holds_them() -> None:
    recorded = command(0, "dial", to={"kind": "phone", "address": "447415784323"},
                       url="https://crm.example.com/x?token=***", pin="***")
    script = Script(document(recorded, redacted={"numbers": 0, "fields": ["pin"]}))
    args = {"to": Endpoint("phone", "447415784323"), "url": "https://crm.example.com/x?token=s3cret",
            "pin": "1234"}
    assert script.command("dial", args) is recorded
    assert script.divergences == []


# -- the command line ---------------------------------------------------------------------------------------
def test_replay_exits_2_on_a_bad_file_with_a_message_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.replay.json"
    bad.write_text("{}")
    result = CliRunner().invoke(cli, ["replay", str(bad), "--color", "never"])
    assert result.exit_code == 2, result.output
    assert "not a replay file" in result.output and "Traceback" not in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["replay", str(empty)])
    assert result.exit_code == 2 and "no replay files" in result.output


def test_replay_exits_2_when_the_flow_does_not_load(tmp_path: Path) -> None:
    path = tmp_path / "x.replay.json"
    ff.write(path, document())
    broken = tmp_path / "broken.yaml"
    broken.write_text("flow: broken\nstates: [\n")
    result = CliRunner().invoke(cli, ["replay", str(path), "--flow", str(broken), "--format", "json"])
    assert result.exit_code == 2
    report = json.loads(result.output)
    assert report["errors"] == 1 and "broken.yaml:" in report["files"][0]["error"]
