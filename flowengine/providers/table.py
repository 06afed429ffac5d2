"""The command table: for every neutral action on a platform, the request(s) it takes, whether it is
idempotent, how an unknown outcome is settled and which platform answers mean "already so"; and the one
way a channel carries a command out over its table (``carry_out``).

An unknown outcome (no answer within the deadline, the connection dropped after sending, a 5xx) is
settled by the command's ``reconcile``:

- ``resend``: idempotent, so sent again (as are reads);
- ``query``: the platform is asked what happened, finding what the command created by the correlation key
  the engine chose (``ProviderCommand.key``); found: that is the result; nothing: sent once more;
- ``at_most_once``: the platform offers no way to ask; not sent again, and counted as done: the flow's own
  events (``say.finished``) or its timers carry on, where a second copy would be heard or acted on twice;
- ``awaited``: no way to ask, but the platform's webhooks about what the command created carry the key:
  not sent again; bound under a stand-in id (``runtime.binding.standin_id``) that the first webhook
  naming the key replaces (``find`` gives that result);
- ``in_reply``: said in the callback's SVAML reply, where nothing is unknown (Sinch);
- ``local``: no request at all (the provider chooses the id);
- ``unsupported``: the platform cannot do it.

Nothing-sent failures (connection refused, connect timeout, 429) are always sent again, whatever the kind.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal, Protocol

from flowengine.errors import ProviderError, ProviderUnsupported
from flowengine.providers.retry import RetryPolicy
from flowengine.runtime.ports import ALREADY, UNKNOWN, ActionResult, ProviderCommand

log = logging.getLogger("flowengine.providers")

Reconcile = Literal[
    "resend", "query", "awaited", "at_most_once", "in_reply", "local", "unsupported"
]

# Sends of a reconciled command, each after the platform showed the last did nothing: as many as one
# request's tries (``RetryPolicy.attempts``), so a refused-then-asked command is as patient as a resent one.
ROUNDS = RetryPolicy().attempts


@dataclass(frozen=True, slots=True)
class _Sending:
    """The command being carried out, as its requests need to know it."""

    resend_unknown: bool = True  # idempotent: a request may be sent again after an unknown outcome
    resumed: bool = False  # an interrupted run may have carried it out already


_SENDING: ContextVar[_Sending] = ContextVar("sending", default=_Sending())  # noqa: B039 (frozen)


@dataclass(frozen=True, slots=True)
class AlreadySo:
    """A refusal that means the command's intent already holds: ``status``, and ``text`` (a regular
    expression searched in the platform's error text, case-insensitive; empty matches any)."""

    status: int
    text: str = ""
    meaning: str = ""  # for the README

    def matches(self, error: ProviderError) -> bool:
        return error.status == self.status and re.search(self.text, str(error), re.IGNORECASE) is not None

    def describe(self) -> str:
        return f"{self.status} {self.meaning}".strip()


@dataclass(frozen=True, slots=True)
class CommandSpec:
    action: str
    requests: str  # what goes to the platform (README)
    idempotent: bool
    reconcile: Reconcile
    query: str = ""  # for ``query``: what is asked, and what is looked for
    already_so: tuple[AlreadySo, ...] = ()
    keyed: bool = False  # the request carries the correlation key: the method takes ``key=``
    confirm: str = ""  # asked (``find``) when the platform refuses: what shows the intent already holds
    why: str = ""

    def already(self, error: ProviderError) -> bool:
        return any(answer.matches(error) for answer in self.already_so)


CommandTable = Mapping[str, CommandSpec]


def command_table(*specs: CommandSpec) -> dict[str, CommandSpec]:
    table = {spec.action: spec for spec in specs}
    if len(table) != len(specs):
        raise ValueError("an action is listed twice in a command table")
    return table


def resend_unknown() -> bool:
    """Whether the command being carried out may be sent again after an unknown outcome."""
    return _SENDING.get().resend_unknown


def resuming() -> bool:
    """Whether the command being carried out is resumed: an interrupted run may have done it (an
    idempotent command made of several requests can leave out one that must happen at most once)."""
    return _SENDING.get().resumed


class Channel(Protocol):
    """What ``carry_out`` needs from a provider's channel."""

    name: str

    async def perform(self, spec: CommandSpec, command: ProviderCommand) -> ActionResult:
        """Send the command's request(s) (or add it to the reply)."""
        ...

    async def find(self, spec: CommandSpec, command: ProviderCommand) -> ActionResult | None:
        """Ask the platform whether the command was carried out (or, for ``confirm``, whether its
        intent holds): its result, or None if not."""
        ...


async def call_method(channel: object, spec: CommandSpec, command: ProviderCommand) -> ActionResult:
    """A channel's ``perform`` when it has one method per action, named like it (``keyed`` ones also
    take the correlation key)."""
    method = getattr(channel, spec.action)
    result: ActionResult = await (method(**command.args, key=command.key) if spec.keyed
                                  else method(**command.args))
    return result


async def carry_out(channel: Channel, table: CommandTable, command: ProviderCommand) -> ActionResult:
    """The provider port's ``execute`` over a command table."""
    spec = table.get(command.action)
    if spec is None or spec.reconcile == "unsupported":
        raise ProviderUnsupported(channel.name, command.action)
    if command.resumed and not spec.idempotent:
        settled = await _settle(channel, spec, command, None)
        if settled is not None:
            return settled
    return await _perform(channel, spec, command)


async def _perform(channel: Channel, spec: CommandSpec, command: ProviderCommand) -> ActionResult:
    """Send; after an unknown outcome settle it, and send again only when the platform shows nothing was
    done, up to ``ROUNDS`` sends in all (each with its own nothing-sent retries under the budget)."""
    for round_ in range(1, ROUNDS + 1):
        try:
            # what the request(s) may read (``resend_unknown``, ``resuming``); set by hand, not by a
            # generator-based context manager: this runs for every command
            sending = _SENDING.set(_Sending(spec.idempotent, command.resumed))
            try:
                return await channel.perform(spec, command)
            finally:
                _SENDING.reset(sending)
        except ProviderError as exc:
            confirmed = spec.confirm and not exc.retryable and await channel.find(spec, command)
            if spec.already(exc) or confirmed:
                log.info("%s %s: already so (%s)", channel.name, command.action, exc.status or exc)
                return ActionResult(data=ALREADY)
            if not exc.outcome_unknown or spec.idempotent:
                raise
            settled = await _settle(channel, spec, command, exc)
            if settled is not None:
                return settled
            if round_ == ROUNDS:
                raise
        log.warning("%s %s %s: not carried out, sending once more", channel.name, command.action, command.key)
    raise AssertionError("unreachable: the last round returns or raises")


async def _settle(
    channel: Channel, spec: CommandSpec, command: ProviderCommand, error: ProviderError | None
) -> ActionResult | None:
    """After an unknown outcome (``error``) or on resuming (None): the result, None to send (again), or
    raise. A query's own failure is raised: nothing is sent on a guess."""
    if spec.reconcile in ("query", "awaited"):
        found = await channel.find(spec, command)
        if found is not None and spec.reconcile == "query":
            log.warning("%s %s %s: carried out after all", channel.name, command.action, command.key)
        return found
    if spec.reconcile == "at_most_once":
        log.warning("%s %s %s: outcome unknown, counted as done (at most once)", channel.name,
                    command.action, command.key)
        return ActionResult(data=UNKNOWN)
    return None  # in_reply, local: nothing unknown about them; send as usual


# -- the README's view ---------------------------------------------------------------------------------
_SETTLED = {
    "resend": "sent again", "query": "the platform is asked; sent once more if nothing was done",
    "awaited": "not sent again: bound under a stand-in id until the first webhook carrying the key names "
               "the call",
    "at_most_once": "at most once: counted as done",
    "in_reply": "in the SVAML reply: nothing unknown", "local": "no request", "unsupported": "—",
}


def render_markdown(title: str, table: CommandTable, actions: list[str]) -> str:
    """One platform's table as Markdown, in ``actions`` order."""
    lines = [f"**{title}**", "", "| action | request(s) | idempotent | unknown outcome | \"already so\" |",
             "|---|---|---|---|---|"]
    for action in actions:
        spec = table[action]
        if spec.reconcile == "unsupported":
            lines.append(f"| `{action}` | cannot | | | |")
            continue
        settled = _SETTLED[spec.reconcile]
        if spec.query:
            settled += f": {spec.query}"
        if spec.why:
            settled += f" ({spec.why})"
        already = "; ".join([answer.describe() for answer in spec.already_so]
                            + ([f"refused, and {spec.confirm}"] if spec.confirm else []))
        lines.append(f"| `{action}` | {spec.requests} | {'yes' if spec.idempotent else 'no'} | {settled} "
                     f"| {already} |")
    return "\n".join(lines)


README_START, README_END = "<!-- command-table:start -->", "<!-- command-table:end -->"
_TITLES = {"infobip": "Infobip Calls API (paths under `/calls/1`)",
           "sinch": "Sinch Calling API v1 (paths under `/calling/v1`)"}


def platform_table(provider: str) -> CommandTable:
    """``provider``'s command table (its pure-data ``table`` module)."""
    table: CommandTable = importlib.import_module(f"flowengine.providers.{provider}.table").TABLE
    return table


def readme_tables() -> str:
    """The README's command tables, between their markers: generated, and kept in step by a test."""
    from flowengine.flow.vocabulary import ACTION_SPECS
    from flowengine.providers import PROVIDERS

    actions = [spec.name for spec in ACTION_SPECS if not spec.pure and spec.name != "http"]
    tables = "\n\n".join(render_markdown(_TITLES[p], platform_table(p), actions) for p in PROVIDERS)
    return f"{README_START}\n{tables}\n{README_END}"
