"""Commands and plans: what the engine decides and the executor carries out.

A ``Command`` is one action of the flow with its parameters as written (templates unrendered). Commands
are built once when a flow is compiled, with their templates compiled alongside, so an event only
concatenates ready-made commands and the executor renders each one just before sending it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowengine.flow.expressions import Compiled, compile_value, template_sources
from flowengine.redaction import redact_json
from flowengine.runtime.events import Event


@dataclass(frozen=True, slots=True)
class Command:
    """One neutral action to carry out. ``origin`` says where in the flow it comes from."""

    action: str
    params: Mapping[str, Any]
    origin: str
    template: Compiled | None = field(compare=False, repr=False, default=None)
    static: bool = field(compare=False, repr=False, default=False)
    # The parameters as the outbox stores them, when that differs: redacted (a URL's token, a password).
    stored: Mapping[str, Any] | None = field(compare=False, repr=False, default=None)

    @classmethod
    def build(cls, action: str, params: Mapping[str, Any], origin: str) -> Command:
        """Compile the parameters' templates now; ``static`` commands render without a context."""
        plain = dict(params)
        safe = redact_json(plain)
        return cls(action, plain, origin, compile_value(plain), not any(template_sources(plain)),
                   safe if safe != plain else None)

    def render(self, context: Mapping[str, Any]) -> Mapping[str, Any]:
        """The parameters with every template rendered against ``context`` (read-only: shared when static)."""
        if self.static:
            return self.params
        # Commands made by hand (tests) compile here; commands of a compiled flow never do.
        template = self.template if self.template is not None else compile_value(dict(self.params))
        rendered: Mapping[str, Any] = template.render(context)
        return rendered


class Plan(list[Command]):
    """The commands one event leads to, in order, with the event they answer (templates see it)."""

    __slots__ = ("event",)

    def __init__(self, commands: Iterable[Command] = (), event: Event | None = None) -> None:
        super().__init__(commands)
        self.event = event
