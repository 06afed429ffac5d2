"""The service's log lines, as text for people or JSON lines for a log pipeline (``log_format``).

A JSON line is one object: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message`` and, where known,
``session``, ``call``, ``flow``, ``state``, ``event`` and ``action`` (an ``exc`` traceback after a
failure). Those fields come from the line's own ``extra`` or else from the step under way
(``runtime.observing.SCOPE``), so a line written anywhere while a session's step runs says which session
it is about. Every string in it is redacted (``redaction.redact``) and, unless numbers are shown in full,
has its phone numbers masked (``masking``), as text lines are.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flowengine.masking import mask_numbers
from flowengine.redaction import RedactingFormatter, redact
from flowengine.runtime.observing import SCOPE

FORMATS = ("text", "json")
FIELDS = ("session", "call", "flow", "state", "event", "action")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; fields without a value are left out."""

    def __init__(self, *, mask: bool = True) -> None:
        super().__init__()
        self.clean: Callable[[str], str] = (lambda text: redact(mask_numbers(text))) if mask else redact

    def format(self, record: logging.LogRecord) -> str:
        clean = self.clean
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": clean(record.getMessage()),
        }
        scope = SCOPE.get()
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is None and scope is not None:
                value = getattr(scope, name, None)
            if value is not None:
                line[name] = clean(str(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = clean(record.exc_text)
        return json.dumps(line, ensure_ascii=False)


def formatter(log_format: str, *, mask: bool = True) -> logging.Formatter:
    """The formatter of ``log_format`` (one of ``FORMATS``)."""
    if log_format == "json":
        return JsonFormatter(mask=mask)
    return RedactingFormatter(TEXT)
