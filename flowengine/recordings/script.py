"""A recording's outputs as a script to answer from, and where a replay departs from it.

Commands (and, apart, http exchanges) are matched in order: the next recorded one with the same action
and arguments, looking a few ahead (those passed over were not sent this time: ``missing``); failing
that, a recorded one with the same action close ahead, whose arguments changed (``changed``); failing
that, the command is new (``added``) and gets a plausible answer: success, with an id of its own. What
is compared is what the recording holds: arguments masked as the recorder masked them (numbers are not
replaced again: those in a replay come from the recording, or from the flow, which the recorder kept).
The correlation key is not compared: it counts steps, so any change before shifts it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from flowengine.recordings import fileformat as ff
from flowengine.recordings.redact import Redactor

EXACT_AHEAD = 8  # recorded commands looked through for the same command sent later than recorded
CHANGED_AHEAD = 2  # ... and for the same action with other arguments


@dataclass
class Point:
    """Where a replay is: the input being handled (``n`` as recorded, ``t`` seconds in), or a timer."""

    n: int | None
    t: float
    label: str = ""

    def describe(self) -> str:
        on = f"on input {self.n} ({self.label})" if self.n is not None else "on a timer"
        return f"at +{self.t:.2f} s, {on}"


CURRENT: ContextVar[Point | None] = ContextVar("replay_point", default=None)


@dataclass(frozen=True)
class Divergence:
    """``kind``: added | missing | changed (a command or http exchange), input (a recorded input the
    service refused this time), end (another final state or status), unfinished (the replay stopped)."""

    kind: str
    what: str
    where: str
    recorded: Any = None
    replayed: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "what": self.what, "where": self.where, "recorded": self.recorded,
                "replayed": self.replayed}


@dataclass
class _Track:
    """One kind of recorded output (commands, or http exchanges), matched in order."""

    entries: list[dict[str, Any]]
    key: str  # the field compared: "args" or "request"
    cursor: int = 0

    def take(self, name: str, compared: Any) -> tuple[dict[str, Any] | None, int]:
        """The recorded entry matching, and how many recorded ones before it were passed over; an entry
        whose ``compared`` differs means the arguments changed; None: nothing recorded matches."""
        ahead = self.entries[self.cursor:]
        for window, exact in ((EXACT_AHEAD, True), (CHANGED_AHEAD, False)):
            for skipped, entry in enumerate(ahead[:window]):
                if _name(entry) == name and (not exact or entry[self.key] == compared):
                    self.cursor += skipped + 1
                    return entry, skipped
        return None, 0


def _name(entry: Mapping[str, Any]) -> str:
    if "action" in entry:
        return str(entry["action"])
    request = entry["request"]
    return f"http {request['method']}"


@dataclass
class Script:
    document: Mapping[str, Any]
    divergences: list[Divergence] = field(default_factory=list)
    labels: dict[int, str] = field(default_factory=dict)  # input n -> the events it brought this time
    replayed: int = 0

    def __post_init__(self) -> None:
        entries = self.document["entries"]
        self.commands = _Track([e for e in entries if e["kind"] == "command"], "args")
        self.http = _Track([e for e in entries if e["kind"] == "http"], "request")
        self.observations = [e for e in entries if e["kind"] == "observe"]
        # Masks as the recorder did (``record.redact`` is in the file), numbers apart.
        self.mask = Redactor(fields=self.document.get("redacted", {}).get("fields", ()), numbers=False)
        self._ids = itertools.count(1)

    def command(self, action: str, args: Mapping[str, Any]) -> dict[str, Any] | None:
        """The recorded entry answering this command, None for a new one (divergences noted)."""
        return self._take(self.commands, action, self.mask.json(ff.plain(args)))

    def exchange(self, request: Mapping[str, Any]) -> dict[str, Any] | None:
        return self._take(self.http, f"http {request['method']}", self.mask.json(request))

    def observation(self, calls: Sequence[str], conferences: Sequence[str]) -> dict[str, Any] | None:
        for index, entry in enumerate(self.observations):
            if entry.get("calls") == list(calls) and entry.get("conferences") == list(conferences):
                found: dict[str, Any] = self.observations.pop(index)
                return found
        return None

    def new_id(self, action: str) -> str:
        return f"replayed-{action}-{next(self._ids)}"

    def _take(self, track: _Track, name: str, compared: Any) -> dict[str, Any] | None:
        self.replayed += 1
        point = CURRENT.get() or Point(None, 0.0)
        where = point.describe()
        start = track.cursor
        entry, skipped = track.take(name, compared)
        for passed in track.entries[start:start + skipped]:
            self.divergences.append(Divergence("missing", _name(passed), self.recorded_at(passed),
                                               recorded=passed[track.key]))
        if entry is None:
            self.divergences.append(Divergence("added", name, where, replayed=compared))
        elif entry[track.key] != compared:
            recorded, now = _differences(entry[track.key], compared)
            self.divergences.append(Divergence("changed", name, where, recorded=recorded, replayed=now))
        return entry

    def finish(self) -> None:
        """What the recording holds and the replay never sent."""
        for track in (self.commands, self.http):
            for entry in track.entries[track.cursor:]:
                self.divergences.append(Divergence("missing", _name(entry), self.recorded_at(entry),
                                                   recorded=entry[track.key]))
            track.cursor = len(track.entries)

    def recorded_at(self, entry: Mapping[str, Any]) -> str:
        """Where the recording had ``entry``."""
        during = entry.get("during")
        label = self.labels.get(during, "") if isinstance(during, int) else ""
        return Point(during if isinstance(during, int) else None, float(entry["t"]), label).describe() + \
            " (as recorded)"


def _differences(recorded: Any, replayed: Any) -> tuple[Any, Any]:
    """The fields that differ, when both are objects; else both whole."""
    if isinstance(recorded, dict) and isinstance(replayed, dict):
        keys = [k for k in dict.fromkeys([*recorded, *replayed]) if recorded.get(k) != replayed.get(k)]
        return {k: recorded.get(k) for k in keys}, {k: replayed.get(k) for k in keys}
    return recorded, replayed
