"""load_flow / load_flow_or_raise: the API others build on."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from flowengine.errors import FlowError
from flowengine.flow.loader import load_flow, load_flow_or_raise
from flowengine.flow.model import Flow, Pos

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "flows" / "two_party_conference.yaml"

MINIMAL = """\
flow: tiny
initial: start
states:
  start:
    entry: [{answer: {call: caller}}]
    on: {call.answered: done}
  done: {type: final}
"""


def test_the_bundled_flow_loads_into_a_frozen_flow_with_positions() -> None:
    flow = load_flow_or_raise(str(BUNDLED))
    assert isinstance(flow, Flow)
    assert flow.name == "two-party-conference"
    assert flow.initial == "answering"
    dialing = flow.states["dialing"]
    assert [a.name for a in dialing.entry] == ["hold", "conference_dial"]
    assert dialing.entry[1].params["as"] == "callee"
    assert dialing.pos == Pos(54, 3)
    assert dialing.after[0].delay == 75.0
    assert flow.on["call.finished"][0].when == "event.call == 'caller'"
    assert flow.source == str(BUNDLED)


def test_paths_text_and_bytes_are_all_accepted() -> None:
    assert load_flow(BUNDLED).ok
    assert load_flow(BUNDLED.read_text()).ok
    assert load_flow(BUNDLED.read_bytes()).ok


def test_text_diagnostics_use_the_given_source_name() -> None:
    result = load_flow(MINIMAL.replace("done}", "dnoe}"), source="inline.yaml")
    assert result.flow is None
    assert [d.format() for d in result.errors] == [
        'inline.yaml:6:25: undefined state "dnoe"; did you mean "done"? [target]'
    ]


def test_warnings_do_not_prevent_a_flow() -> None:
    result = load_flow(MINIMAL)
    assert [d.rule for d in result.diagnostics] == ["no-timeout"]
    assert result.warnings and not result.errors
    assert result.flow is not None


def test_load_flow_or_raise_raises_flow_error_with_the_diagnostics() -> None:
    with pytest.raises(FlowError) as caught:
        load_flow_or_raise(MINIMAL.replace("initial: start", "initial: nowhere"), source="bad.yaml")
    assert caught.value.diagnostics
    assert all(d.severity == "error" for d in caught.value.diagnostics)
    assert str(caught.value).startswith('bad.yaml:2:10: "initial" names undefined state "nowhere"')


def test_a_missing_file_is_a_diagnostic() -> None:
    result = load_flow(ROOT / "no" / "such.yaml")
    assert [(d.rule, d.line, d.col) for d in result.diagnostics] == [("io", 1, 1)]
    assert "cannot read the file" in result.diagnostics[0].message


def test_invalid_utf8_is_a_diagnostic_at_the_bad_byte() -> None:
    result = load_flow(b"flow: x\nname: caf\xe9\n")
    assert [(d.rule, d.line, d.col) for d in result.diagnostics] == [("syntax", 2, 10)]


def test_capabilities_report_what_the_provider_cannot_do() -> None:
    result = load_flow(BUNDLED, capabilities=frozenset({"answer"}), provider="tiny")
    unsupported = {d.message for d in result.errors}
    assert 'provider "tiny" cannot perform action "conference_dial"' in unsupported
    assert all(d.rule == "provider" for d in result.errors)


def test_schema_errors_in_structure_skip_the_semantic_rules() -> None:
    # "states" is a list: the graph cannot be read, so only the schema error is reported.
    result = load_flow("flow: x\ninitial: a\nstates: [a]\n")
    assert [d.rule for d in result.diagnostics] == ["schema"]


def test_errors_inside_actions_still_run_the_semantic_rules() -> None:
    result = load_flow(MINIMAL.replace("call: caller", "call: caller, colour: red").replace("done}", "dnoe}"))
    assert sorted(d.rule for d in result.errors) == ["action-params", "target"]


def test_loading_leaves_the_garbage_collector_as_it_found_it() -> None:
    """The load pauses the cyclic collector (issue 15), also when the flow is wrong, and never turns on
    one its caller turned off."""
    assert gc.isenabled()
    assert load_flow("flow: x\ninitial: a\nstates: {a: {type: final}}\n").ok
    assert not load_flow("flow: [\n").ok
    assert gc.isenabled()
    gc.disable()
    try:
        load_flow("flow: x\ninitial: a\nstates: {a: {type: final}}\n")
        assert not gc.isenabled()
    finally:
        gc.enable()
