"""Expression figures: microseconds per render of the shapes flows use, and how long the budget takes to
refuse hostile ones (issue 11).

- ``us_fast_*``: shapes the fast path covers (names, paths, ``+``, comparisons), no Jinja2 context;
- ``us_jinja_*``: shapes that go through Jinja2 under the budget (filters, literals, templates, loops);
- ``refuse_*_ms``: a hostile expression from compile to refusal (nested loops, a power, a repetition).

Best of 5 rounds of 20,000 renders each (200 for the refusals). Run: ``python bench/bench_expressions.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from flowengine.errors import ExpressionError
from flowengine.flow.expressions import compile_guard, compile_value

CONTEXT: dict[str, Any] = {
    "vars": {"count": 3, "name": "Ada", "agents": [f"agent-{i}" for i in range(10)], "language": "en"},
    "event": {"name": "dtmf.captured", "digits": "1", "call": "caller", "reason": None},
    "session": {"id": "s-1", "state": "menu"},
    "caller": {"id": "call-1"},
}
FAST = {
    "us_fast_path": "{{ vars.count + 1 }}",
    "us_fast_guard": "event.digits == '1' and vars.count < 100",
}
JINJA = {
    "us_jinja_filter": "{{ vars.agents | length }}",
    "us_jinja_literal_guard": "event.call in ['caller', vars.name]",
    "us_jinja_template": "Hello {{ vars.name }}, you pressed {{ event.digits }} in {{ session.id }}",
    "us_jinja_loop": "{% for a in vars.agents %}{{ a }},{% endfor %}",
}
HOSTILE = {
    "refuse_nested_loops_ms": "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}"
                              "{% endfor %}",
    "refuse_power_ms": "{{ 10 ** 5000000 }}",
    "refuse_repetition_ms": "{{ 'a' * 2000000000 }}",
}


def _compiled(source: str) -> Callable[[dict[str, Any]], Any]:
    if "{{" in source or "{%" in source:
        return compile_value(source).render
    return compile_guard(source).render


def _best_us(render: Callable[[], Any], count: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(count):
            render()
        best = min(best, (time.perf_counter() - started) / count)
    return best * 1e6


def _refusal(source: str) -> None:
    try:
        compile_value(source).render(CONTEXT)
    except ExpressionError:
        return
    raise AssertionError(f"not refused: {source}")


def run(renders: int = 20_000) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name, source in {**FAST, **JINJA}.items():
        render = _compiled(source)
        figures[name] = round(_best_us(partial(render, CONTEXT), renders), 2)
    for name, source in HOSTILE.items():
        figures[name] = round(_best_us(partial(_refusal, source), 200) / 1000, 3)
    return figures


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:28} {value}")
