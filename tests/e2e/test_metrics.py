"""Every exported series counts what happened: real calls through engine and simulator on 127.0.0.1 (both
providers), then /metrics is read and each series compared with what the sessions' traces and the
simulator show. ``promtool check metrics`` (Debian's prometheus package) must find nothing to say."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flowengine.config import Route
from flowengine.flow.vocabulary import ALWAYS
from flowengine.runtime.observing import step_outcome
from flowengine.runtime.program import TIMER_PREFIX
from flowengine.runtime.session import Step
from flowengine.scenarios.runner import ScenarioResult, play
from flowengine.scenarios.stack import Stack, running_stack
from flowengine.server.service import Service
from flowengine.testing import wipe_redis

from .conftest import CALLER, CALLER_ID, FLOW, REDIS, engine, platform, scenario, until_over, until_state

BREAKS_TO = "4420700000099"  # the number routed to the flow that fails
BREAKS = """
flow: breaks
initial: answering
states:
  answering:
    entry:
      - answer: {call: caller}
    on:
      call.answered: fetching
  fetching:
    entry:
      - log: {message: "calling +447700900123 for https://crm:hunter2@crm.invalid/x?token=abc"}
      - http: {url: "https://crm.invalid/hook"}
    on:
      call.finished: done
  done: {type: final}
"""
# Trace command records that never reached a port: the engine's own actions, and what had nothing to do.
NOT_SENT = frozenset({"set", "log"})


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of ``name`` in an exposition, keyed by its sorted labels."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def by(text: str, name: str, *keys: str) -> Counter[tuple[str, ...]]:
    """``name``'s non-zero samples summed by the ``keys`` labels."""
    counts: Counter[tuple[str, ...]] = Counter()
    for labels, value in samples(text, name).items():
        if value:
            found = dict(labels)
            counts[tuple(found[key] for key in keys)] += int(value)
    return counts


async def scrape(stack: Stack) -> str:
    async with aiohttp.ClientSession() as http, http.get(
        f"{stack.engine_url}/metrics", headers=stack.api_headers
    ) as response:
        assert response.status == 200
        return await response.text()


def steps(sessions: Iterable[dict[str, Any]]) -> list[tuple[str, Step]]:
    return [(s["flow"], Step.from_json(step)) for s in sessions for step in s["trace"]]


def sent(sessions: Iterable[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """(action, trace status) of every command that went to a port, from the traces."""
    return Counter(
        (action, status) for _, step in steps(sessions) for action, status, detail in step.commands
        if action not in NOT_SENT and status != "skipped" and not (detail or "").startswith("nothing to do")
    )


async def calls(provider: str, tmp_path: Path) -> tuple[str, list[ScenarioResult], Stack]:
    """Two calls of the seed flow (the callee answers, then hangs up) and one of a flow whose http action
    is refused (its session fails); /metrics read once they are all over."""
    breaks = tmp_path / "breaks.yaml"
    breaks.write_text(BREAKS)
    talk = scenario(callee={"answer_after": "3s", "hangup_after": "30s"})
    failing = scenario(caller={"to": BREAKS_TO}, name="breaks")
    options = {"routes": (Route(breaks, to=BREAKS_TO),)}
    async with running_stack(provider, FLOW, parties=talk.parties, service_options=options) as stack:
        results = [await play(stack, talk), await play(stack, talk), await play(stack, failing)]
        with stack.clock.busy():  # nothing moves between the scrape and the sessions read
            text = await scrape(stack)
            for result in results:  # as they are now: events that came after a run's end are in
                record = await stack.service.store.get(result.session["id"])
                assert record is not None
                result.session = record.data
        return text, results, stack


@pytest.mark.parametrize("provider", ["infobip", "sinch"])
async def test_every_series_counts_what_the_calls_did(provider: str, tmp_path: Path) -> None:
    text, results, stack = await calls(provider, tmp_path)
    sessions = [result.session for result in results]
    seed, broken = "two-party-conference", "breaks"
    assert [s["status"] for s in sessions] == ["ended", "ended", "failed"]

    assert by(text, "flowengine_sessions_started_total", "flow") == {(seed,): 2, (broken,): 1}
    assert by(text, "flowengine_sessions_ended_total", "flow", "status") == {
        (seed, "ended"): 2, (broken, "failed"): 1}
    # Nothing live any more, in any state of any flow (every state still shown, at 0); no timer left.
    live = samples(text, "flowengine_sessions_live")
    assert (("flow", seed), ("state", "dialing")) in live and not any(live.values())
    # Pending: what the sessions still keep (Sinch's derived follow-ups may wait a while after the end).
    kept = Counter({("flow",): sum(len(s["timers"]) for s in sessions),
                    ("deferred",): sum(len(s["deferred"]) for s in sessions)})
    assert by(text, "flowengine_timers_pending", "kind") == kept and not kept[("flow",)]
    assert {dict(k)["kind"] for k in samples(text, "flowengine_timers_pending")} >= {"flow", "reconcile"}

    # Transitions: one per trace step that entered a state; events: one per step, by its outcome.
    traced = steps(sessions)
    assert by(text, "flowengine_transitions_total", "flow") == Counter(
        (flow,) for flow, step in traced if step.target is not None)
    assert by(text, "flowengine_events_total", "event", "outcome") == Counter(
        ("timer" if step.event.startswith(TIMER_PREFIX) else step.event, step_outcome(step))
        for _, step in traced if step.event != ALWAYS)
    events = by(text, "flowengine_events_total", "outcome")
    assert events[("handled",)] > 0 and events[("unmatched",)] + events[("late",)] > 0  # not all "handled"

    # Commands: each attempt by action and outcome, as the traces record them; the latency histogram saw each.
    commands = by(text, "flowengine_commands_total", "action", "outcome")
    assert commands == Counter(
        {(action, "ok" if status == "ok" else "failed"): n for (action, status), n in sent(sessions).items()})
    assert commands[("http", "failed")] == 1 and commands[("answer", "ok")] == 3
    assert by(text, "flowengine_commands_total", "provider") == Counter(
        {(provider,): sum(commands.values()) - 1, ("http",): 1})
    assert by(text, "flowengine_command_seconds_count", "provider", "action") == by(
        text, "flowengine_commands_total", "provider", "action")
    if provider == "infobip":  # one REST request per answer and per say: what the simulator received
        paths = Counter(r["path"].rsplit("/", 1)[-1] for r in results[-1].requests if r["method"] == "POST")
        assert (paths["answer"], paths["say"]) == (commands[("answer", "ok")], commands[("say", "ok")])

    # Webhooks: every one the simulator sent has an outcome, and its time was measured.
    webhooks = by(text, "flowengine_webhooks_total", "outcome")
    delivered = len(results[-1].webhooks)
    assert sum(webhooks.values()) == delivered and webhooks[("handled",)] > 0
    assert samples(text, "flowengine_webhook_seconds_count")[()] == delivered
    assert stack.simulator is not None


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool is not installed (Debian: apt-get install prometheus)")
async def test_promtool_finds_nothing_to_say_about_the_exposition(tmp_path: Path) -> None:
    text, _, _ = await calls("infobip", tmp_path)
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), (
        checked.stdout + checked.stderr)


async def live_gauges(service: Service) -> tuple[Counter[tuple[str, ...]], Counter[tuple[str, ...]]]:
    """(live sessions by state, pending timers by kind) as the service's /metrics says them now."""
    text = (await service.scrape())[0].decode()
    return by(text, "flowengine_sessions_live", "state"), by(text, "flowengine_timers_pending", "kind")


@pytest.mark.redis
async def test_live_gauges_agree_across_instances_and_after_a_restart() -> None:
    """Two instances share Redis; the call is taken by the first, which then restarts mid-call: each
    instance, the restarted one included, shows the one live session in its state, and 0 after the end."""
    prefix = f"fe-metrics:{uuid.uuid4().hex}:"
    store = f"{REDIS}?prefix={prefix}"
    talk = scenario(callee={"answer_after": "3s", "hangup_after": "30s"})
    try:
        async with platform(talk.parties) as side, engine(side, store) as b:
            async with engine(side, store) as a:
                side.simulator.webhook_url = a.webhook_url
                call_id = await side.simulator.place_inbound_call(CALLER, CALLER_ID, talk.caller)
                session_id = a.service.session_id_for(call_id)
                await until_state(a.service, session_id, "dialing")
                with side.clock.busy():
                    for service in (a.service, b.service):
                        live, timers = await live_gauges(service)
                        assert live == {("dialing",): 1} and timers[("flow",)] == 1
                    side.simulator.webhook_url = b.webhook_url
            async with engine(side, store) as restarted:  # a again, with nothing in memory
                with side.clock.busy():
                    assert (await live_gauges(restarted.service))[0] == {("dialing",): 1}
                await until_over(b.service, side, session_id)
                for service in (b.service, restarted.service):
                    live, timers = await live_gauges(service)
                    assert not live and not timers  # nothing left, and nothing below zero
    finally:
        await wipe_redis(REDIS, prefix)
