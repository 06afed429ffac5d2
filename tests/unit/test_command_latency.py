"""Each command's latency is kept in the trace beside its outcome (retries and backoff included, on the
engine's clock), survives storage, and a step stored before latencies were kept still reads."""

from __future__ import annotations

from pathlib import Path

from flowengine.flow.loader import load_flow_or_raise
from flowengine.runtime.executor import RetryPolicy, _note
from flowengine.runtime.session import Session, Step
from flowengine.testing import RecordingProvider, drive, event

FLOW = load_flow_or_raise(Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml")
RECEIVED = event("call.received", call_id="caller-1")


async def test_a_retried_command_took_its_backoff_and_a_clean_one_took_no_time() -> None:
    provider = RecordingProvider()
    provider.fail("answer", times=2, retryable=True)
    driver = await drive(FLOW, [RECEIVED], provider=provider, retry=RetryPolicy(attempts=3))
    (step,) = driver.session.trace
    assert step.commands == (("answer", "ok", "after 3 attempts"),)
    assert step.latencies == (0.6,)  # backoff 0.2 s + 0.4 s on the manual clock; the sends took none
    clean = await drive(FLOW, [RECEIVED])
    assert clean.session.trace[0].latencies == (0.0,)


async def test_failed_and_skipped_commands_line_up_with_their_latencies() -> None:
    provider = RecordingProvider()
    provider.fail("conference_create", times=None, retryable=False)
    driver = await drive(FLOW, [RECEIVED, event("call.answered", call_id="caller-1")], provider=provider)
    step = next(s for s in driver.session.trace if s.event == "call.answered")
    assert [c[:2] for c in step.commands] == [("conference_create", "error"), ("conference_join", "skipped")]
    assert len(step.latencies) == 2 and step.latencies[0] == 0.0 and step.latencies[1] is None


def test_latencies_survive_storage_and_old_steps_read_without_them() -> None:
    step = Step(5.0, "call.received", None, "answering", commands=(("answer", "ok", None),),
                latencies=(0.25,))
    doc = step.to_json()
    assert doc["latency"] == [0.25] and Step.from_json(doc) == step
    old = {k: v for k, v in doc.items() if k != "latency"}
    assert Step.from_json(old).latencies == () and Step.from_json(old).commands == step.commands
    assert "latency" not in Step(5.0, "x", "a", None).to_json()  # steps without commands carry none


def test_a_command_added_to_an_old_step_pads_the_ones_before_it() -> None:
    session = Session("s-1", FLOW.name, FLOW.version, "answering")
    session.trace.append(Step(1.0, "call.received", None, "answering", commands=(("answer", "ok", None),)))
    _note(session.trace[0], ("say", "ok", None), 0.5)
    assert session.trace[0].latencies == (None, 0.5)
    _note(session.trace[0], ("play", "ok", None), 0.123456)  # kept to a tenth of a millisecond
    assert session.trace[0].latencies == (None, 0.5, 0.1235)
