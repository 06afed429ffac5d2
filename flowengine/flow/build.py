"""Turn a schema-valid flow document into the frozen ``Flow`` model.

The loader validates first (schema, then rules); this step only reshapes, so it trusts its input.
``locate(path)`` maps a JSON path (tuple of keys/indexes) to a source position when one is known.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flowengine.flow.model import Action, Flow, Outbound, Pos, State, Timer, Transition
from flowengine.flow.vocabulary import (
    ACTIONS,
    ALWAYS,
    IF_OPTION,
    ON_ERROR_OPTION,
    OUTBOUND_ROLE,
    START_OUTBOUND,
    parse_duration,
)

Path = tuple[str | int, ...]
Locate = Callable[[Path], Pos | None]


def _no_position(_: Path) -> Pos | None:
    return None


def build_flow(doc: Mapping[str, Any], *, source: str = "<flow>", locate: Locate = _no_position) -> Flow:
    states = {
        name: _build_state(name, body or {}, ("states", name), locate)
        for name, body in (doc.get("states") or {}).items()
    }
    return Flow(
        name=str(doc["flow"]),
        version=int(doc.get("version", 1)),
        initial=str(doc["initial"]),
        states=states,
        description=doc.get("description"),
        vars=dict(doc.get("vars") or {}),
        on=_build_handlers(doc.get("on") or {}, ("on",), locate),
        source=source,
        outbound=_build_outbound(doc.get("start"), locate),
        events=tuple(doc.get("events") or ()),
    )


def _build_outbound(start: Any, locate: Locate) -> Outbound | None:
    """``start: outbound`` or ``start: {outbound: {as, from, timeout}}``; None for an inbound flow."""
    if start == START_OUTBOUND:
        spec: Mapping[str, Any] = {}
    elif isinstance(start, Mapping) and START_OUTBOUND in start:
        spec = start[START_OUTBOUND] or {}
    else:
        return None
    role = str(spec.get("as") or OUTBOUND_ROLE)
    params = {**{k: v for k, v in spec.items() if v is not None}, "as": role}
    dial = Action("dial", _with_defaults("dial", params), locate(("start",)))
    return Outbound(role, dial)


def _build_state(name: str, body: Mapping[str, Any], path: Path, locate: Locate) -> State:
    return State(
        name=name,
        final=body.get("type") == "final",
        description=body.get("description"),
        entry=build_actions(body.get("entry") or [], (*path, "entry"), locate),
        exit=build_actions(body.get("exit") or [], (*path, "exit"), locate),
        on=_build_handlers(body.get("on") or {}, (*path, "on"), locate),
        after=tuple(
            Timer(key, parse_duration(key) or 0.0,
                  _build_transitions(f"after {key}", spec, (*path, "after", key), locate),
                  locate((*path, "after", key)))
            for key, spec in (body.get("after") or {}).items()
        ),
        pos=locate(path),
        always=(_build_transitions(ALWAYS, body[ALWAYS], (*path, ALWAYS), locate) if ALWAYS in body
                else ()),
    )


def _build_handlers(on: Mapping[str, Any], path: Path, locate: Locate) -> dict[str, tuple[Transition, ...]]:
    return {event: _build_transitions(event, spec, (*path, event), locate) for event, spec in on.items()}


def _build_transitions(event: str, spec: Any, path: Path, locate: Locate) -> tuple[Transition, ...]:
    """A transition is written as a target name, ``{target, when, actions}``, or a list of either."""
    if isinstance(spec, list):
        return tuple(_build_transition(event, item, (*path, i), locate) for i, item in enumerate(spec))
    return (_build_transition(event, spec, path, locate),)


def _build_transition(event: str, spec: Any, path: Path, locate: Locate) -> Transition:
    if isinstance(spec, str):
        return Transition(event, spec, pos=locate(path))
    return Transition(
        event=event,
        target=spec.get("target"),
        when=spec.get("when"),
        actions=build_actions(spec.get("actions") or [], (*path, "actions"), locate),
        pos=locate(path),
    )


def build_actions(items: Sequence[Any], path: Path, locate: Locate = _no_position) -> tuple[Action, ...]:
    if not items:  # most exits and transitions (issue 15)
        return ()
    actions = []
    for index, item in enumerate(items):
        ((name, params),) = item.items()
        given = dict(params) if isinstance(params, Mapping) else {}
        # ``if`` and ``on_error`` are the engine's options, not parameters (``set`` reserves the names).
        condition, on_error = given.pop(IF_OPTION, None), given.pop(ON_ERROR_OPTION, None)
        actions.append(Action(
            name, _with_defaults(name, given), locate((*path, index, name)),
            condition=condition if isinstance(condition, str) else None,
            on_error=on_error if isinstance(on_error, str) else "fail",
        ))
    return tuple(actions)


def _with_defaults(name: str, given: dict[str, Any]) -> dict[str, Any]:
    spec = ACTIONS.get(name)
    if spec is None:
        return given
    if spec.name == "set":
        # ``set: {a: 1}`` is shorthand for ``set: {vars: {a: 1}}``.
        return given if set(given) == {"vars"} else {"vars": given}
    defaults = {p.name: p.default for p in spec.params if p.default is not None and p.name not in given}
    return {**defaults, **given}
