"""The compiled flow: several timers in one state each fire; every command knows where in the flow it is
written (``action.failed`` tells the flow, and a resumed plan takes a redacted command back by it)."""

from __future__ import annotations

from typing import Any

from flowengine.flow.build import build_flow
from flowengine.flow.model import Flow
from flowengine.testing import Advance, RecordingProvider, drive, event

CALLER = "caller-1"
RECEIVED = event("call.received", call_id=CALLER)


def flow_of(states: dict[str, Any], **top: Any) -> Flow:
    return build_flow({"flow": "t", "version": 1, "initial": "start", "vars": top.pop("vars", {}),
                       "states": {**states, "end": {"type": "final"}}, **top})


async def test_each_timer_of_a_state_fires_at_its_own_time() -> None:
    flow = flow_of({"start": {"after": {"5s": {"actions": [{"set": {"warned": True}}]}, "12s": "late"},
                              "on": {"call.finished": "end"}},
                    "late": {"on": {"call.finished": "end"}}}, vars={"warned": False})
    driver = await drive(flow, [RECEIVED, Advance(6)])
    assert (driver.session.state, driver.session.vars["warned"]) == ("start", True)
    await driver.advance(6)
    assert driver.session.state == "late"


async def test_a_failed_action_says_where_in_the_flow_it_is_written() -> None:
    said = {"say": {"call": "caller", "text": "hi"}}
    where = {"log": {"message": "{{ event.data.origin }}"}}
    flow = flow_of({
        "start": {"entry": [said], "after": {"5s": {"actions": [said]}},
                  "always": {"target": "next", "when": "vars.go", "actions": [said]},
                  "on": {"dtmf.captured": {"actions": [{"set": {"go": True}}]}}},
        "next": {"on": {"call.finished": "end"}},
    }, on={"action.failed": {"actions": [where]}, "say.finished": {"actions": [said]}}, vars={"go": False})
    provider = RecordingProvider()
    provider.fail("say", times=None)
    driver = await drive(flow, [RECEIVED, event("say.finished", call_id=CALLER), Advance(5),
                                event("dtmf.captured", call_id=CALLER, digits="1")], provider=provider)
    origins = [step.commands[-1][2] for step in driver.session.trace if step.event == "action.failed"]
    assert origins == ["states.start.entry[0]", "on.say.finished[0].actions[0]",
                       "states.start.after.5s[0].actions[0]", "states.start.always[0].actions[0]"]
    program = driver.engine.program
    assert all(program.by_origin[origin].action == "say" for origin in origins)
