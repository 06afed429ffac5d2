"""Commands and plans: what the engine decides and the executor carries out.

A ``Command`` is one action of the flow with its parameters as written (templates unrendered). Commands
are built once when a flow is compiled, with their templates compiled alongside, so an event only
concatenates ready-made commands and the executor renders each one just before sending it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowengine.errors import ExpressionError
from flowengine.flow.expressions import Compiled, compile_guard, compile_value, template_sources
from flowengine.flow.vocabulary import ACTIONS
from flowengine.redaction import redact_json
from flowengine.runtime.events import Event


@dataclass(frozen=True, slots=True)
class Command:
    """One neutral action to carry out. ``origin`` says where in the flow it comes from; ``condition``
    is its ``if`` (None: always run), ``on_error`` what its failure does (fail | continue)."""

    action: str
    params: Mapping[str, Any]
    origin: str
    template: Compiled | None = field(compare=False, repr=False, default=None)
    static: bool = field(compare=False, repr=False, default=False)
    # Compared by its source: two compilations of one ``if`` are the same condition.
    condition: Compiled | None = field(compare=False, default=None)
    on_error: str = "fail"
    condition_source: str | None = field(default=None, repr=False)
    # The parameters as the outbox stores them, when that differs: redacted (a URL's token, a password).
    stored: Mapping[str, Any] | None = field(compare=False, repr=False, default=None)

    @classmethod
    def build(
        cls, action: str, params: Mapping[str, Any], origin: str, *, condition: str | None = None,
        on_error: str = "fail",
    ) -> Command:
        """Compile the parameters' templates now; ``static`` commands render without a context."""
        plain = dict(params)
        guard = compile_guard(condition) if condition else None
        static = guard is None and not any(template_sources(plain))
        safe = redact_json(plain)
        return cls(action, plain, origin, compile_value(plain), static, guard, on_error, condition or None,
                   safe if safe != plain else None)

    @property
    def continues(self) -> bool:
        """A failure of this command is recorded and the plan goes on (``on_error: continue``)."""
        return self.on_error == "continue"

    def render(self, context: Mapping[str, Any]) -> Mapping[str, Any]:
        """The parameters with every template rendered against ``context`` (read-only: shared when static)."""
        if self.static:
            return self.params
        # Commands made by hand (tests) compile here; commands of a compiled flow never do.
        template = self.template if self.template is not None else compile_value(dict(self.params))
        rendered: Mapping[str, Any] = template.render(context)
        missing = _rendered_to_nothing(self.action, rendered)
        if missing is not None:  # sent as None, the platform would refuse it or do something else
            written = self.params.get(missing)
            raise ExpressionError(f'{self.action}: "{missing}" rendered to nothing ({written!r})')
        return rendered


def _rendered_to_nothing(action: str, params: Mapping[str, Any]) -> str | None:
    """The first required parameter a template rendered to None (an unset variable, a missing field)."""
    spec = ACTIONS.get(action)
    if spec is None:
        return None
    return next((p.name for p in spec.params if p.required and params.get(p.name) is None), None)


class Plan(list[Command]):
    """The commands one event leads to, in order, with the event they answer (templates see it)."""

    __slots__ = ("event",)

    def __init__(self, commands: Iterable[Command] = (), event: Event | None = None) -> None:
        super().__init__(commands)
        self.event = event
