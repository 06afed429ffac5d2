"""The provider port: one ``execute(ProviderCommand)`` for every neutral action that touches the platform.

The executor renders an action's templates and resolves roles to ids, then executes the command. A provider
either sends the command over REST or (Sinch) gathers it into the reply to the callback being handled;
the runtime never knows which. Failures raise ``flowengine.errors.ProviderError`` (``retryable`` says if
trying again may help); an action the platform cannot do raises ``ProviderUnsupported``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from flowengine.runtime.session import Session
from flowengine.runtime.values import immutable

EndpointKind = Literal["phone", "sip", "user", "webrtc"]
Music = Literal["ring", "music1", "music2", "music3"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    kind: EndpointKind
    address: str


@dataclass(frozen=True, slots=True)
class Media:
    """Audio to play: a platform file id or a URL."""

    file_id: str | None = None
    url: str | None = None


@immutable  # one per command sent
class ActionResult:
    """What a command produced: ``id`` is bound by ``as:`` (new call id, conference id); ``data`` is
    extra (conference_info's participants, http's response)."""

    id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


# ActionResult.data a provider answers when a command's intent already held (the platform refused it as
# done already), or when it may or may not have been carried out and is not sent again (at most once).
# The trace says so: a greeting whose outcome is unknown explains a flow that waited for its timer.
ALREADY: Mapping[str, Any] = {"already": True}
UNKNOWN: Mapping[str, Any] = {"outcome": "unknown"}


@immutable  # one per command sent
class ProviderCommand:
    """One neutral command for the platform.

    ``args`` are the action's arguments as ``binding.provider_arguments`` builds them (``call_id``,
    ``conference_id``, ``to``, ``media``, ...). ``key`` is the correlation key the engine chose, unique per
    session, step and command: a provider puts it where the platform keeps it (a dial's custom data, a
    conference id) so it can find what an earlier attempt created. ``resumed`` says an earlier attempt
    may have been carried out (a restart mid-command, or a retry after an unknown outcome): a provider
    asks the platform first before sending anything that is not idempotent.
    """

    action: str
    args: Mapping[str, Any]
    key: str
    resumed: bool = False


class Provider(Protocol):
    """A platform, as the executor sees it: one entry point, dispatching on the provider's command table.

    ``execute`` raises ``ProviderUnsupported`` for an action not in ``capabilities`` and ``ProviderError``
    for a failure (``retryable``/``outcome_unknown`` say whether and how it may be tried again); a
    platform answer that means "already so" (hanging up an ended call) is success, not an error.
    """

    name: str
    capabilities: frozenset[str]  # neutral action names this provider can carry out

    async def execute(self, command: ProviderCommand) -> ActionResult: ...


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One ``http`` action's request. ``headers`` are as the flow wrote them: a ``${VAR}`` in a value is
    the service's to replace from its environment when sending (so no secret lives in the flow, the
    session or its outbox). At most one of ``json`` and ``form`` is set. ``timeout``: seconds the flow
    allows (None: the client's own limit; never more than it)."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    form: Mapping[str, str] | None = None
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A 2xx answer: ``body`` is the decoded JSON, else the text (None when empty); header names are
    lower case."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


class HttpClient(Protocol):
    """What the ``http`` action needs. The service's client enforces the host allow-list, sends the
    request and returns the answer; a refusal, a failure or an answer that is not 2xx raises
    ``ProviderError`` (with the status, when there was an answer)."""

    async def request(self, request: HttpRequest) -> HttpAnswer: ...


class Pacer(Protocol):
    """Paces what creates calls (platforms cap how fast): ``acquire`` waits for the provider's next slot
    and returns the seconds waited; ``ProviderError`` when the slot is too far off to wait for."""

    async def acquire(self, provider: str) -> float: ...


class Observer(Protocol):
    """Watches what the runtime does, for the service's metrics and logs; it must return at once and never
    fail (it is called on the hot path, inside the session's lock).

    ``stepped``: the engine has decided one event (or an eventless transition, an abort): ``before`` is the
    session as it was given, ``after`` as decided, with the decision's steps at the end of its trace
    (``runtime.observing.new_steps``). ``commanded``: one attempt at a command through the Provider (or
    ``http``) port ended, with ``outcome`` one of ``observing.COMMAND_OUTCOMES``, after ``seconds``.
    """

    def stepped(self, before: Session, after: Session) -> None: ...

    def commanded(
        self, session: Session, provider: str, action: str, outcome: str, seconds: float
    ) -> None: ...
