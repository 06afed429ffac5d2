"""The provider port: one async method per neutral action that touches the platform.

The executor renders an action's templates and resolves roles to ids, then calls the method. A provider
either sends the command over REST or (Sinch) gathers it into the reply to the callback being handled;
the runtime never knows which. Failures raise ``flowengine.errors.ProviderError`` (``retryable`` says if
trying again may help); an action the platform cannot do raises ``ProviderUnsupported``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

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


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What a command produced: ``id`` is bound by ``as:`` (new call id, conference id); ``data`` is
    extra (conference_info's participants, http's response)."""

    id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    """A platform, as the executor sees it."""

    name: str
    capabilities: frozenset[str]  # neutral action names this provider can carry out

    async def answer(self, call_id: str) -> ActionResult: ...
    async def hangup(self, call_id: str, reason: str | None) -> ActionResult: ...
    async def say(
        self, call_id: str, text: str, language: str, voice: str | None, loop: int
    ) -> ActionResult: ...
    async def play(self, call_id: str, media: Media, loop: int) -> ActionResult: ...
    async def stop_play(self, call_id: str) -> ActionResult: ...
    async def record(self, call_id: str, max_duration: float | None, beep: bool) -> ActionResult: ...
    async def stop_record(self, call_id: str) -> ActionResult: ...
    async def capture_dtmf(
        self, call_id: str, max_digits: int, timeout: float, terminator: str | None, prompt: str | None,
        language: str,
    ) -> ActionResult: ...
    async def send_dtmf(self, call_id: str, digits: str) -> ActionResult: ...
    async def dial(
        self, to: Endpoint, from_: str | None, timeout: float, connect_call_id: str | None
    ) -> ActionResult: ...
    async def conference_create(self, name: str | None) -> ActionResult: ...
    async def conference_join(self, conference_id: str, call_id: str) -> ActionResult: ...
    async def conference_dial(
        self, conference_id: str, to: Endpoint, from_: str | None, timeout: float
    ) -> ActionResult: ...
    async def conference_say(self, conference_id: str, text: str, language: str) -> ActionResult: ...
    async def conference_play(self, conference_id: str, media: Media, loop: int) -> ActionResult: ...
    async def conference_stop_play(self, conference_id: str) -> ActionResult: ...
    async def conference_hangup(self, conference_id: str) -> ActionResult: ...
    async def conference_info(self, conference_id: str) -> ActionResult: ...
    async def mute(self, conference_id: str, call_id: str) -> ActionResult: ...
    async def unmute(self, conference_id: str, call_id: str) -> ActionResult: ...
    async def deafen(self, conference_id: str, call_id: str) -> ActionResult: ...
    async def undeafen(self, conference_id: str, call_id: str) -> ActionResult: ...
    async def hold(
        self, conference_id: str, call_id: str, music: Music, media: Media | None, loop: int
    ) -> ActionResult: ...
    async def resume(self, conference_id: str, call_id: str) -> ActionResult: ...
    async def kick(self, conference_id: str, call_id: str) -> ActionResult: ...


class HttpClient(Protocol):
    """What the ``http`` action needs. The service's adapter enforces the host allow-list, sends the
    request and returns the decoded JSON response; failures raise ``ProviderError``."""

    async def request(self, method: str, url: str, body: Mapping[str, Any] | None) -> Any: ...
