"""Expressions run under a budget: each hostile expression is refused within 100 ms of CPU and a few
megabytes, before anything big is built; what fits the budget still works; nothing is evaluated while
compiling; and the runtime turns a refusal into ``action.failed``, never an exception in the loop."""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from jinja2 import TemplateSyntaxError

from flowengine.errors import ExpressionBudgetError, ExpressionError
from flowengine.flow.build import build_flow
from flowengine.flow.costs import MAX_CHARS, MAX_INT_BITS, MAX_OPS
from flowengine.flow.expressions import Compiled, compile_guard, compile_value
from flowengine.flow.rules.costs import findings
from flowengine.flow.template_analysis import analyse
from flowengine.runtime.program import Program
from flowengine.testing import drive, event

CPU_LIMIT = 0.1  # seconds of CPU for compiling and rendering one hostile expression
MEMORY_LIMIT = 8_000_000  # bytes allocated at the peak of one (the attacks would need gigabytes)


def context() -> dict[str, Any]:
    return {
        "vars": {"n": 10_000, "big": "x" * 900_000, "big2": "x" * 900_000, "chunk": "y" * 1_000, "s": "ab",
                 "three": 3, "nested": [[1, 2], [3]], "deep": {"a": {"b": "c"}}},
        "event": {"digits": "2000000000", "call": "caller"},
        "session": {"id": "s-1"},
        "caller": {"id": "call-1"},
    }


HOSTILE = {
    "nested range loops": "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "nested loops on a variable": "{% for i in range(vars.n) %}{% for j in range(vars.n) %}{% endfor %}"
                                  "{% endfor %}",
    "constant power": "{{ 10 ** 5000000 }}",
    "constant power compared": "{{ 10 ** 10000000 > 0 }}",
    "power of variables": "{{ vars.n ** vars.n }}",
    "product of big numbers": "{{ (2 ** 4000) * (2 ** 4000) }}",
    "string repetition": "{{ 'a' * 2000000000 }}",
    "repetition by an event value": "{{ 'a' * (event.digits | int) }}",
    "repetition on the fast path": "{{ vars.s * (vars.n * vars.n * vars.n) }}",
    "list repetition": "{{ [1, 2] * 2000000000 }}",
    "repetition of a nested list": "{{ [vars.big, vars.big] * 3 }}",
    "concatenation": "{{ vars.big + vars.big }}",
    "tilde concatenation": "{{ vars.big ~ vars.big }}",
    "percent width": "{{ '%999999999d' % 1 }}",
    "percent precision": "{{ '%.999999999f' % 1.0 }}",
    "format width": "{{ '{:>999999999}'.format(1) }}",
    "nested format width": "{{ '{:>{}}'.format(1, 999999999) }}",
    "format filter": "{{ '%999999999s' | format('x') }}",
    "center filter": "{{ 'a' | center(999999999) }}",
    "center method": "{{ 'a'.center(999999999) }}",
    "indent filter": "{{ vars.big | indent(vars.big) }}",
    "replace amplifies": "{{ vars.chunk.replace('y', vars.chunk ~ vars.chunk) }}",
    "replace filter amplifies": "{{ vars.chunk | replace('y', vars.chunk ~ vars.chunk) }}",
    "sorting a long string": "{{ (vars.big[:50000] | sort | first) }}",
    "join with a big separator": "{{ range(5000) | map('string') | join(vars.chunk) }}",
    "join method": "{{ vars.chunk.join(range(5000) | map('string')) }}",
    "to_bytes": "{{ (1).to_bytes(999999999, 'big') }}",
    "batch padding": "{{ [1] | batch(999999999, 0) | list }}",
    "slice count": "{{ [1] | slice(999999999) | list }}",
    "sum of lists": "{{ vars.nested | sum(start=[]) }}",
    "literal doubling": "{% set ns = namespace(a=[1, 2]) %}{% for i in range(40) %}"
                        "{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns.a | length }}",
    "dict doubling": "{% set ns = namespace(a={}) %}{% for i in range(40) %}"
                     "{% set ns.a = {'l': ns.a, 'r': ns.a} %}{% endfor %}{{ ns.a | length }}",
    "macro recursion": "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "exponential macro": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
                         "{{ f(40) }}",
    "output over the cap": "{% for i in range(2) %}{{ vars.big }}{% endfor %}",
    "output made in a loop": "{% for i in range(9000) %}{{ vars.chunk }}{% endfor %}",
    "static text in a loop": "{% for i in range(9000) %}" + "z" * 1000 + "{% endfor %}",
    "list of a long string": "{{ (vars.big * 1) | list | length }}",
    "tojson indentation": "{% set ns = namespace(a=[1]) %}{% for i in range(200) %}{% set ns.a = [ns.a] %}"
                          "{% endfor %}{{ ns.a | tojson(indent=100000) }}",
    "recursive loop": "{% for x in [1] recursive %}{{ loop(range(10000)) }}{% endfor %}",
    "split into pieces": "{{ (vars.big ~ vars.big[:90000]).split('x') }}",
    # no single step is big, but many are slow: stopped by the CPU time budget
    "comparisons in a loop": "{% for i in range(9999) %}{{ vars.big == vars.big2 }}{% endfor %}",
}


def cpu_and_memory(run: Callable[[], object]) -> tuple[float, int, BaseException | None]:
    """CPU seconds of ``run`` (timed on its own), then its peak allocation (a second run, traced)."""
    def attempt() -> BaseException | None:
        try:
            run()
        except Exception as exc:  # returned for the test to inspect
            return exc
        return None

    # A collection of the whole suite's heap (it may fall in any test) is not this expression's CPU.
    gc.collect()
    gc.disable()
    try:
        started = time.thread_time()
        error = attempt()
        cpu = time.thread_time() - started
    finally:
        gc.enable()
    tracemalloc.start()
    try:
        attempt()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return cpu, peak, error


@pytest.mark.parametrize(("name", "source"), HOSTILE.items(), ids=HOSTILE.keys())
def test_hostile_expression_is_refused_quickly_in_little_memory(name: str, source: str) -> None:
    ctx = context()
    cpu, peak, error = cpu_and_memory(lambda: compile_value(source).render(ctx))
    # Endless macro recursion may meet Python's recursion limit before the budget: an ExpressionError too.
    expected = ExpressionError if name == "macro recursion" else ExpressionBudgetError
    assert isinstance(error, expected), f"not refused by the budget: {error!r}"
    assert cpu <= CPU_LIMIT, f"{cpu * 1000:.0f} ms of CPU"
    assert peak <= MEMORY_LIMIT, f"{peak / 1e6:.1f} MB at the peak"


@pytest.mark.parametrize("source", ["10 ** 10000000 > 0", "'a' * 2000000000 == ''",
                                    "vars.s * (vars.n * vars.n * vars.n) == ''"])
def test_a_guard_over_budget_fails_fast(source: str) -> None:
    ctx = context()
    cpu, _, error = cpu_and_memory(lambda: compile_guard(source).render(ctx))
    assert isinstance(error, ExpressionBudgetError)
    assert cpu <= CPU_LIMIT


FITS = {
    "{{ ('a' * 1000000) | length }}": MAX_CHARS,
    "{{ (2 ** 4000).bit_length() }}": 4001,
    "{{ (3 ** 2000 * 3 ** 500).bit_length() > 3900 }}": True,
    "{{ vars.three ** 5 }}": 243,
    "{{ vars.s * 3 }}": "ababab",
    "{{ [vars.s] * 2 }}": ["ab", "ab"],
    "{{ vars.s + 'c' }}": "abc",
    "{{ vars.s ~ 1 }}": "ab1",
    "{{ '%5d|%-3s|%.2f' % (7, 'x', 1.5) }}": "    7|x  |1.50",
    "{{ '{:>4}{}'.format(1, vars.s) }}": "   1ab",
    "{{ 'a' | center(5) }}": "  a  ",
    "{{ vars.chunk.replace('y', 'zz') | length }}": 2000,
    "{{ range(3) | map('string') | join('-') }}": "0-1-2",
    "{{ '-'.join(['a', 'b']) }}": "a-b",
    "{% for i in range(100) %}{% for j in range(50) %}.{% endfor %}{% endfor %}": "." * 5000,
    "{% set ns = namespace(a=[1]) %}{% for i in range(10) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}"
    "{{ ns.a | length }}": "2",
    "{{ vars.deep | tojson }}": '{"a": {"b": "c"}}',
    "{{ vars.nested | sum(start=0) if false else [1, 2, 3] | sum }}": 6,
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ n }}{% endif %}{% endmacro %}{{ f(5) }}": "12345",
    "{% for x in [[1, [2]]] recursive %}{{ x if x is number else loop(x) }}{% endfor %}": "12",
    "{{ vars.big | length }}": 900_000,
}


@pytest.mark.parametrize(("source", "expected"), FITS.items(), ids=FITS.keys())
def test_what_fits_the_budget_still_works(source: str, expected: object) -> None:
    assert compile_value(source).render(context()) == expected


def test_the_limits_are_the_documented_ones() -> None:
    assert (MAX_CHARS, MAX_INT_BITS, MAX_OPS) == (1_000_000, 4_096, 10_000)
    with pytest.raises(ExpressionBudgetError, match="4,096"):
        compile_value("{{ 2 ** 4097 }}").render({})
    assert compile_value("{{ (2 ** 4095).bit_length() }}").render({}) == 4096


@pytest.mark.parametrize("source", [
    "{{ 10 ** 10000000 > 0 }}", "x {{ 10 ** 10000000 }}", "{{ 'a' | center(1000000000) }}",
    "x{{ 'a' | center(1000000000) }}{{ 'a' * 1000000000 }}", "{{ ('a' ~ 'b') * 1000000000 }}",
    "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "{{ '%s' % ('a' * 1000000000) }}", "{{ [1] * 1000000000 }}",
])
def test_compiling_evaluates_nothing(source: str) -> None:
    cpu, peak, error = cpu_and_memory(lambda: compile_value(source))
    assert error is None
    assert cpu <= CPU_LIMIT and peak <= MEMORY_LIMIT


def test_a_program_with_hostile_constants_compiles_at_once() -> None:
    """What ``serve`` does at start-up with a flow: build and compile it (validate is covered apart)."""
    entry = [{"log": {"message": "{{ 10 ** 10000000 > 0 }}"}}, {"log": {"message": "x{{ 'a' * 10 ** 9 }}"}}]
    flow = build_flow({"flow": "f", "version": 1, "initial": "s", "states": {
        "s": {"entry": entry, "on": {"call.finished": {"target": "e", "when": "9 ** 9999999 > 1"}}},
        "e": {"type": "final"}}})
    cpu, _, error = cpu_and_memory(lambda: Program(flow))
    assert error is None and cpu <= CPU_LIMIT


@pytest.mark.parametrize("source", [
    "{{ " + "(" * 200 + "1" + ")" * 200 + " }}",  # overflowed Jinja2's recursive parser
    "{{ " + "not " * 500 + "1 }}",  # parsed, but overflowed its code generator
    "{{ " + "1 + " * 5000 + "1 }}",
    "{{ " + "1" * 5000 + " }}",  # a literal over Python's int() digit limit
])
def test_text_jinja_cannot_take_is_a_syntax_error(source: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        compile_value(source)
    assert analyse(source).error is not None


def test_wrapped_errors_keep_the_budget_kind_and_name_the_source() -> None:
    template = compile_value({"text": "{{ 'a' * 2000000000 }}"})
    with pytest.raises(ExpressionBudgetError) as caught:
        template.render({})
    assert "2,000,000,000 characters" in str(caught.value) and "'a' * 2000000000" in str(caught.value)


def test_any_error_inside_jinja_becomes_an_expression_error() -> None:
    for source in ("{% include 'x' %}", "{% set x = 1 %}{% set x.y = 2 %}"):
        with pytest.raises(ExpressionError):
            Compiled.render(compile_value(source), {})


async def test_an_expression_over_budget_fails_its_action_and_the_flow_handles_it() -> None:
    flow = build_flow({"flow": "t", "version": 1, "initial": "start", "states": {
        "start": {
            "entry": [{"set": {"n": "{{ event.call_id | length * 1000000000 }}"}},
                      {"log": {"message": "{{ 'x' * vars.n }}"}},
                      {"say": {"call": "caller", "text": "never said"}}],
            "on": {"action.failed": "sorry"},
        },
        "sorry": {"entry": [{"hangup": {"call": "caller"}}], "type": "final"},
    }})
    driver = await drive(flow, [event("call.received", call_id="caller-1")])
    commands = list(driver.session.trace[0].commands)
    assert commands[0] == ("set", "ok", None)
    assert commands[1][:2] == ("log", "error") and "over the expression budget" in str(commands[1][2])
    assert commands[2] == ("say", "skipped", None)
    failed = driver.session.trace[1]
    assert (failed.event, failed.target) == ("action.failed", "sorry")
    assert driver.provider.actions == ["hangup"]
    assert driver.session.status == "ended"


# -- what validate sees (rules.costs); positions are pinned by the golden file expression_budget ----------
@pytest.mark.parametrize(("source", "needle", "skip"), [
    ("{{ 10 ** 10000000 > 0 }}", "**", 0),
    ("{{ 2 * 3 }} {{ 'a' * 2000000000 }}", "*", 1),
    ("{{ '%d%%' % 5 }} {{ '%999999999d' % 1 }}", "%", 5),  # the % inside the strings count as text
    ("{{ vars.x | center(1000000000) }}", "center", 0),  # the value is unknown; the width alone is over
    ("{{ 'x'.center(5) }}{{ 'y'.center(2000000) }}", "center", 1),
    ("{% for i in range(20000) %}{% endfor %}", "range", 0),
    ("{% for i in range(10) %}{% for j in range(2000) %}{% endfor %}{% endfor %}", "for", 1),
    ("{{ ('ab' ~ 'cd') * 300000 }}", "*", 0),
    ("{{ 7 ** 99999 > 1 if vars.x else 0 }}", "**", 0),
])
def test_validate_finds_constant_work_over_budget(source: str, needle: str, skip: int) -> None:
    (finding,) = findings(source)
    assert (finding.needle, finding.skip) == (needle, skip)
    assert finding.message.startswith("always over the expression budget: ")


@pytest.mark.parametrize("source", [
    "{{ 2 ** 4000 }}", "{{ 'a' * 1000000 }}", "{{ vars.x * 10 ** 9 }}", "{{ vars.s * vars.n }}",
    "{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}",
    "{% for i in range(vars.n) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
    "{{ '%5d' % 3 }} {{ 'a' | center(80) }} {{ '{:>10}'.format(1) }}", "{{ 1 / 0 }}", "{{ 'a' * 'b' }}",
])
def test_validate_leaves_alone_what_fits_or_depends_on_data(source: str) -> None:
    assert findings(source) == ()
