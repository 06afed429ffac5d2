"""The expression fast path answers exactly as Jinja2's sandbox does: same values, same errors."""

from __future__ import annotations

from typing import Any

import pytest

from flowengine.errors import ExpressionError
from flowengine.flow.expressions import Compiled, _defined, compile_guard, compile_value, environment


def context() -> dict[str, Any]:
    return {
        "vars": {"x": 3, "y": 3, "s": "ab", "lst": [1, 2, 3], "i": 1, "flag": False, "none": None,
                 "_x": "private", "items": "shadowed?", "nested": {"deep": {"k": "v"}}, "f": 0.5},
        "event": {"name": "dtmf.captured", "digits": "42", "call": "caller", "data": {"n": 1}, "raw": {}},
        "caller": {"id": "call-1"},
        "session": {"id": "s-1", "state": "listening"},
    }


EXPRESSIONS = [
    "vars.x", "vars.missing", "vars.items", "vars.keys", "vars._x", "vars.__class__", "vars['x']",
    "vars['missing']", "vars[0]", "vars.lst[1]", "vars.lst[5]", "vars.lst[vars.i]", "vars.lst['a']",
    "vars.nested.deep.k", "vars.nested.deep.missing", "event.digits", "event.data.n", "caller.id",
    "vars.x + 1", "vars.s + 1", "vars.s + 'c'", "vars.x - 2 * 3", "vars.f * 2", "vars.s * 2",
    "vars.missing + 1", "vars.missing == 1", "vars.x == 3", "vars.x != 3", "1 < vars.x < 5",
    "1 < vars.x < 2", "vars.x == vars.y == 3", "vars.x in vars.lst", "vars.x not in vars.lst",
    "'a' in vars.s", "vars.s in 1", "not vars.flag", "not vars.missing", "vars.flag and vars.x",
    "vars.x and vars.flag", "vars.none or 'd'", "vars.flag or vars.missing", "event.call == 'caller'",
    "missing_name", "missing_name.x", "range", "namespace", "vars.s.upper", "vars.s.__class__",
    "vars.s.format", "vars.lst.append", "vars.nested.pop", "caller['id']", "1 + 2", "'x'", "none",
    "vars.x + vars.missing", "vars.lst[1:2]", "vars.x ~ 'a'", "vars.x // 2", "-vars.x",
    # over the size budget (flow.costs): refused the same way by both
    "vars.s * 600000", "vars.s * 2000000000", "2000000000 * vars.s", "vars.lst * 40000",
    "vars.lst + vars.lst", "vars.s * 400000 + vars.s * 400000", "vars.x * 2 ** 4095", "vars.x ** 5000",
    "vars.s * True",
]


def reference(source: str, shown: str) -> Compiled:
    """Jinja2 alone, as before the fast path; ``shown`` is the source errors quote."""
    slow = environment().compile_expression(source, undefined_to_none=False)
    return Compiled(shown, lambda ctx: _defined(slow(**ctx)))


def outcome(compiled: Compiled) -> tuple[str, Any]:
    try:
        value = compiled.render(context())
    except ExpressionError as exc:
        cause = exc.__cause__
        return "error", (type(cause).__name__, str(exc))
    if callable(value):  # bound methods and the sandbox's wrapped str.format: compare what they are
        return "callable", getattr(value, "__name__", type(value).__name__)
    return "value", (type(value).__name__, value)


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_values_and_errors_match_jinja(source: str) -> None:
    template = "{{ " + source + " }}"
    assert outcome(compile_value(template)) == outcome(reference(source, template))


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_guards_match_jinja(source: str) -> None:
    slow = reference(source, source)
    assert outcome(compile_guard(source)) == outcome(Compiled(source, lambda ctx: bool(slow._render(ctx))))


def test_fast_path_sees_later_changes_to_the_context() -> None:
    bump = compile_value({"count": "{{ vars.count + 1 }}", "digits": "{{ event.digits }}"})
    ctx = {"vars": {"count": 1}, "event": {"digits": "7"}}
    assert bump.render(ctx) == {"count": 2, "digits": "7"}
    ctx["vars"]["count"] = 5
    assert bump.render(ctx) == {"count": 6, "digits": "7"}
