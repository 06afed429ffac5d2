"""Validator figures: time to load and check a generated 1,000-state flow (YAML with positions, the schema
check, every semantic rule, the frozen Flow).

Goal: < 1 s for the whole ``load_flow``. Run: ``python bench/bench_validate.py``.
"""

from __future__ import annotations

import time
from typing import Any

from flowengine.flow.loader import load_flow

STATES = 1_000
GOAL_SECONDS = 0.3  # issue 15 (was 1 s)


def _state(i: int, last: int) -> str:
    nxt, menu = f"s{i + 1}" if i + 1 < last else "done", f"s{max(i - 1, 0)}"
    dial = (
        f'      - dial: {{to: {{phone: "{{{{ vars.number }}}}"}}, timeout: 30s, as: agent{i}, '
        "connect: caller}\n"
        if i % 10 == 0
        else ""
    )
    return (
        f"  s{i}:\n"
        f"    description: step {i}\n"
        "    entry:\n"
        f'      - say: {{call: caller, text: "Step {i} of {{{{ vars.total }}}} for {{{{ session.id }}}}", '
        'language: "{{ vars.language }}"}\n'
        '      - set: {count: "{{ vars.count + 1 }}"}\n'
        f"{dial}"
        "    on:\n"
        "      dtmf.captured:\n"
        f"        - {{target: {nxt}, when: \"event.digits == '1' and vars.count < 100\"}}\n"
        f"        - {{target: {menu}, when: \"event.reason == 'timeout'\"}}\n"
        f'        - {{actions: [{{log: {{message: "pressed {{{{ event.digits }}}}"}}}}]}}\n'
        f"      say.finished: {nxt}\n"
        f"      call.failed: {{target: {nxt}, when: \"event.call != 'caller'\"}}\n"
        "    after:\n"
        f"      30s: {nxt}\n"
    )


def generated_flow(states: int = STATES) -> str:
    body = "".join(_state(i, states) for i in range(states))
    return (
        "flow: generated\nversion: 1\n"
        'vars: {number: "447400000000", total: 1000, count: 0, language: en}\n'
        "initial: s0\n"
        "on:\n  call.finished: {target: done, when: \"event.call == 'caller'\"}\n"
        f"states:\n{body}  done:\n    type: final\n    entry: [{{hangup: {{call: caller}}}}]\n"
    )


def run(rounds: int = 5) -> dict[str, Any]:
    text = generated_flow()
    timings = []
    result = None
    for _ in range(rounds):
        started = time.perf_counter()
        result = load_flow(text, source="generated.yaml")
        timings.append(time.perf_counter() - started)
    assert result is not None and result.flow is not None, result and result.diagnostics[:3]
    best = min(timings)
    return {
        "states": len(result.flow.states),
        "lines": text.count("\n"),
        "diagnostics": len(result.diagnostics),
        "seconds_best": best,
        "seconds_first": timings[0],  # includes compiling the schema validator and first-time parses
        "goal_seconds": GOAL_SECONDS,
        "ratio_time_to_goal": best / GOAL_SECONDS,  # below 1.0 means within the goal
    }


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:30} {value:,.3f}" if isinstance(value, float) else f"{name:30} {value}")
