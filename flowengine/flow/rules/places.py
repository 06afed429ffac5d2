"""Where a JSON path points in a flow: a state, an action's parameters, a transition, ...

Messages and rule ids depend on the place ("unknown key" is an unknown *event* under ``on`` and an
unknown *action* in an action list), so schema errors are classified by walking their path.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

PlaceKind = Literal[
    "root",
    "field",
    "vars",
    "states",
    "state",
    "handlers",
    "timers",
    "transition",
    "actions",
    "action",
    "params",
    "param",
    "value",
]


@dataclass(frozen=True, slots=True)
class Place:
    kind: PlaceKind = "root"
    state: str | None = None
    event: str | None = None  # event name, or the duration key of a timer
    action: str | None = None
    param: str | None = None
    field: str | None = None  # the key of a plain field (``flow``, ``initial``, ``target``, ...)


def _step(place: Place, part: str | int) -> Place:
    kind = place.kind
    if kind in ("field", "value") and place.field == "start":  # ``start: {outbound: {timeout: ...}}``
        return replace(place, kind="value", param=place.param if part == "outbound" else str(part))
    if kind == "root":
        named = {"states": "states", "on": "handlers", "vars": "vars"}.get(str(part))
        return replace(place, kind=named or "field", field=None if named else str(part))  # type: ignore[arg-type]
    if kind == "states":
        return replace(place, kind="state", state=str(part))
    if kind == "state":
        if part == "always":  # eventless transitions: a transition right under the state
            return replace(place, kind="transition", event="always")
        named = {"entry": "actions", "exit": "actions", "on": "handlers", "after": "timers"}.get(str(part))
        return replace(place, kind=named or "field", field=str(part))  # type: ignore[arg-type]
    if kind in ("handlers", "timers"):
        return replace(place, kind="transition", event=str(part))
    if kind == "transition":
        if isinstance(part, int):
            return place
        return replace(place, kind="actions" if part == "actions" else "field", field=str(part))
    if kind == "actions":
        return replace(place, kind="action")
    if kind == "action":
        return replace(place, kind="params", action=str(part))
    if kind == "params":
        return replace(place, kind="param", param=str(part))
    return replace(place, kind="param" if kind == "param" else "value")


def place_of(path: tuple[str | int, ...]) -> Place:
    place = Place()
    for part in path:
        place = _step(place, part)
    return place
