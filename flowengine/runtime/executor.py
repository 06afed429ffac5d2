"""The executor: carry out a plan in order through the Provider port.

Write-ahead (``runtime.outbox``): given a ``checkpoint`` (the dispatcher's save), the session is saved
with the plan and the index of the next command before each command that reaches outside the engine,
so the store always knows what the engine meant to send and how far it got; ``resume`` finishes a plan
an interrupted run left behind. Each of those writes is also a fence: a store that refuses it (another
instance wrote the session since) stops the run before the command is sent.

Each command's templates are rendered just before it is sent, so a later command sees what an earlier
one bound (``room.id``). Each command reaches the provider as a ``ProviderCommand`` whose ``key``
(``session:seq:index``) lets the provider find what an earlier attempt created. A retryable
``ProviderError`` is tried again with backoff through the Clock (as resumed after an unknown outcome); a
command that fails for good becomes an ``action.failed`` event fed straight back into the same session
(the rest of the plan is skipped and recorded). Unhandled, that ends the session as failed, and the
cleanup plan is then run best-effort: a failing hang-up is recorded and the next one still tried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flowengine.errors import ExpressionError, ProviderError, ProviderUnsupported
from flowengine.flow.vocabulary import ACTIONS, ALWAYS, DIAL_ACTIONS, TEARDOWN_ACTIONS
from flowengine.redaction import redact
from flowengine.runtime.binding import bind_result, nothing_to_undo, provider_arguments, still_ringing
from flowengine.runtime.clock import Clock
from flowengine.runtime.commands import Command, Plan
from flowengine.runtime.context import build_context
from flowengine.runtime.engine import Engine
from flowengine.runtime.events import ACTION_FAILED, Event
from flowengine.runtime.http import bind_answer, http_request
from flowengine.runtime.observing import SCOPE
from flowengine.runtime.outbox import advance, pending, reaches_out, write_ahead
from flowengine.runtime.ports import (
    ALREADY,
    UNKNOWN,
    ActionResult,
    HttpClient,
    HttpRequest,
    Observer,
    Pacer,
    Provider,
    ProviderCommand,
)
from flowengine.runtime.program import CLEANUP
from flowengine.runtime.reconcile import Observation, missed_events, to_observe
from flowengine.runtime.session import CommandRecord, Session, Step

log = logging.getLogger("flowengine.flow")
Checkpoint = Callable[[Session], Awaitable[None]]
# Asks the platform about calls and conferences (the adapter's ``observe``): see ``Executor.observe``.
Observe = Callable[[list[str], list[str]], Awaitable[Observation]]
GONE = 404  # the platform no longer knows what a command was for
# Why a resumed command whose parameters were stored redacted cannot be sent (``outbox.Pending.lost``).
LOST = "its parameters hold a secret, stored redacted, and the flow no longer has it to take them from"
SAVE = "save"  # the http action's variables set from the answer: they need the context, as templates do
RESUME_AFTER = 10.0  # seconds after a write-ahead when any instance may resume a plan left unfinished
# Commands that end what a role names (``bind_result``; a kick of a call still ringing is its hang-up).
_ENDS = frozenset({"hangup", "conference_hangup", "kick"})
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a retryable failure is tried again."""

    attempts: int = 3  # tries in all, the first included
    delay: float = 0.2  # seconds before the second try
    factor: float = 2.0
    max_delay: float = 5.0


class Executor:
    """Runs plans for one engine's sessions. ``run`` updates the session it is given and returns it."""

    def __init__(
        self, engine: Engine, *, clock: Clock | None = None, retry: RetryPolicy | None = None,
        http: HttpClient | None = None, max_failures: int = 3, resume_after: float = RESUME_AFTER,
        observe: Observe | None = None, pacer: Pacer | None = None, observer: Observer | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock if clock is not None else engine.clock
        self.retry = retry if retry is not None else RetryPolicy()
        self.http = http
        self.max_failures = max_failures  # action.failed handled in a row before the session is aborted
        self.resume_after = resume_after
        # A command refused because its call or conference is gone shows the session has missed an end
        # the platform has not delivered yet (the caller hung up and the room closed while the dial went
        # out): with ``observe`` the platform is asked first and what it shows is handled before the
        # failure, which is dropped if the session has moved on (a flow hears why, not a stale error).
        self.observe = observe
        self.pacer = pacer  # what creates a call waits for its turn (the platform's rate limit)
        self.observer = observer  # the service's metrics and logs

    async def run(
        self, session: Session, plan: Plan, provider: Provider, *, checkpoint: Checkpoint | None = None
    ) -> Session:
        """Carry out ``plan``; with ``checkpoint``, write ahead before every command that reaches out."""
        session.outbox = None  # a new plan: whatever was pending before was finished by ``resume``
        return await self._run(session, plan, provider, 0, checkpoint)

    async def resume(
        self, session: Session, provider: Provider, *, checkpoint: Checkpoint | None = None
    ) -> Session:
        """Finish the plan ``session.outbox`` holds, from its first command not known done."""
        outbox = session.outbox
        if outbox is None:
            return session
        session = session.copy()  # a loaded session may be shared (the store's cache): never change it
        left = pending(outbox, self.engine.program.by_origin.get)
        log.warning("%s: resuming an interrupted plan at command %d of %d (%s)", session.id,
                    left.next + 1, len(left.plan), left.plan[left.next].action if left.plan else "-")
        return await self._run(session, left.plan, provider, left.failures, checkpoint, left.next, left.lost)

    async def step(
        self, session: Session, event: Event, provider: Provider, *, checkpoint: Checkpoint | None = None
    ) -> Session:
        """Let the engine decide ``event`` and carry out its plan (``run``)."""
        session, plan = self._decided(session, self.engine.handle(session, event))
        return await self.run(session, plan, provider, checkpoint=checkpoint)

    def _decided(self, before: Session, decision: tuple[Session, Plan]) -> tuple[Session, Plan]:
        """Every decision of the engine passes here: the observer hears of it before its plan runs, and
        the log scope follows the session's state."""
        after = decision[0]
        if self.observer is not None:
            self.observer.stepped(before, after)
        scope = SCOPE.get()
        if scope is not None:
            scope.state = after.state
        return decision

    async def _run(
        self, session: Session, plan: Plan, provider: Provider, failures: int,
        checkpoint: Checkpoint | None, start: int | None = None, lost: frozenset[int] = frozenset(),
    ) -> Session:
        step = session.trace[-1] if session.trace else None  # the step that produced this plan
        best_effort = session.status == "failed"
        context: dict[str, Any] | None = None
        written = start is not None  # a resumed plan is in the outbox already
        for index, command in enumerate(plan):
            if start is not None and index < start:
                continue  # done before the interruption: its outcome is in the session already
            if command.action == ALWAYS:  # the plan has run: try the state's eventless transitions
                session.outbox = None
                return await self._settle(session, plan, command, provider, failures, checkpoint)
            if checkpoint is not None and reaches_out(command):
                session.outbox = self._ahead(session.outbox if written else None, plan, index, failures,
                                             renew=index == start)
                written = True
                await checkpoint(session)
            if context is None and not (command.static and SAVE not in command.params):
                context = build_context(session, plan.event)
            sent = self.clock.now()
            try:
                if index in lost:
                    raise ExpressionError(f"{command.action}: not resumed: {LOST}")
                status, detail = await self._execute(
                    session, command, context or {}, provider, index, resumed=index == start,
                    pace=self._pace(session, command.action, index, provider, checkpoint))
            except (ProviderError, ExpressionError) as exc:
                # it goes to the trace, the store, the API and the log
                error, failure = redact(f"{exc.kind}: {exc}"), exc
            else:
                _note(step, (command.action, status, detail), self.clock.now() - sent)
                if "as" in command.params or SAVE in command.params or command.action in _ENDS:
                    context = None  # a new role or variable, or one just ended: later templates must see it
                continue
            took = self.clock.now() - sent
            if best_effort or command.continues:
                _note(step, (command.action, "error", error + (" (on_error: continue)" * command.continues)),
                      took)
                continue
            _note(step, (command.action, "error", error), took)
            for rest in plan[index + 1:]:
                if rest.action != ALWAYS:
                    _note(step, (rest.action, "skipped", None))
            session.outbox = None  # the failure's own plan (or what caught up) replaces the one that failed
            if _gone(failure) and command.action != "http":  # an http 404 says nothing of the calls
                moved_on = await self._catch_up(session, provider, checkpoint)
                if moved_on is not None:
                    return moved_on
            return await self._failed(session, command, index, failure, provider, failures, checkpoint)
        session.outbox = None
        return session

    async def _settle(
        self, session: Session, plan: Plan, marker: Command, provider: Provider, failures: int,
        checkpoint: Checkpoint | None,
    ) -> Session:
        """Let the engine take the state's ``always`` transition, if one holds, and run its plan."""
        step = marker.params.get("step", 0)
        session, more = self._decided(
            session, self.engine.settle(session, plan.event, step if isinstance(step, int) else 0))
        if not more:
            return session
        return await self._run(session, more, provider, failures, checkpoint)

    async def _catch_up(
        self, session: Session, provider: Provider, checkpoint: Checkpoint | None
    ) -> Session | None:
        """After a "gone" refusal: handle the ends the platform shows and the session missed. The session
        if that moved it on (the failure is stale), None if the failure still stands."""
        calls, conferences = to_observe(session)
        if self.observe is None or not (calls or conferences):
            return None
        try:
            seen = await self.observe(calls, conferences)
        except ProviderError as exc:  # no answer: the failure stands as it is
            log.warning("%s: could not ask what the refusal missed: %s", session.id, exc)
            return None
        before = (session.state, session.status)
        for event in missed_events(session, seen):
            log.warning("%s: %s found on asking after a refusal (no webhook yet)", session.id, event.name)
            session, plan = self._decided(session, self.engine.handle(session, event))
            session = await self._run(session, plan, provider, 0, checkpoint)
        return session if (session.state, session.status) != before else None

    def _ahead(
        self, outbox: dict[str, Any] | None, plan: Plan, index: int, failures: int, *, renew: bool
    ) -> dict[str, Any]:
        """The outbox before command ``index``. Its due time is set when the plan is written (or
        resumed) and then kept, so the store's timer index changes twice per plan, not per command."""
        due = self.clock.now() + self.resume_after
        if outbox is None:
            return write_ahead(plan, index, failures, due)
        return advance(outbox, index, due if renew else float(outbox["due"]))

    async def _failed(
        self, session: Session, command: Command, index: int, failure: ProviderError | ExpressionError,
        provider: Provider, failures: int, checkpoint: Checkpoint | None,
    ) -> Session:
        error = f"{failure.kind}: {failure}"
        call = command.params.get("call")
        call = call if isinstance(call, str) else None
        # The call it was about, else the one it was creating, else its conference.
        roles = (call, _created(command), command.params.get("conference"))
        role = next((r for r in roles if isinstance(r, str)), None)
        event = Event(
            ACTION_FAILED, call_id=session.calls.get(call) if call else None, call=call, reason="failed",
            data={"action": command.action, "role": role, "kind": failure.kind,
                  "status": failure.status if isinstance(failure, ProviderError) else None,
                  "error": str(failure), "index": index, "origin": command.origin},
            event_id=f"{ACTION_FAILED}:{session.id}:{session.seq}:{index}",
        )
        if failures + 1 >= self.max_failures:
            decision = self.engine.abort(session, f"{failures + 1} failures in a row: {error}", event)
        else:
            decision = self.engine.handle(session, event)
        session, plan = self._decided(session, decision)
        return await self._run(session, plan, provider, failures + 1, checkpoint)

    def _pace(
        self, session: Session, action: str, index: int, provider: Provider, checkpoint: Checkpoint | None
    ) -> Callable[[], Awaitable[float]] | None:
        """Waiting for the provider's next slot before command ``index`` (which creates a call). After a
        wait the outbox is written again: that renews its resume deadline, and fences, so an instance
        whose session was taken over meanwhile (its lock lost while it waited) stops before dialling."""
        pacer = self.pacer
        if pacer is None or action not in DIAL_ACTIONS:
            return None

        async def pace() -> float:
            waited = await pacer.acquire(provider.name)
            if waited > 0 and checkpoint is not None and session.outbox is not None:
                session.outbox = advance(session.outbox, index, self.clock.now() + self.resume_after)
                await checkpoint(session)
            return waited

        return pace

    async def _execute(
        self, session: Session, command: Command, context: Mapping[str, Any], provider: Provider, index: int,
        *, resumed: bool = False, pace: Callable[[], Awaitable[float]] | None = None,
    ) -> tuple[str, str | None]:
        """Carry out one command: its trace status (ok | skipped) and detail. ``resumed``: an interrupted
        run may have sent it already. ``pace``: waits for the command's turn, once it is sure to go."""
        action = command.action
        if command.condition is not None and not command.condition.render(context):
            return "skipped", f"if {command.condition.source}: false"
        params = command.render(context)
        if action == "set":
            session.vars.update(params["vars"])
            return "ok", None
        if action == "log":
            message = str(params["message"])
            log.log(_LEVELS.get(str(params.get("level")), logging.INFO), "%s: %s", session.id, message)
            return "ok", redact(message)  # the trace is stored and shown: no URL credentials or tokens
        if action in TEARDOWN_ACTIONS and not command.origin.startswith(CLEANUP):
            nothing = nothing_to_undo(action, params, session)
            if nothing is not None:  # teardown of nothing is success: never sent
                return "ok", nothing
            if still_ringing(action, params, session):
                action, params = "hangup", {"call": params["call"], "reason": None}
        if action == "http":
            send, port = self._http_call(http_request(params, command.params)), "http"
        else:
            kwargs = provider_arguments(action, params, session)
            key = f"{session.id}:{session.seq}:{index}"
            send = self._provider_call(session, provider, action, kwargs, key)
            port = provider.name
        waited = await pace() if pace is not None else 0.0
        result, attempts = await self._attempt(send, resumed, (session, port, action))
        if action == "http":
            detail = bind_answer(command.params, result, context, session)
        else:
            detail = bind_result(action, params, result, session)
        if action != command.action:
            detail = " ".join(filter(None, ["hung up: it was still being dialled in;", detail])).rstrip(";")
        if waited > 0:
            detail = f"{detail or ''} (paced: waited {waited:.3g} s)".lstrip()
        return "ok", detail if attempts == 1 else f"{detail or ''} after {attempts} attempts".lstrip()

    def _provider_call(
        self, session: Session, provider: Provider, action: str, kwargs: dict[str, Any], key: str
    ) -> Callable[[bool], Awaitable[Any]]:
        """``send(resumed)``: the command, marked resumed when an earlier attempt may have been done."""
        if action not in provider.capabilities:
            if self.observer is not None:  # refused before it was sent: no time taken
                self.observer.commanded(session, provider.name, action, "unsupported", 0.0)
            raise ProviderUnsupported(provider.name, action)
        return lambda resumed: provider.execute(ProviderCommand(action, kwargs, key, resumed))

    def _http_call(self, request: HttpRequest) -> Callable[[bool], Awaitable[Any]]:
        http = self.http
        if http is None:
            raise ProviderUnsupported("engine", "http")
        return lambda _resumed: http.request(request)

    async def _attempt(
        self, send: Callable[[bool], Awaitable[Any]], resumed: bool, about: tuple[Session, str, str]
    ) -> tuple[Any, int]:
        """Retries what the provider left retryable. After an unknown outcome the next attempt goes out
        as resumed, so the provider reconciles before it could do a non-idempotent command twice. Each
        attempt's outcome and time go to the observer (``about``: the session, port and action)."""
        delay = self.retry.delay
        observer = self.observer
        for attempt in range(1, self.retry.attempts + 1):
            started = time.perf_counter()  # real time, whatever the clock: what the platform took
            try:
                result = await send(resumed)
            except ProviderError as exc:
                final = not exc.retryable or isinstance(exc, ProviderUnsupported)
                last = final or attempt >= self.retry.attempts
                if observer is not None:
                    outcome = "unsupported" if isinstance(exc, ProviderUnsupported) else (
                        "failed" if last else "retried")
                    observer.commanded(*about, outcome, time.perf_counter() - started)
                if last:
                    raise
                resumed = resumed or exc.outcome_unknown
            else:
                if observer is not None:
                    observer.commanded(*about, _outcome(result), time.perf_counter() - started)
                return result, attempt
            await self.clock.sleep(delay)
            delay = min(delay * self.retry.factor, self.retry.max_delay)
        raise AssertionError("unreachable: the last attempt returns or raises")


def _outcome(result: Any) -> str:
    """A command's outcome as the observer counts it: ok, already (``ALREADY``) or unknown (``UNKNOWN``)."""
    data = result.data if isinstance(result, ActionResult) else None
    if data:
        if data.get("already") == ALREADY["already"]:
            return "already"
        if data.get("outcome") == UNKNOWN["outcome"]:
            return "unknown"
    return "ok"


def _created(command: Command) -> str | None:
    """The role a command that creates a call or conference binds (``as:``)."""
    spec = ACTIONS.get(command.action)
    binder = spec.param("as") if spec is not None else None
    name = command.params.get("as")
    return name if binder is not None and binder.kind != "new_var" and isinstance(name, str) else None


def _gone(failure: Exception) -> bool:
    return isinstance(failure, ProviderError) and failure.status == GONE


def _note(step: Step | None, record: CommandRecord, seconds: float | None = None) -> None:
    if step is not None:
        missing = len(step.commands) - len(step.latencies)  # a step stored before latencies were kept
        step.latencies += (*(None,) * missing, None if seconds is None else round(seconds, 4))
        step.commands += (record,)
