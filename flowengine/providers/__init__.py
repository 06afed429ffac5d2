"""Provider adapters: each platform's webhooks -> neutral events, neutral actions -> its API.

This module stays light (no aiohttp): ``flowengine validate --provider`` and the config only need the
names and the capability lists.
"""

from __future__ import annotations

import importlib

PROVIDERS: tuple[str, ...] = ("infobip", "sinch")


def capabilities(provider: str) -> frozenset[str]:
    """The neutral actions ``provider`` can carry out (its pure-data ``capabilities`` module)."""
    if provider not in PROVIDERS:
        raise ValueError(f'unknown provider "{provider}" (expected one of {", ".join(PROVIDERS)})')
    module = importlib.import_module(f"flowengine.providers.{provider}.capabilities")
    return frozenset(module.CAPABILITIES)
