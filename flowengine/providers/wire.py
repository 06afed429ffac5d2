"""What both platforms' command modules build: a REST request, with ids escaped into path segments."""

from __future__ import annotations

import re
from urllib.parse import quote

from flowengine.providers.base import JSON
from flowengine.runtime.values import immutable


@immutable  # one per request sent
class Request:
    method: str
    path: str
    body: JSON | None = None  # None: no body at all


# What ``quote(value, safe="")`` leaves as it is: platform ids (hex, UUIDs) are nothing else, and matching
# them costs less than half of quoting (every command's path has one or two).
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def segment(value: str) -> str:
    """One path segment: ids come from events and flows, never let them add segments."""
    return value if _UNRESERVED.fullmatch(value) else quote(value, safe="")
