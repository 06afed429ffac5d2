"""Which flow answers an inbound call: by called number or platform configuration, else the default."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flowengine.runtime.events import Event

_NOT_DIGITS = re.compile(r"[\s\-().+]")


def normalise_number(number: str) -> str:
    return _NOT_DIGITS.sub("", number)


@dataclass(frozen=True, slots=True)
class FlowRoute:
    flow: str  # flow name
    to: str | None = None
    configuration: str | None = None

    def matches(self, to: str | None, configuration: str | None) -> bool:
        if self.to is not None and (to is None or normalise_number(self.to) != normalise_number(to)):
            return False
        return self.configuration is None or self.configuration == configuration


@dataclass(frozen=True, slots=True)
class Router:
    routes: tuple[FlowRoute, ...]
    default: str | None = None

    def flow_for(self, event: Event) -> str | None:
        to = event.data.get("to")
        configuration = (
            event.data.get("configuration")
            or event.raw.get("callsConfigurationId")
            or event.raw.get("applicationKey")
        )
        for route in self.routes:
            if route.matches(to if isinstance(to, str) else None, configuration):
                return route.flow
        return self.default
