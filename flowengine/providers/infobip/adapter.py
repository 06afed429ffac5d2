"""The Infobip adapter: webhooks in, REST commands out.

Infobip takes every command over REST, so the channel sends each one at once and the webhook reply is
always an empty 200; there are no follow-up events (Infobip reports everything itself). ``execute``
carries a command out over the command table (``table.py``): retried, reconciled (``reconcile.py``) or
counted as done as its row says.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

import aiohttp

from flowengine.errors import ProviderError
from flowengine.providers.base import JSON, FollowUp, WebhookReply, WebhookRequest
from flowengine.providers.infobip import commands, reconcile
from flowengine.providers.infobip.auth import check_fresh, verify
from flowengine.providers.infobip.capabilities import CAPABILITIES
from flowengine.providers.infobip.client import InfobipClient
from flowengine.providers.infobip.config import InfobipSettings
from flowengine.providers.infobip.observe import observe as ask_platform
from flowengine.providers.infobip.table import TABLE
from flowengine.providers.infobip.webhooks import parse_events
from flowengine.providers.table import CommandSpec, call_method, carry_out, resend_unknown, resuming
from flowengine.providers.wire import Request
from flowengine.runtime.clock import Clock, SystemClock
from flowengine.runtime.events import Event
from flowengine.runtime.ports import ActionResult, Endpoint, Media, Music, ProviderCommand
from flowengine.runtime.reconcile import Observation

log = logging.getLogger("flowengine.providers")
# The refusal of a participant removal while its call is still joining (the simulator's wording).
NOT_JOINED = re.compile(r"not joined", re.IGNORECASE)

NAME = "infobip"


def _id(payload: Any, what: str) -> str:
    value = payload.get("id") if isinstance(payload, dict) else None
    if not isinstance(value, str) or not value:
        raise ProviderError(f"Infobip's answer has no {what} id")
    return value


def _participants(conference: JSON) -> list[dict[str, Any]]:
    """Neutral view of a conference's participants (``conference_info``)."""
    listed = []
    for item in conference.get("participants") or []:
        if not isinstance(item, dict):
            continue
        audio = ((item.get("media") or {}).get("audio")) or {}
        endpoint = item.get("endpoint") or {}
        listed.append({
            "call_id": item.get("callId"),
            "state": str(item.get("state") or "").lower() or None,
            "address": endpoint.get("phoneNumber") or endpoint.get("identity") or endpoint.get("username"),
            "muted": bool(audio.get("muted", False)),
            "deaf": bool(audio.get("deaf", False)),
            "role": role.get("type") if isinstance(role := item.get("role"), dict) else role,
        })
    return listed


class InfobipChannel:
    """Carries out commands over REST, one request each, in the order the executor calls them."""

    name = NAME
    capabilities = CAPABILITIES

    def __init__(self, client: InfobipClient, settings: InfobipSettings) -> None:
        self._client = client
        self._settings = settings

    def reply(self) -> WebhookReply:
        return WebhookReply()

    def follow_ups(self) -> list[FollowUp]:
        return []

    # -- the Provider port, over the command table ---------------------------------------------------
    async def execute(self, command: ProviderCommand) -> ActionResult:
        return await carry_out(self, TABLE, command)

    async def perform(self, spec: CommandSpec, command: ProviderCommand) -> ActionResult:
        return await call_method(self, spec, command)

    async def find(self, spec: CommandSpec, command: ProviderCommand) -> ActionResult | None:
        return await reconcile.FINDERS[spec.action](self._client, command)

    # -- one method per action (the table's ``perform``) -------------------------------------------
    async def _request(self, request: Request) -> JSON:
        """Sent again after an unknown outcome only if the command being carried out is idempotent."""
        return await self._client.send(request, resend_unknown=resend_unknown())

    async def _send(self, request: Request) -> ActionResult:
        answer = await self._request(request)
        status = answer.get("status")
        return ActionResult(data={"status": status} if isinstance(status, str) else {})

    async def answer(self, call_id: str) -> ActionResult:
        return await self._send(commands.answer(call_id))

    async def hangup(self, call_id: str, reason: str | None) -> ActionResult:
        """With a ``reason``, the call's state is looked at first: Infobip takes an ``errorCode`` only if it
        fits the state (``commands.hangup_code``). If the state changed in between, the refused coded
        hang-up is sent once more without a code, which fits any state."""
        if reason is None:
            return await self._send(commands.hangup(call_id, None))
        code = commands.hangup_code(reason, await self._established(call_id))
        try:
            return await self._send(commands.hangup(call_id, code))
        except ProviderError as exc:
            if code is None or exc.status != 400:
                raise
            log.info("infobip hangup %s: %s refused (%s); hanging up without a code", call_id, code, exc)
            return await self._send(commands.hangup(call_id, None))

    async def _established(self, call_id: str) -> bool:
        try:
            call = await self._request(commands.get_call(call_id))
        except ProviderError as exc:
            if exc.status != 404:
                raise
            return False  # gone: the hang-up finds it gone too ("already so")
        return call.get("state") == "ESTABLISHED"

    async def say(self, call_id: str, text: str, language: str, voice: str | None, loop: int) -> ActionResult:
        return await self._send(commands.say(call_id, text, language, voice, loop))

    async def play(self, call_id: str, media: Media, loop: int) -> ActionResult:
        return await self._send(commands.play(call_id, media, loop))

    async def stop_play(self, call_id: str) -> ActionResult:
        return await self._send(commands.stop_play(call_id))

    async def record(self, call_id: str, max_duration: float | None, beep: bool) -> ActionResult:
        return await self._send(commands.record(call_id, max_duration, beep))

    async def stop_record(self, call_id: str) -> ActionResult:
        return await self._send(commands.stop_record(call_id))

    async def capture_dtmf(
        self, call_id: str, max_digits: int, timeout: float, terminator: str | None, prompt: str | None,
        language: str,
    ) -> ActionResult:
        request = commands.capture_dtmf(call_id, max_digits, timeout, terminator, prompt, language)
        return await self._send(request)

    async def send_dtmf(self, call_id: str, digits: str) -> ActionResult:
        return await self._send(commands.send_dtmf(call_id, digits))

    async def dial(
        self, to: Endpoint, from_: str | None, timeout: float, connect_call_id: str | None,
        machine_detection: bool = False, *, key: str | None = None,
    ) -> ActionResult:
        settings = self._settings
        request = commands.dial(
            to, from_, timeout, connect_call_id,
            calls_configuration_id=settings.calls_configuration_id, sip_trunk_id=settings.sip_trunk_id,
            key=key, machine_detection=machine_detection,
        )
        answer = await self._request(request)
        if connect_call_id is None:  # 201 Call
            return ActionResult(id=_id(answer, "call"))
        conference = answer.get("conference")  # 200 {conference, call}
        data = {"conference_id": conference.get("id")} if isinstance(conference, dict) else {}
        return ActionResult(id=_id(answer.get("call"), "call"), data=data)

    async def conference_create(self, name: str | None, *, key: str | None = None) -> ActionResult:
        # The name is how a reconcile finds the conference: a nameless one is named by the key.
        configuration = self._settings.calls_configuration_id
        request = commands.conference_create(name or key, calls_configuration_id=configuration)
        return ActionResult(id=_id(await self._request(request), "conference"))

    async def conference_join(self, conference_id: str, call_id: str) -> ActionResult:
        await self._request(commands.conference_join(conference_id, call_id))
        return ActionResult()

    async def conference_dial(
        self, conference_id: str, to: Endpoint, from_: str | None, timeout: float,
        machine_detection: bool = False, *, key: str | None = None,
    ) -> ActionResult:
        trunk = self._settings.sip_trunk_id
        request = commands.conference_dial(conference_id, to, from_, timeout, sip_trunk_id=trunk, key=key,
                                           machine_detection=machine_detection)
        answer = await self._request(request)
        return ActionResult(id=_id(answer.get("call"), "call"))

    async def conference_say(self, conference_id: str, text: str, language: str) -> ActionResult:
        return await self._send(commands.conference_say(conference_id, text, language))

    async def conference_play(self, conference_id: str, media: Media, loop: int) -> ActionResult:
        return await self._send(commands.conference_play(conference_id, media, loop))

    async def conference_stop_play(self, conference_id: str) -> ActionResult:
        return await self._send(commands.conference_stop_play(conference_id))

    async def conference_record(self, conference_id: str) -> ActionResult:
        return await self._send(commands.conference_record(conference_id))

    async def conference_stop_record(self, conference_id: str) -> ActionResult:
        return await self._send(commands.conference_stop_record(conference_id))

    async def conference_hangup(self, conference_id: str) -> ActionResult:
        await self._request(commands.conference_hangup(conference_id))
        return ActionResult()

    async def conference_info(self, conference_id: str) -> ActionResult:
        conference = await self._request(commands.conference_info(conference_id))
        data = {"id": conference.get("id"), "name": conference.get("name"),
                "participants": _participants(conference)}
        return ActionResult(id=conference.get("id"), data=data)

    async def mute(self, conference_id: str, call_id: str) -> ActionResult:
        return await self._send(commands.update_participant(conference_id, call_id, muted=True))

    async def unmute(self, conference_id: str, call_id: str) -> ActionResult:
        return await self._send(commands.update_participant(conference_id, call_id, muted=False))

    async def deafen(self, conference_id: str, call_id: str) -> ActionResult:
        return await self._send(commands.update_participant(conference_id, call_id, deaf=True))

    async def undeafen(self, conference_id: str, call_id: str) -> ActionResult:
        return await self._send(commands.update_participant(conference_id, call_id, deaf=False))

    async def hold(
        self, conference_id: str, call_id: str, music: Music, media: Media | None, loop: int
    ) -> ActionResult:
        # Infobip has no hold: the participant stops hearing and being heard, and hears the hold music
        # (the flow's file, else INFOBIP_HOLD_MUSIC) played to their own call until resume stops it.
        await self._send(commands.update_participant(conference_id, call_id, muted=True, deaf=True))
        music_media = media or self._settings.hold_media()
        if music_media is None:
            return ActionResult()
        if resuming():  # an interrupted hold may have started it: at most once, like any play
            log.warning("infobip hold %s resumed: the update is sent again, the music is not", call_id)
            return ActionResult()
        try:  # the music at most once: sent again, it would start over (the update above may be resent)
            await self._client.send(commands.play(call_id, music_media, loop), resend_unknown=False)
        except ProviderError as exc:
            if not exc.outcome_unknown:
                raise
            log.warning("infobip hold %s: the music's outcome is unknown; not sent again", call_id)
        return ActionResult()

    async def resume(self, conference_id: str, call_id: str) -> ActionResult:
        await self._send(commands.stop_play(call_id))
        return await self._send(commands.update_participant(conference_id, call_id, muted=False, deaf=False))

    async def kick(self, conference_id: str, call_id: str) -> ActionResult:
        """Out of the conference and hung up, as on Sinch: Infobip's DELETE alone leaves the call up (a
        kicked guest would linger until its maxDuration). A participant who is not there (404) has left
        already: its call is left alone (it may be in another conference now). A call that ended
        meanwhile (404 to the hang-up) is done. One still joining (refused: it has not joined yet) is no
        participant to remove: hanging its call up is all of the kick."""
        result = ActionResult()
        try:
            result = await self._send(commands.kick(conference_id, call_id))
        except ProviderError as exc:
            if exc.status == 404:
                return ActionResult(data={"already": True})
            if exc.status != 400 or not NOT_JOINED.search(str(exc)):
                raise
        try:
            await self._send(commands.hangup(call_id, None))
        except ProviderError as exc:
            if exc.status != 404:
                raise
        return result


class InfobipAdapter:
    """``Adapter`` for Infobip's Calls API. ``session`` lets a caller (or a test) supply the pooled
    aiohttp session; otherwise ``start()`` opens one and ``close()`` closes it."""

    name = NAME
    capabilities = CAPABILITIES

    def __init__(
        self,
        settings: InfobipSettings,
        *,
        clock: Clock | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.settings = settings
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._client = InfobipClient(settings, clock=self._clock, session=session)

    def __repr__(self) -> str:
        return f"InfobipAdapter({self.settings!r})"

    @property
    def webhook_auth_enabled(self) -> bool:
        return self.settings.webhook_auth_enabled

    @property
    def replay_window(self) -> float:
        return self.settings.webhook_max_skew

    def parse_webhook(self, request: WebhookRequest) -> list[Event]:
        verify(request, self.settings)
        events = parse_events(request.body, recordings_base_url=self.settings.base_url)
        check_fresh(events, self._clock.now(), self.settings.webhook_max_skew)
        return events

    def channel(self, trigger: Event | None) -> InfobipChannel:
        return InfobipChannel(self._client, self.settings)

    async def observe(self, calls: Iterable[str], conferences: Iterable[str]) -> Observation:
        return await ask_platform(self._client, calls, conferences)

    async def start(self) -> None:
        await self._client.start()

    async def close(self) -> None:
        await self._client.close()
