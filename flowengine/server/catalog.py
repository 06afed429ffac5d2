"""Flow versions in a running service: which version each flow runs now, the executors of the versions
sessions still hold, and how many sessions hold each.

A new session starts on its flow's current version and keeps it (``Session.flow_hash``) to its end. The
store keeps every version's resolved source under its hash (``put_flow_source``), written before any
session can start on it, so an instance that never loaded that version (another instance, or this one
after a restart or a reload) compiles it from the store when a session holding it comes by, and keeps
the executor for the next event. A source holding secret-looking text is stored masked
(``flows.kept_source``): such a version runs where its files are loaded, or where the loaded version
differs from it only in what was masked; elsewhere its sessions' events are refused as a store fault
(503: the platform retries) with a log line saying so. Versions are few (one per reload that changed a
flow), so compiled ones are kept for the life of the process.

Counting the sessions holding each version reads the live (active) sessions' documents a page at a time
(``list_sessions``): no index to keep in step on every save, at the cost of a scan per question, which the
read API asks rarely. Sessions that change during the scan may be counted in their old or new place.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flowengine.errors import FlowError, StoreError
from flowengine.flow.model import Flow
from flowengine.flow.platform import Platform
from flowengine.flow.version import version_of
from flowengine.runtime.executor import Executor
from flowengine.server.flows import FlowVersion, LoadedFlows, compile_source
from flowengine.stores.base import SessionStore

Build = Callable[[Flow, str | None], Executor]  # a flow and its version -> its executor
SCAN_PAGE = 1_000  # sessions read per page when counting the versions held


class Catalog:
    """The current version of each flow and every version's executor this process has compiled."""

    def __init__(self, store: SessionStore, build: Build, flows: Mapping[str, Flow],
                 versions: Mapping[str, FlowVersion] | None, table: Platform | None) -> None:
        self.store = store
        self._build = build
        self._table = table
        self.versions: dict[str, FlowVersion] = dict(versions or {})  # by flow name; empty: unversioned
        self.current: dict[str, Executor] = {
            name: build(flow, self.versions[name].version if name in self.versions else None)
            for name, flow in flows.items()
        }
        self._compiled: dict[tuple[str, str], Executor] = {
            (name, e.engine.version): e for name, e in self.current.items() if e.engine.version is not None
        }
        self._published: set[str] = set()
        self.reloading = asyncio.Lock()  # one reload at a time

    async def publish(self, versions: Iterable[FlowVersion] | None = None) -> None:
        """Keep each version's source (default: the current ones) in the store, once per version and
        process, before any session starts on it: a store that fails raises ``StoreError``, and is asked
        again next time."""
        for loaded in self.versions.values() if versions is None else versions:
            if loaded.version not in self._published:
                await self.store.put_flow_source(loaded.version, loaded.kept)
                self._published.add(loaded.version)

    async def executor(self, name: str, version: str) -> Executor:
        """The executor of ``version`` of flow ``name``: compiled here before, or from the store's source."""
        found = self._compiled.get((name, version))
        if found is not None:
            return found
        if self._table is None:
            raise StoreError(f'flow "{name}" version {version} is not loaded here and versions are not kept')
        kept = await self.store.flow_source(version)
        if kept is None:
            raise StoreError(f'flow "{name}" version {version} is held by a session but not in the store')
        same = self.versions.get(name)
        if same is not None and same.kept == kept:  # only masked secrets differ: run it with today's
            return self._compiled.setdefault((name, version), self.current[name])
        if version_of(kept) != version:
            raise StoreError(f'flow "{name}" version {version} was stored with its secrets masked and this '
                             "instance's files hold another version: load it here to run its sessions")
        try:
            flow = compile_source(name, version, kept, self._table)
        except FlowError as exc:
            raise StoreError(f'flow "{name}" version {version} from the store does not load: {exc}') from exc
        return self._compiled.setdefault((name, version), self._build(flow, version))

    def replace(self, loaded: LoadedFlows) -> list[dict[str, Any]]:
        """Make ``loaded`` the current versions (published first: ``publish``); what changed per flow."""
        changes = [_change(name, self.versions.get(name), loaded.versions.get(name))
                   for name in dict.fromkeys([*self.versions, *loaded.versions])]
        current: dict[str, Executor] = {}
        for name, new in loaded.versions.items():
            key = (name, new.version)
            if key not in self._compiled:
                self._compiled[key] = self._build(new.flow, new.version)
            current[name] = self._compiled[key]
        self.versions, self.current = dict(loaded.versions), current
        return changes

    async def held(self) -> dict[str, Counter[str | None]]:
        """Flow name -> how many live sessions hold each version (None: started before versions were kept)."""
        counts: dict[str, Counter[str | None]] = {}
        offset = 0
        while True:
            page = await self.store.list_sessions(status="active", limit=SCAN_PAGE, offset=offset)
            for record in page:
                version = record.data.get("flow_hash")
                counts.setdefault(record.flow, Counter())[version if isinstance(version, str) else None] += 1
            if len(page) < SCAN_PAGE:
                return counts
            offset += SCAN_PAGE

    async def view(self) -> dict[str, list[dict[str, Any]]]:
        """Flow name -> its versions: the current one and each one live sessions hold, with the count."""
        held = await self.held()
        views: dict[str, list[dict[str, Any]]] = {}
        for name in dict.fromkeys([*self.current, *held]):
            counts = held.get(name, Counter())
            now = self.versions[name].version if name in self.versions else None
            hashes = [*([now] if now is not None else []), *(h for h in counts if h != now)]
            views[name] = [{"hash": h, "current": h == now, "sessions": counts.get(h, 0)} for h in hashes]
        return views


def _change(name: str, old: FlowVersion | None, new: FlowVersion | None) -> dict[str, Any]:
    before, after = (old.version if old else None), (new.version if new else None)
    kind = ("added" if old is None else "removed" if new is None
            else "unchanged" if before == after else "changed")
    return {"name": name, "change": kind, "from": before, "to": after}
