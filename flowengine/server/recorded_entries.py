"""One session's recording as the recorder keeps it: its entries as they happened (the runtime's own
objects, by reference), and each entry as the replay file holds it, converted and redacted when the file
is written.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from flowengine.errors import ProviderError
from flowengine.providers.base import FollowUp, WebhookReply, WebhookRequest
from flowengine.recordings import fileformat as ff
from flowengine.recordings.redact import Redactor
from flowengine.runtime.outbox import event_to_json
from flowengine.runtime.ports import ActionResult, ProviderCommand

MAX_ENTRIES = 5_000  # entries kept per session; later ones are counted as dropped


@dataclass
class Entry:
    """One entry as it happened: ``doc`` holds the runtime's own objects, converted and redacted only when
    the file is written."""

    n: int
    t: float
    kind: str
    doc: dict[str, Any]
    request: WebhookRequest | None = None
    reply: WebhookReply | None = None


@dataclass
class SessionLog:
    """One session's recording, in memory until it is written."""

    session_id: str
    flow: str | None = None
    state: str | None = None
    status: str | None = None
    entries: list[Entry] = field(default_factory=list)
    dropped: int = 0
    over: bool = False

    def add(self, entry: Entry) -> None:
        if len(self.entries) < MAX_ENTRIES:
            self.entries.append(entry)
        else:
            self.dropped += 1


def entry_json(entry: Entry, started: float, redactor: Redactor) -> dict[str, Any]:
    head = {"n": entry.n, "t": round(entry.t - started, 4), "kind": entry.kind}
    if entry.request is not None:
        return {**head, **_webhook(entry.request, entry.reply, redactor)}
    doc = entry.doc
    if entry.kind == "api":
        return {**head, **redactor.json({**doc, "event": event_to_json(doc["event"])})}
    if entry.kind == "command":
        return {**head, **redactor.json(_command(**doc))}
    return {**head, **redactor.json(doc)}


def _command(during: Entry | None, command: ProviderCommand, outcome: ActionResult | ProviderError,
             follow_ups: list[FollowUp]) -> dict[str, Any]:
    doc: dict[str, Any] = {"action": command.action, "args": ff.plain(command.args), "key": command.key,
                           "during": during.n if during is not None else None}
    if isinstance(outcome, ActionResult):
        doc["result"] = ff.result_json(outcome)
    else:
        doc["error"] = ff.error_json(outcome)
    if follow_ups:
        doc["follow_ups"] = [{"event": event_to_json(f.event), "delay": f.delay} for f in follow_ups]
    return doc


def _webhook(request: WebhookRequest, reply: WebhookReply | None, redactor: Redactor) -> dict[str, Any]:
    doc: dict[str, Any] = {"method": request.method, "path": redactor.text(request.path),
                           "headers": redactor.headers(request.headers),
                           "query": redactor.json(dict(request.query))}
    doc.update(_body(request.body, redactor))
    if reply is not None:
        doc["reply"] = {"status": reply.status, "content_type": reply.content_type,
                        **_body(reply.body, redactor)}
    return doc


def _body(body: bytes, redactor: Redactor) -> dict[str, Any]:
    if not body:
        return {}
    try:
        return {"body": redactor.json(json.loads(body))}
    except ValueError:
        return {"text": redactor.text(body.decode("utf-8", "replace"))}


def file_name(found: SessionLog, started: float) -> str:
    """When, which flow and a short hash of the session id: no number of anybody's in it."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started))
    digest = hashlib.sha256(found.session_id.encode()).hexdigest()[:10]
    flow = "".join(c if c.isalnum() or c in "_-" else "_" for c in (found.flow or "session"))[:40]
    return f"{stamp}-{flow}-{digest}{ff.SUFFIX}"
