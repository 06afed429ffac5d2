"""What a platform can run, as data: the capability table the validator reads and the README shows.

Each provider declares one ``Platform`` (``providers/<name>/capabilities.py``): the actions it cannot
carry out, and every other constraint that would fail (or silently change) a flow at run time, one
``Constraint`` row each:

- ``place``: where an action may run. Some platforms take some commands only in the reply to one of
  their callbacks (Sinch: ``answer`` only in the reply to the call's ICE). Which callback, if any, an
  event arrives in is the platform's ``sources``: the validator follows which events can lead into each
  state (``flow/rules/replies.py``) and reports an action that can run on one that takes no such reply.
- ``closed``: a reply carries one action; after an action that is one (``closes``), a later action on
  the same call that needs the reply finds it gone.
- ``param``: a parameter the platform does not take, or takes only some literal values of.
- ``timeout``: a timeout the platform cannot hold: capped (a warning), or ``engine``: enforced by the
  engine instead (documented, nothing reported).

Pure data and small helpers: imports nothing heavier than the vocabulary (``validate`` stays light).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from flowengine.flow.vocabulary import ACTIONS, PROVIDER_ACTIONS, parse_duration

Kind = Literal["place", "closed", "param", "timeout"]
RULE_IDS: Mapping[Kind, str] = {"place": "provider-place", "closed": "provider-place",
                                 "param": "provider-param", "timeout": "provider-timeout"}
CANNOT_RULE = "provider"  # an action the platform cannot carry out at all (``flow/rules/actions.py``)
TIMER, ALWAYS_EVENT = "timer", "always"  # how the analysis names what enters a state without an event


@dataclass(frozen=True, slots=True)
class Constraint:
    id: str  # "<platform>/<action>-<what>": golden cases and end-to-end tests name their row by it
    action: str
    kind: Kind
    text: str  # what the platform does, for the README and the diagnostic
    replies: frozenset[str] = frozenset()  # place: the callbacks whose reply may carry the action
    about: str = "call"  # place: the parameter naming the call the reply must be about
    param: str | None = None  # param, timeout: the parameter
    when: str | None = None  # the row applies only when the action is given this parameter
    values: tuple[Any, ...] | None = None  # param: the literal values taken (None: the parameter is not)
    kinds: tuple[str, ...] = ()  # param of kind endpoint: the endpoint kinds taken
    limit: float | None = None  # timeout: the most the platform holds, in seconds
    engine: bool = False  # timeout: the engine enforces it (nothing to report)

    @property
    def rule(self) -> str:
        return RULE_IDS[self.kind]

    @property
    def reported(self) -> bool:
        """Whether ``validate`` reports a flow breaking this row (an engine-held timeout is not)."""
        return not self.engine

    def applies(self, params: Mapping[str, Any]) -> bool:
        """Whether the row holds for an action written with ``params`` (dial ``connect``: ``when``)."""
        return self.when is None or params.get(self.when) is not None


@dataclass(frozen=True, slots=True)
class EventSource:
    """One way a neutral event reaches the engine on a platform: in a callback taking a reply of kind
    ``reply`` (None: no reply, e.g. a REST-only callback, a timer, a follow-up the adapter derives later).
    ``after``: it can only come once one of these actions ran (a dial before its answer). ``in_reply``:
    only when such an action ran within a reply (a menu). ``inherit``: it follows at once from that action,
    handled within the same callback, so it carries whatever reply that action ran in."""

    event: str
    reply: str | None = None
    after: tuple[str, ...] = ()
    in_reply: bool = False
    inherit: str | None = None
    role: str | None = None  # the call role the callback is about, when always the same ("caller")


@dataclass(frozen=True)
class Platform:
    name: str
    title: str
    cannot: Mapping[str, str]  # action -> why the platform cannot carry it out
    constraints: tuple[Constraint, ...] = ()
    sources: tuple[EventSource, ...] = ()  # only where some action has a place row
    first: EventSource = EventSource("call.received")  # what starts a session, and its reply
    # Actions that, in a reply, are its one action -> the parameter naming their call (given, or no close).
    closes: Mapping[str, str] = field(default_factory=dict)
    reply_names: Mapping[str, str] = field(default_factory=dict)  # "ice" -> "ICE", for messages

    @property
    def supported(self) -> frozenset[str]:
        return PROVIDER_ACTIONS - frozenset(self.cannot)

    def rows(self, action: str, kind: Kind) -> list[Constraint]:
        return [c for c in self.constraints if c.action == action and c.kind == kind]

    def sources_of(self, event: str) -> list[EventSource]:
        return [s for s in self.sources if s.event == event]

    @property
    def has_places(self) -> bool:
        return any(c.kind == "place" for c in self.constraints)

    def describe_replies(self, replies: frozenset[str]) -> str:
        names = sorted(self.reply_names.get(r, r.upper()) for r in replies)
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"

    def row_ids(self) -> list[str]:
        ids = [f"{self.name}/cannot"] if self.cannot else []
        return ids + [c.id for c in self.constraints]

    def check(self) -> None:
        """Rows name real actions and parameters, once each (a typo would silently check nothing)."""
        seen: set[str] = set()
        for row in self.constraints:
            spec = ACTIONS.get(row.action)
            about = row.about if row.kind == "place" else None
            named = [name for name in (row.param, row.when, about) if name is not None]
            if spec is None or row.id in seen or any(spec.param(name) is None for name in named):
                raise ValueError(f"bad capability row {row.id!r}")
            seen.add(row.id)


# -- literal parameter values ----------------------------------------------------------------------------
UNKNOWN = object()  # a value only known at run time (a template), or not given


def literal(value: Any) -> Any:
    """The parameter's value if the flow gives it literally; ``UNKNOWN`` for a template or nothing."""
    if value is None or (isinstance(value, str) and "{{" in value):
        return UNKNOWN
    return value


def endpoint_kind(value: Any) -> str | None:
    """The kind of a literal endpoint: a bare number is a phone; ``{sip: ...}`` names its kind."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        return "phone"
    if isinstance(value, Mapping) and len(value) == 1:
        return str(next(iter(value)))
    return None


def breaks(row: Constraint, params: Mapping[str, Any]) -> bool:
    """Whether literal ``params`` of the row's action break a ``param`` or ``timeout`` row."""
    value = literal(params.get(row.param)) if row.param else UNKNOWN
    if value is UNKNOWN:
        return False
    if row.kind == "timeout":
        seconds = parse_duration(str(value)) if not isinstance(value, int | float) else float(value)
        return seconds is not None and row.limit is not None and seconds > row.limit
    if row.kinds:
        kind = endpoint_kind(value)
        return kind is not None and kind not in row.kinds
    return row.values is None or value not in row.values
