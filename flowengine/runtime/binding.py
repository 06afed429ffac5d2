"""From an action's rendered parameters to a Provider call, and from its result back into the session.

Role names become ids (an unbound role is an ``ExpressionError``, so the command fails for good with a
clear message), ``endpoint`` values become ``Endpoint`` (a plain string is a phone number), durations
become seconds, ``file_id``/``url`` become ``Media``. Keyword names follow the Provider port.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flowengine.errors import ExpressionError
from flowengine.flow.vocabulary import ACTIONS, ENDPOINT_KINDS, ActionSpec, Param, parse_duration
from flowengine.runtime.events import Event
from flowengine.runtime.ports import ALREADY, UNKNOWN, ActionResult, Endpoint, Media
from flowengine.runtime.session import ACTIVE, DIALING, ENDED, Session

# Event.data of a call's webhook: the correlation key of the command that created the call, where the
# platform hands it back (a Sinch callout's ``custom``).
PLACED_BY = "placed_by"
_STANDIN = "placed:"

_KWARG = {"call": "call_id", "conference": "conference_id", "from": "from_", "connect": "connect_call_id"}
_MEDIA = ("file_id", "url")
_BINDINGS = ("new_call", "new_conference", "new_var")


def provider_arguments(action: str, params: Mapping[str, Any], session: Session) -> dict[str, Any]:
    """Keyword arguments for ``Provider.<action>`` from rendered ``params``."""
    kwargs = {kwarg: to_arg(action, params.get(name), session) for name, kwarg, to_arg in _ARGUMENTS[action]}
    if action in _WITH_MEDIA:
        media = Media(_text(params.get("file_id")), _text(params.get("url")))
        # Media is required where the action plays it (play); optional where it only flavours it (hold).
        kwargs["media"] = media if media.file_id or media.url or action in _NEEDS_MEDIA else None
    return kwargs


def bind_result(
    action: str, params: Mapping[str, Any], result: ActionResult | Any, session: Session
) -> str | None:
    """Apply ``as:`` and the command's effect on what the session owns; a short detail for the trace."""
    spec = ACTIONS[action]
    name = params.get("as")
    as_param = spec.param("as")
    kind = as_param.kind if name and as_param is not None else None
    if action == "hangup":
        session.call_states[session.calls[params["call"]]] = ENDED
    elif action == "conference_hangup":
        session.conference_states[session.conferences[params["conference"]]] = ENDED
    if kind == "new_var":
        value = result.data if isinstance(result, ActionResult) else result
        session.vars[str(name)] = dict(value) if isinstance(value, Mapping) else value
        return None
    new_id = result.id if isinstance(result, ActionResult) else None
    if kind is None:
        return new_id or _settled(result)
    if not new_id:
        raise ExpressionError(f'{action} returned no id to bind as "{name}"')
    if kind == "new_call":
        session.calls[str(name)] = new_id
        session.call_states[new_id] = DIALING
    else:
        session.conferences[str(name)] = new_id
        session.conference_states[new_id] = ACTIVE
    return new_id


def _settled(result: ActionResult | Any) -> str | None:
    """How the provider settled a command that did not simply succeed, for the trace."""
    data = result.data if isinstance(result, ActionResult) else None
    if data == UNKNOWN:
        return "outcome unknown: not sent again"
    return "already so" if data == ALREADY else None


def nothing_to_undo(action: str, params: Mapping[str, Any], session: Session) -> str | None:
    """Why a teardown action (``hangup``, ``kick``, ``resume``, ...) has nothing to do, or None: a role it
    names was never bound in this session, or its call or conference has ended. Either way what it
    would undo is already undone, which is success (the trace says which)."""
    for param in ("conference", "call"):
        role = params.get(param)
        if role is None:
            continue
        owned, states = ((session.calls, session.call_states) if param == "call"
                         else (session.conferences, session.conference_states))
        found = owned.get(str(role))
        if found is None:
            return f'nothing to do: {param} role "{role}" was never bound'
        if states.get(found) == ENDED:
            return f'nothing to do: {param} "{role}" has already ended'
    return None


def still_ringing(action: str, params: Mapping[str, Any], session: Session) -> bool:
    """A ``kick`` of a call still being dialled in: it is no participant yet (Sinch answers 404, Infobip
    400), so kicking it is hanging it up, which cancels the join."""
    call_id = session.calls.get(str(params.get("call")))
    return action == "kick" and call_id is not None and session.call_states.get(call_id) == DIALING


def standin_id(key: str) -> str:
    """The id a call is bound under until the platform names it: the answer to the command that created it
    was lost and the platform cannot be asked (Sinch lists no calls), but its webhooks carry ``key``."""
    return _STANDIN + key


def is_standin(call_id: str) -> bool:
    return call_id.startswith(_STANDIN)


def adopt(session: Session, event: Event) -> str | None:
    """Bind the call ``event`` is about in place of the stand-in for the command that created it (its
    ``PLACED_BY`` key); the state the stand-in had, None if there was none to replace."""
    key = event.data.get(PLACED_BY)
    if not isinstance(key, str) or event.call_id is None or event.call_id in session.call_states:
        return None
    standin = standin_id(key)
    state = session.call_states.pop(standin, None)
    if state is None:
        return None
    for role, call_id in list(session.calls.items()):
        if call_id == standin:
            session.calls[role] = event.call_id
    session.call_states[event.call_id] = state
    return state


def role_id(action: str, kind: str, role: Any, session: Session) -> str:
    owned = session.calls if kind == "call" else session.conferences
    found = owned.get(str(role)) if role is not None else None
    if found is None:
        raise ExpressionError(f'{action}: {kind} role "{role}" is not bound in this session')
    return found


def endpoint(value: Any) -> Endpoint:
    """A phone number, or a one-key mapping such as ``{sip: alice@example.com}``."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        return Endpoint("phone", str(value))
    if isinstance(value, Mapping) and len(value) == 1:
        ((kind, address),) = value.items()
        if kind in ENDPOINT_KINDS:
            return Endpoint(kind, str(address))
    kinds = "|".join(ENDPOINT_KINDS)
    raise ExpressionError(f"not an endpoint: {value!r} (a phone number, or {{{kinds}: address}})")


def seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    parsed = parse_duration(str(value))
    if parsed is None:
        raise ExpressionError(f"not a duration: {value!r}")
    return parsed


Convert = Callable[[str, Any, Session], Any]


def _converter(param: Param) -> Convert:
    """How one parameter's rendered value becomes the provider's argument (chosen once per action)."""
    kind = param.kind
    if kind in ("call", "conference"):
        if param.required:
            return lambda action, value, session: role_id(action, kind, value, session)
        return lambda action, value, session: None if value is None else role_id(action, kind, value, session)
    plains: dict[str, Callable[[Any], Any]] = {
        "endpoint": endpoint, "duration": seconds, "integer": _integer, "boolean": bool, "mapping": _mapping,
        "headers": _mapping, "expressions": _mapping,
    }
    plain: Callable[[Any], Any] = plains.get(kind, _text)

    def convert(_action: str, value: Any, _session: Session) -> Any:
        return None if value is None else plain(value)

    return convert


def _integer(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ExpressionError(f"not an integer: {value!r}") from exc


def _mapping(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _arguments(spec: ActionSpec) -> tuple[tuple[str, str, Convert], ...]:
    media = spec.param(_MEDIA[0]) is not None
    return tuple(
        (p.name, _KWARG.get(p.name, p.name), _converter(p))
        for p in spec.params
        if p.kind not in _BINDINGS and not (media and p.name in _MEDIA)
    )


_ARGUMENTS = {name: _arguments(spec) for name, spec in ACTIONS.items()}
_WITH_MEDIA = frozenset(name for name, spec in ACTIONS.items() if spec.param(_MEDIA[0]) is not None)
_NEEDS_MEDIA = frozenset(name for name, spec in ACTIONS.items() if spec.one_of == _MEDIA)
