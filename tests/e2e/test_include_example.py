"""Reuse across flows, end to end on both simulated platforms: flows/examples/hours_line.yaml ends every
call with the states of flows/examples/shared/closing.yaml (``include:``), whose farewell is what the
caller hears last and whose hang-up leaves no call up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowengine.flow.loader import load_flow
from flowengine.scenarios.model import load_scenarios
from flowengine.scenarios.runner import run_scenario, states_entered

EXAMPLES = Path(__file__).resolve().parents[2] / "flows" / "examples"
FLOW = EXAMPLES / "hours_line.yaml"
FAREWELL = "Thank you for calling. Goodbye."


@pytest.mark.parametrize("provider", ["infobip", "sinch"])
async def test_the_included_goodbye_ends_the_call(provider: str) -> None:
    scenario = load_scenarios(FLOW)["hours-then-goodbye"]
    result = await run_scenario(provider, FLOW, scenario, store="memory://")
    assert result.passed, result.failures
    assert states_entered(result.session) == ["answering", "menu", "hours", "goodbye", "hanging_up"]
    said = [json.dumps(r["body"]) for r in result.requests if r["body"] is not None]
    assert sum(FAREWELL in body for body in said) == 1  # the shared state's text reached the platform
    assert result.session["status"] == "ended"


def test_the_example_and_its_shared_states_validate_and_positions_name_the_shared_file() -> None:
    flow = load_flow(FLOW).flow
    assert flow is not None
    hangup = flow.states["hanging_up"].entry[0].pos
    assert hangup is not None and hangup.file.endswith("shared/closing.yaml")
    assert load_flow(EXAMPLES / "shared" / "closing.yaml").diagnostics == ()
