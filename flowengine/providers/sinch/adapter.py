"""The Sinch adapter: callbacks in; SVAML replies and REST commands out.

Sinch expects the answer to an ICE, ACE or PIE callback as SVAML in the HTTP reply, and some things can
only be said there (answering, joining a conference, collecting digits, bridging). So the channel for
such a callback owns a ``ReplyBuilder``: commands about the callback's own call go into the reply while
it is open (instructions in order; the first action closes it), everything else goes over REST at once.
The channel for a DiCE, a Notify or a timer uses REST only, and so does the one for a PIE that reports
keys a conference participant pressed: every join asks Sinch to detect them (``conferenceDtmfOptions``),
and Sinch wants only a 200 for those.

Sinch reports neither an inbound answer, a ``connectConf`` join, the end of a say, nor the creation or
end of a conference, so the channel hands those to the service as ``FollowUp``s:

- ``delay == 0``: handle it at once, in the same session and through this same channel, before
  ``reply()`` — what it plans can still go into the reply (the bundled flow's ``answer`` ->
  ``call.answered`` -> ``conference_join`` becomes ``answer`` + ``connectConf`` in the ICE reply);
- ``delay > 0``: it follows from the reply or a REST command; handle it ``delay`` seconds after the reply.

``follow_ups()`` hands over what was gathered since its last call, so the service can loop until the
zero-delay ones are exhausted, then call ``reply()``. ``execute`` carries a command out over the command
table (``table.py``): into the reply, or over REST retried or settled as its row says.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import uuid
from collections.abc import Iterable
from typing import Any

import aiohttp

from flowengine.errors import ProviderError
from flowengine.providers.base import JSON, FollowUp, WebhookReply, WebhookRequest
from flowengine.providers.sinch import commands, svaml
from flowengine.providers.sinch.answers import callout_id, conference_id_for, participants
from flowengine.providers.sinch.callbacks import (
    bridge_id,
    parse_callback,
    split_bridge,
    verify,
)
from flowengine.providers.sinch.capabilities import CAPABILITIES
from flowengine.providers.sinch.client import SinchClient
from flowengine.providers.sinch.config import SinchSettings
from flowengine.providers.sinch.observe import observe as ask_platform
from flowengine.providers.sinch.replies import joins_conference, reply_for
from flowengine.providers.sinch.svaml import ReplyBuilder
from flowengine.providers.sinch.table import TABLE
from flowengine.providers.table import CommandSpec, call_method, carry_out, resend_unknown
from flowengine.providers.wire import Request
from flowengine.runtime.binding import is_standin, standin_id
from flowengine.runtime.clock import Clock, SystemClock
from flowengine.runtime.engine import RING_TIMEOUT
from flowengine.runtime.events import Event
from flowengine.runtime.ports import ActionResult, Endpoint, Media, Music, ProviderCommand
from flowengine.runtime.reconcile import Observation

log = logging.getLogger("flowengine.providers")

NAME = "sinch"
# Sinch acts on a reply as soon as it has it; what follows from the reply is due a moment after.
OBEY_SECONDS = 0.1
RING_GRACE = 2.0  # seconds past a dial's timeout before the engine's stand-in ring timeout
PLAY_LOCALE = "en-US"  # playFiles wants a locale; it only matters for #tts prompts


def _only_in_reply(what: str, where: str) -> ProviderError:
    return ProviderError(f"Sinch can {what} only in the reply to {where} about that call, not over REST")


class SinchChannel:
    """Carries out the commands planned while handling one callback (or a timer): into the callback's
    SVAML reply when they may go there, over REST otherwise."""

    name = NAME
    capabilities = CAPABILITIES

    def __init__(
        self, client: SinchClient, settings: SinchSettings, trigger: Event | None, reply: ReplyBuilder | None
    ) -> None:
        self._client = client
        self._settings = settings
        self._reply = reply
        self._reply_call = trigger.call_id if reply is not None and trigger is not None else None
        self._joining = reply is not None and joins_conference(trigger)  # a conference leg's own ACE
        self._pending: list[FollowUp] = []
        self._answered: WebhookReply | None = None
        base = (trigger.event_id or trigger.dedupe_key()) if trigger is not None else uuid.uuid4().hex
        self._ids = (f"{base}>{n}" for n in itertools.count(1))

    # -- the Channel protocol ----------------------------------------------------------------------
    def reply(self) -> WebhookReply:
        """SVAML for an ICE/ACE/PIE (closed from now on: later commands go over REST), else an empty 200."""
        if self._answered is None:
            if self._reply is None:
                self._answered = WebhookReply()
            else:
                body = json.dumps(self._reply.build(), separators=(",", ":")).encode()
                self._answered = WebhookReply(200, body, "application/json")
        return self._answered

    def follow_ups(self) -> list[FollowUp]:
        handed, self._pending = self._pending, []
        return handed

    # -- the Provider port, over the command table ---------------------------------------------------
    async def execute(self, command: ProviderCommand) -> ActionResult:
        return await carry_out(self, TABLE, command)

    async def perform(self, spec: CommandSpec, command: ProviderCommand) -> ActionResult:
        return await call_method(self, spec, command)

    async def find(self, spec: CommandSpec, command: ProviderCommand) -> ActionResult | None:
        """A join is confirmed by asking; a callout cannot be asked about (Sinch lists no calls), so it is
        bound under a stand-in id that its first callback, carrying the key, replaces (see table.py)."""
        args = command.args
        if spec.action == "conference_join":
            joined = await self._in_conference(args["conference_id"], args["call_id"])
            return ActionResult() if joined else None
        if spec.reconcile != "awaited" or command.key is None or args.get("connect_call_id"):
            return None
        log.warning("sinch %s %s: outcome unknown; bound under a stand-in until a callback names the call",
                    spec.action, command.key)
        standin = standin_id(command.key)
        return ActionResult(id=self._ring_for(standin, args["timeout"], args.get("conference_id")))

    # -- helpers -----------------------------------------------------------------------------------
    def _open_reply(self, call_id: str) -> ReplyBuilder | None:
        """The reply, if it is still open and about ``call_id``."""
        reply = self._reply
        return reply if reply is not None and reply.open and call_id == self._reply_call else None

    def _follow(self, name: str, delay: float, *, extra: JSON | None = None, **fields: Any) -> None:
        event = Event(name, event_id=next(self._ids), data={"implicit": True, **(extra or {})}, **fields)
        self._pending.append(FollowUp(event, delay))

    def _ring_for(self, call_id: str, timeout: float, conference_id: str | None = None) -> str:
        """A callout rings for as long as Sinch lets it: stand in for the dial's ``timeout`` with the
        failure events a no-answer DiCE brings, a moment after it (so a platform timeout that is the
        same reports first); the engine hangs the call up if it is still ringing then."""
        if timeout > 0:
            due, flag = timeout + RING_GRACE, {RING_TIMEOUT: True}
            if conference_id is not None:
                self._follow("participant.join_failed", due, extra=flag, call_id=call_id,
                             conference_id=conference_id, reason="no_answer")
            self._follow("call.failed", due, extra=flag, call_id=call_id, reason="no_answer")
        return call_id

    async def _send(self, request: Request) -> JSON:
        """Sent again after an unknown outcome only if the command being carried out is idempotent."""
        return await self._client.send(request, resend_unknown=resend_unknown())

    async def _update(self, call_id: str, instructions: list[JSON], action: JSON) -> ActionResult:
        await self._send(commands.update_call(split_bridge(call_id)[0], instructions, action))
        return ActionResult()

    async def _to_leg(self, call_id: str, instructions: list[JSON]) -> None:
        """Prompts over REST: a bridged party is the call's callee leg, anyone else its caller leg."""
        sinch_id, bridged = split_bridge(call_id)
        await self._send(commands.manage_leg(sinch_id, "callee" if bridged else "caller", instructions))

    def _instruct(self, call_id: str, *steps: JSON) -> ReplyBuilder | None:
        """Put ``steps`` into the reply if they may go there; the reply, or None (use REST)."""
        reply = self._open_reply(call_id)
        return reply if reply is not None and reply.instruct(*steps) else None

    # -- calls -------------------------------------------------------------------------------------
    async def answer(self, call_id: str) -> ActionResult:
        reply = self._open_reply(call_id)
        if reply is None or reply.event != "ice":
            raise _only_in_reply("answer a call", "its ICE")
        if not reply.has("answer"):
            reply.instruct(svaml.answer())
            self._follow("call.answered", 0.0, call_id=call_id, reason="answered")
        return ActionResult()

    async def hangup(self, call_id: str, reason: str | None) -> ActionResult:
        if is_standin(call_id):  # not named yet: hung up when its first callback names it (the engine)
            return ActionResult()
        # SVAML's hangup carries no cause; a bridged party's hangup ends the whole Sinch call.
        reply = self._open_reply(call_id)
        if reply is not None and reply.act(svaml.hangup()):
            return ActionResult()
        return await self._update(call_id, [], svaml.hangup())

    async def say(self, call_id: str, text: str, language: str, voice: str | None, loop: int) -> ActionResult:
        locale = svaml.locale(language)  # v1 picks the voice by locale: ``voice`` has no say
        steps = [svaml.say(piece, locale) for piece in svaml.say_texts(text, loop)]
        reply = self._instruct(call_id, *steps)
        if reply is not None:
            delay = reply.seconds() + OBEY_SECONDS
        else:
            await self._to_leg(call_id, steps)
            delay = sum(svaml.instruction_seconds(step) for step in steps)
        self._follow("say.finished", delay, call_id=call_id, reason="completed")
        return ActionResult()

    async def play(self, call_id: str, media: Media, loop: int) -> ActionResult:
        # No play.finished: Sinch does not say when a file ends and its length is unknown here.
        try:
            step = svaml.play_files([svaml.prompt(media)] * max(1, loop), PLAY_LOCALE)
        except ValueError as exc:
            raise ProviderError(str(exc)) from None
        if self._instruct(call_id, step) is None:
            await self._to_leg(call_id, [step])
        return ActionResult()

    async def record(self, call_id: str, max_duration: float | None, beep: bool) -> ActionResult:
        if beep or max_duration is not None:
            raise ProviderError("Sinch records without a beep and without a time limit")
        step = svaml.start_recording()
        if self._instruct(call_id, step) is not None:
            return ActionResult()
        return await self._update(call_id, [step], svaml.continue_())

    async def stop_record(self, call_id: str) -> ActionResult:
        step = svaml.stop_recording()
        if self._instruct(call_id, step) is not None:
            return ActionResult()
        return await self._update(call_id, [step], svaml.continue_())

    async def capture_dtmf(
        self, call_id: str, max_digits: int, timeout: float, terminator: str | None, prompt: str | None,
        language: str,
    ) -> ActionResult:
        """In the reply to an ICE, ACE or menu PIE about the call: a ``runMenu`` (a PIE brings the keys,
        or the timeout). Anywhere else Sinch takes no command to collect keys, so this arms nothing and
        only speaks ``prompt``: a call in a conference is always listened to, since every join asks for
        key detection (``SinchSettings.conference_dtmf_*``), and its keys come as ``dtmf.captured``.
        There ``max_digits`` and ``timeout`` are the join's, not these, and no timeout is ever reported
        (a flow's ``after`` is the net). A call in no conference is not listened to at all. The ACE of a
        call dialled into a conference gets no menu either: it would replace the call's way into the
        conference (it would never join); it joins, and is listened to there."""
        if terminator not in (None, "#"):
            raise ProviderError("Sinch menus end keypad input with # only")
        locale = svaml.locale(language)
        reply = None if self._joining else self._open_reply(call_id)
        if reply is not None and reply.act(svaml.run_menu(max_digits, timeout, prompt, locale)):
            return ActionResult()
        if prompt and self._instruct(call_id, svaml.say(prompt, locale)) is None:
            await self._to_leg(call_id, [svaml.say(prompt, locale)])
        return ActionResult()

    async def send_dtmf(self, call_id: str, digits: str) -> ActionResult:
        step = svaml.send_dtmf(digits)
        if self._instruct(call_id, step) is not None:
            return ActionResult()
        return await self._update(call_id, [step], svaml.continue_())

    async def dial(
        self, to: Endpoint, from_: str | None, timeout: float, connect_call_id: str | None,
        machine_detection: bool = False, *, key: str | None = None,
    ) -> ActionResult:
        cli = from_ or self._settings.cli
        if connect_call_id is None:
            request = commands.custom_callout(to, cli, key, machine_detection, max(1, math.ceil(timeout)))
            return ActionResult(id=self._ring_for(callout_id(await self._send(request)), timeout))
        commands.refuse_amd(machine_detection, "a dial that bridges a call (connect)")
        if to.kind != "phone":
            raise ProviderError("Sinch bridges a call to phone numbers only (connectPstn)")
        action = svaml.connect_pstn(
            commands.number(to.address), commands.number(cli) if cli else None, max(1, math.ceil(timeout))
        )
        reply = self._open_reply(connect_call_id)
        if reply is None or not reply.act(action):
            raise _only_in_reply("bridge a call", "its ICE or PIE")
        return ActionResult(id=bridge_id(connect_call_id))

    # -- conferences -------------------------------------------------------------------------------
    async def conference_create(self, name: str | None, *, key: str | None = None) -> ActionResult:
        conference_id = conference_id_for(name, key)
        self._follow("conference.created", 0.0, conference_id=conference_id)
        return ActionResult(id=conference_id)

    def _conference_dtmf(self) -> JSON:
        """Every participant's keys are reported (PIE), so a flow can listen to any of them."""
        settings = self._settings
        return svaml.conference_dtmf(settings.conference_dtmf_max_digits, settings.conference_dtmf_timeout)

    async def conference_join(self, conference_id: str, call_id: str) -> ActionResult:
        reply = self._open_reply(call_id)
        action = svaml.connect_conf(conference_id, self._settings.conference_moh, self._conference_dtmf())
        if reply is None or not reply.act(action):
            raise _only_in_reply("move a call into a conference", "an ICE, ACE or PIE")
        delay = reply.seconds() + OBEY_SECONDS  # the reply's instructions play first
        self._follow("participant.joined", delay, call_id=call_id, conference_id=conference_id)
        return ActionResult()

    async def _in_conference(self, conference_id: str, call_id: str) -> bool:
        try:
            answer = await self._client.send(commands.conference_info(conference_id))
        except ProviderError as exc:
            if exc.status == 404:
                return False
            raise
        return any(item["call_id"] == call_id for item in participants(answer))

    async def conference_dial(
        self, conference_id: str, to: Endpoint, from_: str | None, timeout: float,
        machine_detection: bool = False, *, key: str | None = None,
    ) -> ActionResult:
        commands.refuse_amd(machine_detection, "conference_dial (a conferenceCallout takes no amd)")
        cli = from_ or self._settings.cli
        request = commands.conference_callout(
            conference_id, to, cli, moh=self._settings.conference_moh, dtmf=self._conference_dtmf(), key=key
        )
        return ActionResult(id=self._ring_for(callout_id(await self._send(request)), timeout, conference_id))

    async def conference_hangup(self, conference_id: str) -> ActionResult:
        try:
            await self._send(commands.kick_all(conference_id))
        except ProviderError as exc:
            if exc.status != 404:  # a Sinch conference ends with its last participant: gone is done
                raise
        self._follow("conference.finished", 0.0, conference_id=conference_id, reason="hangup")
        return ActionResult()

    async def conference_info(self, conference_id: str) -> ActionResult:
        answer = await self._send(commands.conference_info(conference_id))
        data = {"id": conference_id, "participants": participants(answer)}
        return ActionResult(id=conference_id, data=data)

    async def _manage(self, conference_id: str, call_id: str, command: commands.ParticipantCommand,
                      moh: Music | None = None) -> ActionResult:
        await self._send(commands.manage_participant(conference_id, call_id, command, moh))
        return ActionResult()

    async def mute(self, conference_id: str, call_id: str) -> ActionResult:
        return await self._manage(conference_id, call_id, "mute")

    async def unmute(self, conference_id: str, call_id: str) -> ActionResult:
        return await self._manage(conference_id, call_id, "unmute")

    async def hold(
        self, conference_id: str, call_id: str, music: Music, media: Media | None, loop: int
    ) -> ActionResult:
        # Sinch plays its own music classes on hold; a file (media) cannot be chosen there.
        return await self._manage(conference_id, call_id, "onhold", music)

    async def resume(self, conference_id: str, call_id: str) -> ActionResult:
        return await self._manage(conference_id, call_id, "resume")

    async def kick(self, conference_id: str, call_id: str) -> ActionResult:
        # Unlike Infobip, Sinch disconnects the kicked call (DiCE MANAGERHANGUP follows).
        await self._send(commands.kick_participant(conference_id, call_id))
        return ActionResult()


class SinchAdapter:
    """``Adapter`` for Sinch's Calling API v1. ``session`` lets a caller (or a test) supply the pooled
    aiohttp session; otherwise ``start()`` opens one and ``close()`` closes it."""

    name = NAME
    capabilities = CAPABILITIES

    def __init__(
        self,
        settings: SinchSettings,
        *,
        clock: Clock | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.settings = settings
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._client = SinchClient(settings, clock=self._clock, session=session)

    def __repr__(self) -> str:
        return f"SinchAdapter({self.settings!r})"

    @property
    def webhook_auth_enabled(self) -> bool:
        return True  # callbacks are always verified: signed with the application secret, or Basic

    @property
    def replay_window(self) -> float | None:
        """A signed callback's x-timestamp is checked; Basic ones carry no signed time."""
        return self.settings.callback_max_skew if self.settings.callback_auth == "signed" else None

    def parse_webhook(self, request: WebhookRequest) -> list[Event]:
        verify(request, self.settings, self._clock.now())
        return parse_callback(request.body)

    def channel(self, trigger: Event | None) -> SinchChannel:
        """Open one channel per callback (``trigger`` = its first event) and run every event's plan,
        and the zero-delay follow-ups, through it before ``reply()``."""
        return SinchChannel(self._client, self.settings, trigger, reply_for(trigger))

    async def observe(self, calls: Iterable[str], conferences: Iterable[str]) -> Observation:
        return await ask_platform(self._client, calls, conferences)

    async def start(self) -> None:
        await self._client.start()

    async def close(self) -> None:
        await self._client.close()
