"""Provider adapters: each platform's webhooks -> neutral events, neutral actions -> its API.

This module stays light (no aiohttp): ``flowengine validate --provider`` and the config only need the
names and the capability lists.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowengine.flow.platform import Platform

PROVIDERS: tuple[str, ...] = ("infobip", "sinch")


def platform(provider: str) -> Platform:
    """What ``provider`` can run, and where: its capability table (the pure-data ``capabilities`` module)."""
    if provider not in PROVIDERS:
        raise ValueError(f'unknown provider "{provider}" (expected one of {", ".join(PROVIDERS)})')
    table: Platform = importlib.import_module(f"flowengine.providers.{provider}.capabilities").PLATFORM
    return table


def capabilities(provider: str) -> frozenset[str]:
    """The neutral actions ``provider`` can carry out."""
    return platform(provider).supported
