"""What the service needs from a provider adapter, beyond the runtime's ``Provider`` port.

A webhook arrives as a framework-neutral ``WebhookRequest``. The adapter verifies and parses it into
neutral events, then opens a ``Channel`` for handling them: the channel is the ``Provider`` the executor
runs the plan through. Infobip's channel sends every command over REST; Sinch's gathers what may be said
in the callback's reply (SVAML) and sends the rest over REST. ``channel.follow_ups()`` drains the events
the platform will not send (Sinch's implicit answer, a join it does not report): the service handles the
zero-delay ones through the same channel BEFORE building ``channel.reply()`` (so they may still add to the
reply) and the delayed ones later, each with a channel of its own. The runtime never knows which style.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flowengine.runtime.events import Event
from flowengine.runtime.ports import Provider
from flowengine.runtime.reconcile import Observation
from flowengine.runtime.values import immutable


@immutable  # one per webhook
class WebhookRequest:
    method: str
    path: str  # URL path, no host or query
    headers: Mapping[str, str]  # case-insensitive lookups: adapters use .get on a lower-cased copy
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)


@immutable  # one per webhook
class WebhookReply:
    status: int = 200
    body: bytes = b""
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class FollowUp:
    """An event the platform will not send but the flow must see, after ``delay`` seconds (on the
    service's clock): Sinch's implicit answer, a conference join it does not report, the end of a say."""

    event: Event
    delay: float = 0.0


class Channel(Provider, Protocol):
    """A ``Provider`` bound to the handling of one webhook (or of a timer, with no webhook)."""

    def reply(self) -> WebhookReply: ...
    def follow_ups(self) -> list[FollowUp]: ...


class Adapter(Protocol):
    name: str
    capabilities: frozenset[str]

    @property
    def webhook_auth_enabled(self) -> bool:
        """False when every webhook would be accepted unauthenticated (``serve`` refuses to start, unless
        the config says ``insecure_webhooks``)."""
        ...

    @property
    def replay_window(self) -> float | None:
        """Seconds a webhook's timestamp may be from now, either way, before it is refused as stale;
        None when this platform's webhooks carry no time that is checked."""
        ...

    def parse_webhook(self, request: WebhookRequest) -> list[Event]:
        """Verify and parse; raise ``WebhookAuthError`` (401) or ``WebhookError`` (4xx). Unknown event
        types give an empty list (acknowledged, logged by the caller)."""
        ...

    def channel(self, trigger: Event | None) -> Channel:
        """A channel for carrying out the commands planned while handling ``trigger``."""
        ...

    async def observe(self, calls: Iterable[str], conferences: Iterable[str]) -> Observation:
        """What the platform shows of these calls and conferences (``runtime.reconcile``)."""
        ...

    async def start(self) -> None:
        """Open pooled clients (called once at service start-up)."""
        ...

    async def close(self) -> None: ...


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


JSON = dict[str, Any]
