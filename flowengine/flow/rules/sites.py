"""Every transition and action in a flow with its JSON path, so rules can point at the source."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, NamedTuple

from flowengine.flow.expressions import has_template
from flowengine.flow.model import Action, Flow, Transition
from flowengine.flow.source import Path
from flowengine.flow.vocabulary import ALWAYS, HTTP_RESPONSE, IF_OPTION, START_OUTBOUND

SAVE = "save"  # the http action's variables set from its answer

Phase = Literal["entry", "exit", "transition"]


# Records of one load, thousands of each for a large flow: named tuples, immutable like a frozen
# dataclass and made in half the time (issue 15).
class TransitionSite(NamedTuple):
    state: str | None  # None: a flow-level handler (it applies in every state without its own)
    event: str  # the event name, the timer's duration key, or "always" (eventless)
    timer: bool
    transition: Transition
    path: Path  # the transition as written: the target string, or the {target, when, actions} mapping


class ActionSite(NamedTuple):
    state: str | None
    phase: Phase
    action: Action
    path: Path  # the action item: (..., "entry", 2)
    via: TransitionSite | None = None  # for transition actions


def lookup(doc: Any, path: Path) -> Any:
    node = doc
    for part in path:
        kind = type(node)  # documents hold dicts and lists: the Mapping ABC's check, slow, comes last
        if kind is dict:
            node = node.get(part)
        elif kind is list:  # (a list is no Mapping)
            if not (isinstance(part, int) and 0 <= part < len(node)):
                return None
            node = node[part]
        elif isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node


def transition_sites(flow: Flow, doc: Mapping[str, Any]) -> list[TransitionSite]:
    """Each handler's transitions, with the path they are written at (a list's items by index): each
    state's part of the document looked up once, not from the top for each handler (issue 15)."""
    sites = _handler_sites(None, flow.on, ("on",), lookup(doc, ("on",)))
    written_states = lookup(doc, ("states",))
    for state in flow.states.values():
        base: Path = ("states", state.name)
        body = lookup(written_states, (state.name,))
        sites.extend(_handler_sites(state.name, state.on, (*base, "on"), lookup(body, ("on",))))
        timers = lookup(body, ("after",)) if state.after else None
        for timer in state.after:
            written = lookup(timers, (timer.key,))
            sites.extend(_sites(state.name, timer.key, True, timer.transitions, (*base, "after", timer.key),
                                written))
        if state.always:
            sites.extend(
                _sites(state.name, ALWAYS, False, state.always, (*base, ALWAYS), lookup(body, (ALWAYS,)))
            )
    return sites


def _handler_sites(
    state: str | None, handlers: Mapping[str, tuple[Transition, ...]], base: Path, written: Any
) -> list[TransitionSite]:
    """``written``: the handlers' mapping in the document."""
    sites: list[TransitionSite] = []
    for event, transitions in handlers.items():
        sites.extend(_sites(state, event, False, transitions, (*base, event), lookup(written, (event,))))
    return sites


def _sites(
    state: str | None,
    event: str,
    timer: bool,
    transitions: tuple[Transition, ...],
    path: Path,
    written: Any,
) -> list[TransitionSite]:
    """``written``: the document's value at ``path``."""
    if isinstance(written, list):
        return [TransitionSite(state, event, timer, t, (*path, i)) for i, t in enumerate(transitions)]
    return [TransitionSite(state, event, timer, t, path) for t in transitions]


def action_sites(
    flow: Flow, doc: Mapping[str, Any], transitions: Iterable[TransitionSite] | None = None
) -> list[ActionSite]:
    """``transitions``: ``transition_sites(flow, doc)`` when the caller has them already."""
    sites: list[ActionSite] = []
    for state in flow.states.values():
        for phase in ("entry", "exit"):
            actions = state.entry if phase == "entry" else state.exit
            sites.extend(
                ActionSite(state.name, phase, a, ("states", state.name, phase, i))
                for i, a in enumerate(actions)
            )
    for site in transition_sites(flow, doc) if transitions is None else transitions:
        sites.extend(
            ActionSite(site.state, "transition", a, (*site.path, "actions", i), site)
            for i, a in enumerate(site.transition.actions)
        )
    return sites


class Template(NamedTuple):
    """A string holding a template (in action parameters) or a guard (``when``), with its path."""

    path: Path
    text: str  # as written; a guard is a bare expression
    guard: bool
    scope: frozenset[str] = frozenset()  # names readable there besides the usual ones (``response``)


def templates(
    actions: Iterable[ActionSite], transitions: Iterable[TransitionSite], doc: Mapping[str, Any]
) -> list[Template]:
    """Parameters are read from the document as written (``set`` is not normalised there); an action's
    ``if`` is a guard, like ``when``. Each action list is looked up once for all its items, and the
    templates gathered into one list (a generator a nested value made listing them slow: issue 15)."""
    found: list[Template] = []
    lists: dict[Path, Any] = {}
    for site in actions:
        where = site.path[:-1]
        items = lists[where] if where in lists else lists.setdefault(where, lookup(doc, where))
        path = (*site.path, site.action.name)
        params = lookup(items, path[-2:])
        is_mapping = type(params) is dict or isinstance(params, Mapping)  # the ABC check is slow
        if is_mapping and isinstance(params.get(IF_OPTION), str) and params[IF_OPTION]:
            found.append(Template((*path, IF_OPTION), params[IF_OPTION], True))
            params = {key: value for key, value in params.items() if key != IF_OPTION}
        if site.action.name == "http" and is_mapping:
            found.extend(_saved(params.get(SAVE), (*path, SAVE)))
            params = {key: value for key, value in params.items() if key != SAVE}
        _add_template_strings(params, path, found)
    for tsite in transitions:
        when = tsite.transition.when
        if isinstance(when, str):
            found.append(Template((*tsite.path, "when"), when, True))
    start: Path = ("start", START_OUTBOUND)  # an outbound start's dial (its caller id may be a template)
    _add_template_strings(lookup(doc, start), start, found)
    return found


def _saved(save: Any, path: Path) -> Iterator[Template]:
    """An ``http`` action's ``save`` entries: bare expressions, like guards, that may read the answer."""
    if isinstance(save, Mapping):
        for name, source in save.items():
            if isinstance(source, str) and source:
                yield Template((*path, name), source, True, frozenset({HTTP_RESPONSE}))


def _add_template_strings(value: Any, path: Path, found: list[Template]) -> None:
    if isinstance(value, str):
        if has_template(value):
            found.append(Template(path, value, False))
    elif type(value) is dict or isinstance(value, Mapping):
        for key, item in value.items():
            if type(item) is str:  # most parameters: no call, and no path unless it holds a template
                if has_template(item):
                    found.append(Template((*path, key), item, False))
            else:
                _add_template_strings(item, (*path, key), found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _add_template_strings(item, (*path, index), found)
