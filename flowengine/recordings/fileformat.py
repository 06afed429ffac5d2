"""The replay file: one JSON document per session, ``{"format": "flowengine-replay/1", ...}``, with one
entry per line so two recordings diff well. Entries are in the order they happened, ``t`` seconds after
the session's first input:

- ``webhook``: a webhook request as the adapter received it (method, path, the headers that say what the
  body is, the body: JSON, or ``text``) and the reply the service gave it (Sinch's SVAML);
- ``api``: an event the API brought (an outbound start, a custom event, an end): ``event``, ``session``
  and, for a start, ``flow``;
- ``command``: a command the engine had the platform carry out (``action``, ``args``, ``key``) with the
  platform's answer (``result``: ``id``, ``data``) or its refusal (``error``: message, status, kind,
  retryable, unknown), the events the adapter derived from it (``follow_ups``, Sinch's implied answers
  and joins) and ``during``: the ``n`` of the input being handled, null on a timer;
- ``http``: an ``http`` action's request and its ``answer`` or ``error``;
- ``observe``: what the platform was asked about a session's calls and conferences, and its answer.

This module converts between those entries and the runtime's objects, and reads files back (a file that
is not one raises ``RecordingError`` naming what is wrong, never a traceback).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from flowengine.errors import ProviderError, RecordingError
from flowengine.plainjson import json_place
from flowengine.runtime.ports import ActionResult, HttpAnswer, HttpRequest
from flowengine.runtime.reconcile import CallSeen, ConferenceSeen, Observation

FORMAT = "flowengine-replay/1"
KINDS = ("webhook", "api", "command", "http", "observe")
SUFFIX = ".replay.json"

# Every field the replayer reads has its type here, so a file edited by hand or cut short is refused
# when it is read, naming the field, rather than failing half-way through its replay.
_TEXT = {"type": ["string", "null"]}
_MAP = {"type": ["object", "null"]}
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
_EVENT = {"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string"}, "call_id": _TEXT, "conference_id": _TEXT, "call": _TEXT, "conference": _TEXT,
    "reason": _TEXT, "digits": _TEXT, "data": _MAP, "raw": _MAP, "event_id": _TEXT,
    "at": {"type": ["number", "null"]}}}
_ERROR = {"type": "object", "required": ["message"], "properties": {"status": {"type": ["integer", "null"]}}}
_IDS = {"type": ["array", "null"], "items": {"type": "string"}}
_FIELDS = {"type": "array", "items": {"type": "string"}}
_SEEN = {"type": "object", "properties": {
    "calls": {"type": ["object", "null"], "additionalProperties": {"type": "object", "properties": {
        "reason": _TEXT, "rooms": _IDS}}},
    "conferences": {"type": ["object", "null"], "additionalProperties": {"type": "object", "properties": {
        "members": _IDS}}}}}
_ENTRY_FIELDS: dict[str, dict[str, Any]] = {
    "webhook": {"required": ["method", "path"], "properties": {
        "method": {"type": "string"}, "path": {"type": "string"}, "headers": _STRINGS,
        "query": _STRINGS, "text": {"type": "string"}, "reply": {"type": "object"}}},
    "api": {"required": ["event", "session"], "properties": {
        "event": _EVENT, "flow": {"type": ["string", "null"]}, "session": {"type": "string"}}},
    "command": {"required": ["action", "args"], "properties": {
        "action": {"type": "string"}, "args": {"type": "object"},
        "result": {"type": "object", "properties": {"id": _TEXT, "data": _MAP}},
        "error": _ERROR, "follow_ups": {"type": "array", "items": {
            "type": "object", "required": ["event"],
            "properties": {"event": _EVENT, "delay": {"type": ["number", "null"], "minimum": 0}}}},
        "during": {"type": ["integer", "null"]}}},
    "http": {"required": ["request"], "properties": {
        "request": {"type": "object", "required": ["method", "url"]},
        "answer": {"type": "object", "properties": {"status": {"type": ["integer", "null"]},
                                                    "headers": {"type": ["object", "null"]}}},
        "error": _ERROR}},
    "observe": {"required": ["seen"], "properties": {"seen": _SEEN}},
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["format", "provider", "flow", "started", "entries"],
    "properties": {
        "format": {"const": FORMAT},
        "provider": {"enum": ["infobip", "sinch"]},
        "flow": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "path": {"type": ["string", "null"]}}},
        "session": {"type": "string"},
        "started": {"type": "number"},
        "complete": {"type": "boolean"},
        "redacted": {"type": "object", "properties": {"fields": _FIELDS}},
        "end": {"type": "object", "properties": {"state": {"type": ["string", "null"]},
                                                 "status": {"type": ["string", "null"]}}},
        "entries": {"type": "array", "items": {
            "type": "object", "required": ["n", "t", "kind"],
            "properties": {"n": {"type": "integer"}, "t": {"type": "number", "minimum": 0},
                           "kind": {"enum": list(KINDS)}},
            "allOf": [{"if": {"properties": {"kind": {"const": kind}}}, "then": fields}
                      for kind, fields in _ENTRY_FIELDS.items()],
        }},
    },
}
_VALIDATOR = Draft202012Validator(SCHEMA)


# -- runtime objects -> JSON ---------------------------------------------------------------------------
def plain(value: Any) -> Any:
    """``value`` as JSON values: dataclasses (an ``Endpoint``, a ``Media``) as objects, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def error_json(error: ProviderError) -> dict[str, Any]:
    return {"message": str(error), "status": error.status, "kind": error.kind, "code": error.code,
            "retryable": error.retryable, "unknown": error.outcome_unknown}


def error_from_json(doc: Mapping[str, Any]) -> ProviderError:
    status = doc.get("status")
    return ProviderError(str(doc["message"]), status=status if isinstance(status, int) else None,
                         code=doc.get("code"), retryable=bool(doc.get("retryable")),
                         outcome_unknown=bool(doc.get("unknown")))


def result_json(result: ActionResult) -> dict[str, Any]:
    return {"id": result.id, "data": plain(result.data)}


def result_from_json(doc: Mapping[str, Any]) -> ActionResult:
    found = doc.get("id")
    return ActionResult(id=found if isinstance(found, str) else None, data=dict(doc.get("data") or {}))


def answer_json(answer: HttpAnswer) -> dict[str, Any]:
    return {"status": answer.status, "body": plain(answer.body), "headers": dict(answer.headers)}


def answer_from_json(doc: Mapping[str, Any]) -> HttpAnswer:
    return HttpAnswer(int(doc.get("status") or 200), doc.get("body"), dict(doc.get("headers") or {}))


def http_request_json(request: HttpRequest) -> dict[str, Any]:
    return plain(request)  # type: ignore[no-any-return]


def observation_json(seen: Observation) -> dict[str, Any]:
    return {"calls": plain(seen.calls), "conferences": plain(seen.conferences)}


def observation_from_json(doc: Mapping[str, Any]) -> Observation:
    calls = {cid: CallSeen(up=bool(c.get("up")), ended=bool(c.get("ended")), reason=c.get("reason"),
                           answered=bool(c.get("answered")), rooms=frozenset(c.get("rooms") or ()))
             for cid, c in (doc.get("calls") or {}).items()}
    rooms = {rid: ConferenceSeen(ended=bool(r.get("ended")), members=frozenset(r.get("members") or ()))
             for rid, r in (doc.get("conferences") or {}).items()}
    return Observation(calls, rooms)


# -- files ---------------------------------------------------------------------------------------------
def dumps(document: Mapping[str, Any]) -> str:
    """The document with one entry per line."""
    head = {k: v for k, v in document.items() if k != "entries"}
    lines = ",\n".join(json.dumps(entry, separators=(",", ":"), ensure_ascii=False)
                       for entry in document.get("entries", ()))
    return json.dumps(head, ensure_ascii=False)[:-1] + ',\n "entries": [\n' + lines + "\n]}\n"


def write(path: Path, document: Mapping[str, Any]) -> None:
    """Written whole or not at all: a reader never sees half a file."""
    partial = path.with_name(path.name + ".part")
    partial.write_text(dumps(document), encoding="utf-8")
    partial.replace(path)


def load(path: Path) -> dict[str, Any]:
    """A replay file's document; ``RecordingError`` saying what is wrong with it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RecordingError(f"{path}: not a replay file (not UTF-8 text)") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise RecordingError(f"{path}: not a replay file (not JSON: {exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else None
        said = f'says "{found}"' if isinstance(found, str) else "has no format"
        raise RecordingError(f'{path}: not a replay file ({said}; expected "format": "{FORMAT}")')
    problems = sorted(_VALIDATOR.iter_errors(document), key=lambda e: list(e.absolute_path))
    if problems:
        first = problems[0]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        where = json_place(first.absolute_path) or "document"
        raise RecordingError(f"{path}: {where}: {first.message[:200]}{more}")
    return document
