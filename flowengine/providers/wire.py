"""What both platforms' command modules build: a REST request, with ids escaped into path segments."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from flowengine.providers.base import JSON


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    body: JSON | None = None  # None: no body at all


def segment(value: str) -> str:
    """One path segment: ids come from events and flows, never let them add segments."""
    return quote(value, safe="")
