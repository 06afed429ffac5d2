"""What guards and templates read: every field of ``session`` and of ``event`` (its raw payload too), an
``if`` on a plan's first command, and events of one Infobip list body kept apart."""

from __future__ import annotations

import json
from typing import Any

from flowengine.flow.build import build_flow
from flowengine.flow.model import Flow
from flowengine.providers.infobip.webhooks import parse_events
from flowengine.testing import ManualClock, drive, event

CALLER = "caller-1"
FIELDS = ("id", "flow", "version", "state", "status", "created")
SESSION = " ".join("{{ session." + field + " }}" for field in FIELDS)


def flow_of(states: dict[str, Any], **top: Any) -> Flow:
    return build_flow({"flow": "t", "version": 4, "initial": "start", "vars": top.pop("vars", {}),
                       "states": {**states, "end": {"type": "final"}}, **top})


async def test_templates_read_every_field_of_the_session_and_the_events_raw_payload() -> None:
    flow = flow_of({"start": {"entry": [{"log": {"message": SESSION}},
                                        {"log": {"message": "{{ event.raw.customData.ticket }}"}}]}})
    received = event("call.received", call_id=CALLER, raw={"customData": {"ticket": "T-9"}})
    clock = ManualClock()
    driver = await drive(flow, [received], clock=clock)
    assert [detail for _, _, detail in driver.session.trace[0].commands] == [
        f"session-1 t 4 start active {clock.now()}", "T-9"]


async def test_an_if_on_the_first_command_of_a_plan_reads_the_session() -> None:
    welcome = {"say": {"call": "caller", "text": "welcome back", "if": "vars.vip"}}  # nothing to render
    flow = flow_of({"start": {"entry": [welcome]}}, vars={"vip": True})
    driver = await drive(flow, [event("call.received", call_id=CALLER)])
    assert driver.provider.actions == ["say"]


def test_the_events_of_one_infobip_list_body_are_distinct_deliveries() -> None:
    """Infobip bodies carry no delivery id and a list has no single digest: each event's key comes from its
    own item, so the second is not dropped as a duplicate of the first."""
    items = [{"type": "CALL_ESTABLISHED", "callId": "c-1"}, {"type": "CALL_ESTABLISHED", "callId": "c-2"}]
    first, second = parse_events(json.dumps(items).encode())
    assert first.dedupe_key() != second.dedupe_key()
    [again] = parse_events(json.dumps(items[:1]).encode())
    assert again.dedupe_key() == first.dedupe_key()  # the same item delivered again is the same delivery
