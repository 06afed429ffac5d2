"""Asking a platform about many calls or conferences at once, for reconciliation.

Each adapter knows its GET requests and how to read the answers; what they share is here: ask
concurrently (bounded, so recovering thousands of sessions does not flood the platform), take a 404 as
"gone", and leave out whatever could not be asked, which the caller then treats as unknown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from flowengine.errors import ProviderError

T = TypeVar("T")
CONCURRENCY = 8  # GETs in flight per reconciliation
log = logging.getLogger("flowengine.reconcile")


async def ask_each(ids: Iterable[str], ask: Callable[[str], Awaitable[T]], gone: T) -> dict[str, T]:
    """``{id: ask(id)}``; ``gone`` where the platform answered 404; absent where it failed otherwise."""
    limit = asyncio.Semaphore(CONCURRENCY)
    found: dict[str, T] = {}

    async def one(platform_id: str) -> None:
        async with limit:
            try:
                found[platform_id] = await ask(platform_id)
            except ProviderError as exc:
                if exc.status == 404:
                    found[platform_id] = gone
                else:
                    log.warning("could not ask about %s: %s", platform_id, exc)

    await asyncio.gather(*(one(platform_id) for platform_id in dict.fromkeys(ids)))
    return found
