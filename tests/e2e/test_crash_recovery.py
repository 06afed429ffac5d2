"""Crash recovery with real processes: ``flowengine serve`` and the standalone Infobip simulator on
127.0.0.1, a SQLite file, four concurrent calls of the seed flow (callee answers, busy or declining, caller
hangs up while the callee rings), ``serve`` SIGKILLed once and restarted on the same file 3.5 s later.

Two runs, side by side (each ~15-25 s of wall clock, mostly the greeting being said):
- killed during the greeting, while no webhook is due: the restart must lose nothing.
- killed once every dial went out, so the callees' ringing, answers and declines arrive while the
  engine is down and are lost (the simulator does not redeliver): the restarted engine asks the platform
  what it missed (start-up reconciliation), and every call still ends as the flow says, nothing carried
  out twice, no orphans.
The large runs are ``make chaos`` (tests/chaos/__main__.py).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator

import pytest
from chaos.judge import judge
from chaos.scenarios import Kill, Result, Spec, run

CALLS = ["answers", "busy", "caller-hangs-up", "answers"]
# Both kills strike 0.15 s after the last greeting / dial reached the simulator, once every plan has
# finished and been saved: no command is in flight, so what is asserted does not hang on a race (the
# kill between a command and its save is make chaos's "kill at dial", which measures rather than asserts).
SETTLED = 0.15  # seconds after the trigger
QUIET = Spec("killed during the greeting", CALLS, kills=[Kill("greeting", share=1.0, delay=SETTLED)],
             deadline=45)
# Killed at the dial: everything the callees do next (ringing at 0.5 s, answering or declining at 2 s)
# happens while the engine is down. Reconciling at start-up, every call is over ~22 s after they were
# placed (the callee answering at ~11 s hangs up 4 s later; the decline's apology ends at ~19 s); 28 s
# leaves it room. Without it the answered callee's hang-up was taken for a failed dial, and the declined
# one waited for the flow's 75 s dial timer.
LOSSY_CALLS = ["answers", "rejects", "caller-hangs-up", "answers"]
LOSSY = Spec("killed at the dial", LOSSY_CALLS, kills=[Kill("dial", share=1.0, delay=SETTLED)], deadline=28)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Result]]:
    async def both() -> list[Result]:
        return list(await asyncio.gather(
            run(QUIET, tmp_path_factory.mktemp("quiet")), run(LOSSY, tmp_path_factory.mktemp("lossy"))
        ))

    quiet, lossy = asyncio.run(both())
    yield {"quiet": quiet, "lossy": lossy}


def explain(result: Result) -> str:
    f = result.figures
    return (f"{result.spec.name}: {f.correct}/{f.calls} correct; wrong: {dict(f.wrong)}; doubled: "
            f"{dict(f.doubled_kinds)} {f.evidence}; notes: {result.notes}")


# -- killed while nothing was due: nothing may be lost -----------------------------------------------
def test_quiet_kill_every_call_ends_as_the_flow_says(runs: dict[str, Result]) -> None:
    result = runs["quiet"]
    assert result.over, explain(result)
    assert result.figures.correct == len(CALLS), explain(result)
    assert result.figures.rescued == 0, explain(result)  # no session waited for a safety-net timer


def test_quiet_kill_carries_out_no_command_twice(runs: dict[str, Result]) -> None:
    assert runs["quiet"].figures.doubled == 0, explain(runs["quiet"])


def test_quiet_kill_leaves_no_orphan_and_no_active_session(runs: dict[str, Result]) -> None:
    f = runs["quiet"].figures
    assert (f.orphan_calls, f.orphan_conferences, f.stuck) == (0, 0, 0), explain(runs["quiet"])


# -- killed at the dial: webhooks lost while the engine is down --------------------------------------
def test_lossy_kill_really_lost_webhooks(runs: dict[str, Result]) -> None:
    """The premise of the cases below: the kill did cost webhooks."""
    assert runs["lossy"].figures.webhooks_failed > 0, explain(runs["lossy"])


def test_lossy_kill_carries_out_no_command_twice(runs: dict[str, Result]) -> None:
    assert runs["lossy"].figures.doubled == 0, explain(runs["lossy"])


def test_lossy_kill_leaves_no_orphan(runs: dict[str, Result]) -> None:
    f = runs["lossy"].figures
    assert (f.orphan_calls, f.orphan_conferences) == (0, 0), explain(runs["lossy"])


def test_lossy_kill_every_call_ends_as_the_flow_says(runs: dict[str, Result]) -> None:
    result = runs["lossy"]
    assert result.figures.correct == len(LOSSY_CALLS), explain(result)


def test_lossy_kill_leaves_no_session_waiting(runs: dict[str, Result]) -> None:
    result = runs["lossy"]
    assert result.over and result.figures.stuck == 0, explain(result)


# -- the judge sees what it should: the quiet run's own record, with one fault written into it ------
def test_judge_counts_a_request_carried_out_twice(runs: dict[str, Result]) -> None:
    observed = copy.deepcopy(runs["quiet"].observed)
    greeting = next(r for r in observed.requests if r["path"].endswith("/say"))
    observed.requests.append(dict(greeting))
    figures = judge(observed, runs["quiet"].placed)
    assert (figures.doubled, figures.doubled_act_once) == (1, 1)
    assert list(figures.doubled_kinds) == ["POST /calls/1/calls/{caller}/say"]


def test_judge_counts_an_orphan_call_and_a_stuck_session(runs: dict[str, Result]) -> None:
    quiet = runs["quiet"]
    first, second = (call.call_id for call in quiet.placed[:2])
    observed = copy.deepcopy(quiet.observed)
    observed.calls[first]["state"] = "ESTABLISHED"  # still up, its session over: an orphan
    observed.calls[second]["state"] = "ESTABLISHED"  # still up, its session active: stuck, not orphan
    next(v for v in observed.sessions if v["calls"]["caller"] == second)["status"] = "active"
    figures = judge(observed, quiet.placed)
    assert (figures.correct, figures.orphan_calls, figures.stuck) == (len(CALLS) - 2, 1, 1)
