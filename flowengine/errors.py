"""One exception tree for the whole package.

    FlowEngineError                 base of everything we raise on purpose
    ├── FlowError                   a flow file could not be loaded (carries diagnostics)
    ├── ConfigError                 the service configuration is invalid
    ├── ExpressionError             a template or guard failed to render at run time
    │   └── ExpressionBudgetError   it went over its budget (size, operations or time: flow.costs)
    ├── ProviderError               a platform refused or failed a command (``retryable`` says
    │   │                           whether trying again may help; ``status`` is the HTTP status;
    │   │                           ``outcome_unknown`` says the platform may have carried it out)
    │   └── ProviderUnsupported     the provider cannot perform this neutral action at all
    ├── WebhookError                an inbound webhook is unusable (``status`` is the 4xx to answer)
    │   └── WebhookAuthError        it failed authentication (401)
    ├── RequestError                an API request is unusable or refused (``status`` is the 4xx)
    ├── StoreError                  a session store failed (adapters translate driver errors)
    │   └── ConflictError           optimistic concurrency: somebody else wrote the session first
    ├── SessionNotFound             no session for that id or call
    ├── RecordingError              a replay file cannot be read (not JSON, not this format)
    └── GraphvizError               Graphviz could not draw a flow (not installed, failed, too slow)

Adapters translate foreign errors (aiohttp, redis, sqlite) into these at the edge, so callers only
ever catch ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowengine.flow.diagnostics import Diagnostic


# The neutral kinds of a failed action (``action.failed``'s ``event.data.kind``): a flow's guard tells
# them apart without knowing the platform's status codes. ``error_kind`` is the one mapping.
ERROR_KINDS: dict[str, str] = {
    "not_found": "the call, conference or participant is not there (HTTP 404, 410)",
    "rejected": "the platform refused the command as it stands (other 4xx, such as 400, 409, 422)",
    "unavailable": "the platform could not take it now (429, 5xx, or it could not be reached)",
    "timeout": "no answer in time (408, 504, or no answer within the deadline: it may have been done)",
    "not_allowed": "the platform or the service does not allow it (401, 403, 405, an action the "
                   "provider cannot perform, a refusal made before sending)",
    "invalid": "the action's parameters did not render (a template error, a role not bound, a bad value)",
}


class FlowEngineError(Exception):
    """Base class of every error flowengine raises on purpose."""


class FlowError(FlowEngineError):
    """A flow could not be loaded; ``diagnostics`` says why, with positions."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        first = self.diagnostics[0].format() if self.diagnostics else "invalid flow"
        more = f" (+{len(self.diagnostics) - 1} more)" if len(self.diagnostics) > 1 else ""
        super().__init__(first + more)


class ConfigError(FlowEngineError):
    """The service configuration is invalid."""


class ExpressionError(FlowEngineError):
    """A template or guard failed at run time (an undefined name, a type error, ...)."""

    kind = "invalid"


class ExpressionBudgetError(ExpressionError):
    """A template or guard was stopped before it grew too big or ran too long (``flow.costs``)."""


class ProviderError(FlowEngineError):
    """A platform refused or failed a command.

    Three kinds a caller must tell apart: refused (a 4xx: nothing was done, ``retryable`` False);
    nothing sent or nothing done (connection refused, connect timeout, 429: ``retryable`` True,
    ``outcome_unknown`` False, safe to send again); and outcome unknown (read timeout or deadline,
    connection dropped after sending, 5xx: ``outcome_unknown`` True), where the platform may have
    carried the command out and only an idempotent command may be sent again blindly.
    ``retry_after`` is the platform's ``Retry-After`` in seconds, if it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        status: int | None = None,
        code: str | None = None,
        outcome_unknown: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.code = code
        self.outcome_unknown = outcome_unknown
        self.retry_after = retry_after

    @property
    def kind(self) -> str:
        """The neutral kind (``ERROR_KINDS``) of this failure."""
        return error_kind(self.status, retryable=self.retryable, outcome_unknown=self.outcome_unknown)

    @property
    def safe_to_resend(self) -> bool:
        """Sending the same request again cannot do it twice: the platform did nothing."""
        return self.retryable and not self.outcome_unknown


class ProviderUnsupported(ProviderError):
    """The provider cannot perform this neutral action at all."""

    def __init__(self, provider: str, action: str) -> None:
        super().__init__(f'provider "{provider}" cannot perform action "{action}"', retryable=False)
        self.provider = provider
        self.action = action

    @property
    def kind(self) -> str:
        return "not_allowed"


_STATUS_KINDS = {404: "not_found", 410: "not_found", 401: "not_allowed", 403: "not_allowed",
                 405: "not_allowed", 408: "timeout", 504: "timeout", 429: "unavailable"}


def error_kind(status: int | None, *, retryable: bool = False, outcome_unknown: bool = False) -> str:
    """The neutral kind of a platform failure, from its HTTP status; without one, from what is known:
    no answer in time (the outcome is unknown), nothing sent (retryable), or refused before sending."""
    if status is not None:
        return _STATUS_KINDS.get(status) or ("unavailable" if status >= 500 else "rejected")
    if outcome_unknown:
        return "timeout"
    return "unavailable" if retryable else "not_allowed"


class WebhookError(FlowEngineError):
    """An inbound webhook cannot be used; ``status`` is the 4xx answered."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class WebhookAuthError(WebhookError):
    """An inbound webhook failed authentication."""

    def __init__(self, message: str = "webhook authentication failed") -> None:
        super().__init__(message, status=401)


class RequestError(FlowEngineError):
    """An API request cannot be carried out as asked (a bad body, an unknown flow, a session that has
    ended); ``status`` is the 4xx answered, the message says what is wrong."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class StoreError(FlowEngineError):
    """A session store failed."""


class ConflictError(StoreError):
    """Somebody else wrote the session since it was read."""


class SessionNotFound(FlowEngineError):
    """No session matches that id or call id."""


class RecordingError(FlowEngineError):
    """A replay file cannot be read: the message names the file and what is wrong with it."""


class GraphvizError(FlowEngineError):
    """Graphviz's ``dot`` could not draw a flow: not installed, failed, or took too long."""
