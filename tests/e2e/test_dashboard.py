"""The dashboard draws each flow's states with the live sessions in them."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from flowengine.flow.loader import load_flow_or_raise
from flowengine.scenarios.model import parse_scenario
from flowengine.scenarios.stack import running_stack
from flowengine.server.dashboard import layers

BUNDLED = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"


async def test_a_waiting_caller_shows_in_dialing_and_leaves_when_done() -> None:
    scenario = parse_scenario("wait", {"parties": {"447415784323": {"answer_after": None}}})
    async with running_stack("infobip", BUNDLED, parties=scenario.parties) as stack:
        await stack.simulator.place_inbound_call("447700900001", "4592457976")
        await stack.clock.sleep(20)  # greeted, on hold, the callee ringing
        async with aiohttp.ClientSession(headers=stack.api_headers) as http, \
                http.get(stack.engine_url + "/") as response:
            assert response.status == 200 and response.content_type == "text/html"
            during = await response.text()
        await stack.clock.sleep(120)  # no answer, apology, closed
        async with aiohttp.ClientSession(headers=stack.api_headers) as http, \
                http.get(stack.engine_url + "/") as response:
            after = await response.text()
    assert "two-party-conference" in during and "1 live session<" in during
    assert "<title>dialing (1 live)</title>" in during
    assert "(1 live)" not in after and "0 live sessions" in after


def test_states_are_laid_out_by_distance_from_initial() -> None:
    column = layers(load_flow_or_raise(BUNDLED))
    assert column["answering"] == 0
    assert column["opening_room"] == 1 and column["giving_up"] == 1
    assert column["dialing"] == 3 and column["connected"] == 4 and column["closing"] == 5
