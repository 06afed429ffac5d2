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

A scenario of an outbound flow (``start: outbound``) starts with the call the API starts, instead of an
inbound ``caller``: ``start: {outbound: {to: "447700900123", from: "...", vars: {time: "9:30"}}}`` is
the body of the ``POST /api/calls`` the run sends; the dialled party is scripted under ``parties:`` by
that number (answering, as a machine, busy, never). ``expect.http`` lists the requests the flow's http
actions made, in order (``scenarios/http_expect.py``).

``expect.states`` lists every entry into a state, in order: the initial state first, and a state entered
again (a transition back to it, including one from the state to itself) once more each time. Internal
transitions (no ``target``) enter nothing. ``expect.visits`` counts the entries of the states it names
(``{menu: 3}``; 0 says the state is never entered), for when the whole path does not matter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowengine.errors import FlowEngineError
from flowengine.flow.schema_validation import scenario_problem
from flowengine.flow.source import parse_source
from flowengine.flow.vocabulary import START_OUTBOUND
from flowengine.scenarios.http_expect import HttpExpectation, parse_expected_http
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
    http: tuple[HttpExpectation, ...] | None = None  # every request of the flow's http actions, in order

    def states_named(self) -> list[str]:
        """The state names the expectation mentions, for checking them against the flow."""
        named = [self.state] if self.state is not None else []
        return [*named, *(self.states or ()), *(self.visits or {})]


@dataclass(frozen=True)
class OutboundStart:
    """``start: {outbound: {...}}``: the ``POST /api/calls`` that starts the scenario's session."""

    to: str | Mapping[str, str]
    from_: str | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)

    def request(self, flow: str) -> dict[str, Any]:
        body = {"flow": flow, "to": self.to, "vars": dict(self.vars)}
        return body if self.from_ is None else {**body, "from": self.from_}


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
    outbound: OutboundStart | None = None  # set: the API starts the session (an outbound flow's)


def load_scenarios(path: str | Path) -> dict[str, Scenario]:
    """The scenarios of the flow file at ``path`` (an empty dict when it has none)."""
    text = Path(path).read_text(encoding="utf-8")
    parsed = parse_source(text, str(path))
    doc = parsed.doc if isinstance(parsed.doc, Mapping) else {}
    raw = doc.get("scenarios") or {}
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{path}: scenarios must be a mapping of name -> scenario")
    scenarios = {
        str(name): parse_scenario(str(name), body, where=f'{path}: scenario "{name}"')
        for name, body in raw.items()
    }
    outbound = starts_outbound(doc.get("start"))
    for scenario in scenarios.values():
        _check_start(scenario, outbound, f'{path}: scenario "{scenario.name}"')
    return scenarios


def starts_outbound(start: Any) -> bool:
    """Whether a flow's ``start`` (as written) makes it an outbound flow."""
    return start == START_OUTBOUND or (isinstance(start, Mapping) and START_OUTBOUND in start)


def _check_start(scenario: Scenario, outbound: bool, where: str) -> None:
    """A scenario starts its session the way its flow starts: an inbound call, or the API's dial."""
    if outbound and scenario.outbound is None:
        raise ScenarioError(
            f"{where}: the flow starts by dialling (start: outbound), so its scenarios start with the call "
            'the API places: give it start: {outbound: {to: "<number>", vars: {...}}} in place of caller:')
    if not outbound and scenario.outbound is not None:
        raise ScenarioError(
            f"{where}: start: outbound is for a flow that starts by dialling (start: outbound), and this "
            "flow answers inbound calls: give the scenario a caller: (or leave both out) instead")


def parse_scenario(name: str, body: Any, *, where: str = "scenario") -> Scenario:
    """The scenario ``body`` describes; ``ScenarioError`` saying what is wrong with it."""
    try:
        return _parse_scenario(name, body, where)
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        # A value of a type the reading below does not expect (a number where a mapping goes, say):
        # the schema names it; what the schema finds no fault with is a bug here, and stays one.
        problem = scenario_problem(body)
        if problem is None:
            raise
        raise ScenarioError(f"{where}: {problem} (`flowengine validate` gives its line)") from exc


def _parse_scenario(name: str, body: Any, where: str) -> Scenario:
    if not isinstance(body, Mapping):
        raise ScenarioError(f"{where}: expected a mapping")
    if "caller" in body and "start" in body:
        raise ScenarioError(f"{where}: a scenario starts with an inbound caller: or with start: {{outbound: "
                            "...}} (a call the API places), not both")
    outbound = _outbound(body.get("start"), where)
    caller = dict(body.get("caller") or {})
    caller_from = str(caller.pop("from", DEFAULT_FROM))
    caller_to = str(caller.pop("to", DEFAULT_TO))
    expect = body.get("expect") or {}
    try:
        script = PartyScript.from_dict(caller)
        parties = PartyBook.from_dict(dict(body.get("parties") or {}))
        mocks = parse_mocks(body.get("http"))
        expected_http = parse_expected_http(expect.get("http") if isinstance(expect, Mapping) else None)
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
            expected_http,
        ),
        http=mocks,
        outbound=outbound,
    )


def _outbound(raw: Any, where: str) -> OutboundStart | None:
    """``start: {outbound: {to, from?, vars?}}``; the API checks ``to`` and ``vars`` against the flow."""
    if raw is None:
        return None
    spec = raw.get(START_OUTBOUND) if isinstance(raw, Mapping) and set(raw) == {START_OUTBOUND} else None
    if not isinstance(spec, Mapping):
        raise ScenarioError(f'{where}: start: {{outbound: {{to: "<number>", from?, vars?}}}}: the call '
                            "the API places to start the session")
    unknown = sorted(set(spec) - {"to", "from", "vars"})
    to, from_, variables = spec.get("to"), spec.get("from"), spec.get("vars") or {}
    if unknown:
        raise ScenarioError(f"{where}: start.outbound: unknown field(s) {', '.join(map(str, unknown))}; "
                            "allowed: to, from, vars")
    if isinstance(to, int) and not isinstance(to, bool):
        to = str(to)  # YAML reads an unquoted number as one
    if not (isinstance(to, str) and to) and not isinstance(to, Mapping):
        raise ScenarioError(f"{where}: start.outbound.to: the number dialled (or "
                            "{sip|user|webrtc: address})")
    if not isinstance(variables, Mapping) or (from_ is not None and not isinstance(from_, str)):
        raise ScenarioError(f"{where}: start.outbound: vars is a mapping of the flow's variables, from a "
                            "caller id")
    return OutboundStart(to, from_, dict(variables))


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
