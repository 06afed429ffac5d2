"""Delivery lanes: which webhooks must keep their order, and which may race.

A lane is a set of calls and conferences that have met. Every call or conference starts in a lane of
its own (keyed by its id); when a call is enrolled in a conference (joins it, is dialled into it, or
the conference is created around it) the two lanes become one, for good. So a call, its conference and
the calls dialled into that conference share a lane, and unrelated calls do not. Within a lane the
sender delivers one webhook at a time in the order the platform produced them; lanes run concurrently.

Merging never breaks a call's own order: webhooks the absorbed lane still holds at the merge go out
before any webhook the merged lane gets afterwards (a *barrier*), while those both lanes held before
the merge stay as unordered as they were.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(eq=False)
class Lane(Generic[T]):
    """One lane's queue, in platform order, and the worker delivering it."""

    key: str
    queue: deque[T] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None
    # Set while nothing is queued or in flight here; merged lanes wait on it.
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    # (seq, lane): webhooks with a larger sequence number wait until that lane has drained.
    barriers: list[tuple[int, Lane[T]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.drained.set()

    async def wait_barriers(self, seq: int) -> None:
        """Hold the webhook numbered ``seq`` until every lane merged in before it has drained."""
        for mark, other in list(self.barriers):
            if seq > mark:
                await other.drained.wait()
                self.barriers.remove((mark, other))


class Lanes(Generic[T]):
    """Lane membership (a union-find over call and conference ids) and the live lanes."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        self._lanes: dict[str, Lane[T]] = {}

    def root(self, key: str) -> str:
        """The key naming ``key``'s lane (with path compression: lookups stay near O(1))."""
        path = []
        while (parent := self._parent.get(key, key)) != key:
            path.append(key)
            key = parent
        for member in path:
            self._parent[member] = key
        return key

    def lane(self, key: str) -> Lane[T]:
        """The live lane of ``key``, created when it has none."""
        root = self.root(key)
        lane = self._lanes.get(root)
        if lane is None:
            lane = self._lanes[root] = Lane(root)
        return lane

    def merge(self, key: str, into: str, seq: int) -> None:
        """``key``'s lane joins ``into``'s; webhooks numbered above ``seq`` (the last one sent so far)
        wait for what ``key``'s lane still holds."""
        absorbed, kept = self.root(key), self.root(into)
        if absorbed == kept:
            return
        self._parent[absorbed] = kept
        old = self._lanes.get(absorbed)
        if old is None:
            return
        # The absorbed lane's own barriers come along: an empty lane may still stand for webhooks
        # of a lane merged into it earlier that are not out yet.
        waits = [old, *(lane for _, lane in old.barriers)]
        target = self.lane(kept)
        target.barriers.extend((seq, lane) for lane in waits if not lane.drained.is_set())

    def retire(self, lane: Lane[T]) -> None:
        """Forget a lane whose worker has finished (its membership stays)."""
        if self._lanes.get(lane.key) is lane:
            del self._lanes[lane.key]

    def __iter__(self) -> Iterator[Lane[T]]:
        return iter(list(self._lanes.values()))

    def clear(self) -> None:
        self._parent.clear()
        self._lanes.clear()
