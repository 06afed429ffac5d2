"""Scenarios as written under a flow's ``scenarios:`` key.

```yaml
scenarios:
  callee-answers:
    description: The second party picks up after 3 seconds.
    caller: {from: "447700900001", to: "4592457976", hangup_after: 60s}   # the inbound call
    parties:                                                              # who answers what
      "447415784323": {answer_after: 3s, hangup_after: 30s}
    expect: {state: closing, status: ended, actions: [answer, conference_create, ...]}
    http:                                                                 # http actions' answers
      - {method: POST, url: "https://crm.example.com/*", status: 200, body: {ok: true}}
```

``expect.states`` lists every entry into a state, in order: the initial state first, and a state entered
again (a transition back to it, including one from the state to itself) once more each time. Internal
transitions (no ``target``) enter nothing. ``expect.visits`` counts the entries of the states it names
(``{menu: 3}``; 0 says the state is never entered), for when the whole path does not matter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowengine.errors import FlowEngineError
from flowengine.flow.source import parse_source
from flowengine.scenarios.http_mocks import HttpMock, parse_mocks
from flowengine.simulator.parties import PartyBook, PartyScript

DEFAULT_FROM = "447700900001"
DEFAULT_TO = "4592457976"


class ScenarioError(FlowEngineError):
    """A scenario is written wrongly."""


@dataclass(frozen=True)
class Expectation:
    state: str | None = None
    status: str | None = None
    actions: tuple[str, ...] | None = None  # the session's provider actions, in order
    states: tuple[str, ...] | None = None  # every entry into a state, in order, re-entries included
    visits: Mapping[str, int] | None = None  # state -> how many times it is entered

    def states_named(self) -> list[str]:
        """The state names the expectation mentions, for checking them against the flow."""
        named = [self.state] if self.state is not None else []
        return [*named, *(self.states or ()), *(self.visits or {})]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    caller_from: str
    caller_to: str
    caller: PartyScript
    parties: PartyBook
    expect: Expectation
    http: tuple[HttpMock, ...] = ()  # what the flow's http actions are answered with


def load_scenarios(path: str | Path) -> dict[str, Scenario]:
    """The scenarios of the flow file at ``path`` (an empty dict when it has none)."""
    text = Path(path).read_text(encoding="utf-8")
    parsed = parse_source(text, str(path))
    doc = parsed.doc if isinstance(parsed.doc, Mapping) else {}
    raw = doc.get("scenarios") or {}
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{path}: scenarios must be a mapping of name -> scenario")
    return {
        str(name): parse_scenario(str(name), body, where=f'{path}: scenario "{name}"')
        for name, body in raw.items()
    }


def parse_scenario(name: str, body: Any, *, where: str = "scenario") -> Scenario:
    if not isinstance(body, Mapping):
        raise ScenarioError(f"{where}: expected a mapping")
    caller = dict(body.get("caller") or {})
    caller_from = str(caller.pop("from", DEFAULT_FROM))
    caller_to = str(caller.pop("to", DEFAULT_TO))
    expect = body.get("expect") or {}
    try:
        script = PartyScript.from_dict(caller)
        parties = PartyBook.from_dict(dict(body.get("parties") or {}))
        mocks = parse_mocks(body.get("http"))
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from exc
    if not isinstance(expect, Mapping):
        raise ScenarioError(f"{where}: expect must be a mapping")
    actions, states = expect.get("actions"), expect.get("states")
    return Scenario(
        name=name,
        description=str(body.get("description", "")),
        caller_from=caller_from,
        caller_to=caller_to,
        caller=script,
        parties=parties,
        expect=Expectation(
            expect.get("state"),
            expect.get("status"),
            tuple(actions) if actions is not None else None,
            tuple(states) if states is not None else None,
            _visits(expect.get("visits"), where),
        ),
        http=mocks,
    )


def _visits(raw: Any, where: str) -> dict[str, int] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in raw.values()
    ):
        raise ScenarioError(
            f"{where}: expect.visits must map state names to counts (0 or more), e.g. {{menu: 3}}"
        )
    return {str(state): count for state, count in raw.items()}
