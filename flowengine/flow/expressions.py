"""Expressions and templates: sandboxed Jinja2, compiled once at load.

- A string value may hold ``{{ … }}`` templates. A value that is exactly one ``{{ expr }}`` renders to the
  expression's native value (an int stays an int); anything else renders to a string.
- A guard (``when:``) is a bare expression, true or false.
- Undefined names fail loudly (``StrictUndefined``) as ``ExpressionError``; ``validate`` finds them first.

Jinja2 builds a fresh render context on every call (some 10 µs). The commonest expression shapes (names,
constant attribute and item paths, ``+ - *``, comparisons, ``and``/``or``/``not``) are therefore also
compiled to plain closures that do exactly what the sandbox's generated code does, through the sandbox's
own ``getattr``/``getitem`` and its checked operators, so values, errors and the sandbox's refusals are
the same (see ``_fast``).

Every evaluation through Jinja2 runs under a budget (``flow.sandbox``, ``flow.costs``); the fast path
needs none beyond its operators' checks: it has no loops or calls, and does at most as many operations
as the expression has nodes. Whatever goes wrong in an expression becomes an ``ExpressionError``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from jinja2 import TemplateSyntaxError, Undefined, nodes
from jinja2.parser import Parser

from flowengine.errors import ExpressionError
from flowengine.flow.costs import add, limit_chars, measure, multiply
from flowengine.flow.sandbox import budgeted, environment

__all__ = [
    "Compiled", "compile_expression", "compile_guard", "compile_value", "environment", "has_template",
    "parsing", "template_sources",
]
_SINGLE = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}).)*)\}\}\s*$", re.DOTALL)
Context = Mapping[str, Any]
T = TypeVar("T")


def has_template(text: str) -> bool:
    return "{{" in text or "{%" in text


@dataclass(frozen=True, slots=True)
class Compiled:
    """A value with its templates compiled; ``render`` walks lists and mappings."""

    source: Any
    _render: Callable[[Context], Any]

    def render(self, context: Context) -> Any:
        try:
            return self._render(context)
        except ExpressionError as exc:
            raise type(exc)(f"{exc} in {self.source!r}") from exc
        except Exception as exc:  # whatever an expression raises fails it, never its caller
            raise ExpressionError(f"{exc} in {self.source!r}") from exc


def compile_value(value: Any) -> Compiled:
    """Compile every template inside ``value``; raises ``TemplateSyntaxError`` on bad syntax."""
    return Compiled(value, _compiler(value))


def _compiler(value: Any) -> Callable[[Context], Any]:
    if isinstance(value, str):
        return _compile_text(value)
    if isinstance(value, Mapping):
        parts = {key: _compiler(item) for key, item in value.items()}
        return lambda ctx: {key: part(ctx) for key, part in parts.items()}
    if isinstance(value, list | tuple):
        items = [_compiler(item) for item in value]
        return lambda ctx: [item(ctx) for item in items]
    return lambda _ctx: value


def _compile_text(text: str) -> Callable[[Context], Any]:
    if not has_template(text):
        return lambda _ctx: text
    single = _SINGLE.match(text)
    if single:
        expression = _expression(single["expr"])
        return lambda ctx: _defined(expression(ctx))
    template = parsing(lambda: environment().from_string(text))
    return lambda ctx: budgeted(lambda: _output(template.render(**ctx)))


def _output(text: str) -> str:
    limit_chars(len(text), "a template's output")
    return text


def parsing(parse: Callable[[], T]) -> T:
    """``parse()``, with what Jinja2 raises on text it cannot take turned into a syntax error: a number
    literal too long to convert, or nesting deep enough to overflow its recursive parser."""
    try:
        return parse()
    except RecursionError:
        raise TemplateSyntaxError("nested too deeply", 1) from None
    except ValueError as exc:  # int() of a literal over Python's digit limit
        raise TemplateSyntaxError(str(exc), 1) from None


def _defined(result: Any) -> Any:
    # A lone expression returns Undefined itself instead of failing on str(); make it fail here.
    if isinstance(result, Undefined):
        result._fail_with_undefined_error()
    return result


@lru_cache(maxsize=1024)
def compile_expression(expression: str) -> Compiled:
    """Compile a bare expression (an ``http`` action's ``save`` entry) to its value over the context;
    cached, since these are compiled when first evaluated rather than with the flow."""
    compiled = _expression(expression)
    return Compiled(expression, lambda ctx: _defined(compiled(ctx)))


def compile_guard(expression: str) -> Compiled:
    """Compile a ``when:`` expression to a predicate over the context."""
    compiled = _expression(expression)
    return Compiled(expression, lambda ctx: bool(_defined(compiled(ctx))))


# -- the fast path ----------------------------------------------------------------------------------------
Evaluate = Callable[[Context], Any]


class _Fallback(Exception):
    """A name the context lacks (a Jinja global, or an error to report): Jinja itself answers."""


def _expression(source: str) -> Evaluate:
    """The compiled expression: the fast closure when ``_fast`` covers it, else Jinja2's."""
    jinja = parsing(lambda: environment().compile_expression(source, undefined_to_none=False))

    def slow(ctx: Context) -> Any:
        return budgeted(lambda: _made(jinja(**ctx)))

    fast = _fast(Parser(environment(), source, state="variable").parse_expression())
    if fast is None:
        return slow

    def evaluate(ctx: Context) -> Any:
        try:
            return fast(ctx)
        except _Fallback:
            return slow(ctx)

    return evaluate


def _made(value: Any) -> Any:
    if type(value) not in _PLAIN:
        measure(value)  # what Jinja2 returns may be new (``[a, a]``): refused when over the size budget
    return value


_PLAIN = frozenset({int, float, bool, type(None)})


# The sandbox's own operators: ``+`` (``_add``) and ``*`` checked (``flow.costs``), ``-`` as Python's.
_BINARY: dict[type[nodes.BinExpr], Callable[[Any, Any], Any]] = {
    nodes.Sub: operator.sub, nodes.Mul: multiply,
}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "lteq": operator.le, "gt": operator.gt,
    "gteq": operator.ge, "in": lambda a, b: a in b, "notin": lambda a, b: a not in b,
}


def _fast(node: nodes.Node) -> Evaluate | None:
    """A closure evaluating ``node`` as Jinja2's generated code does, or None for a shape not covered.

    The generated code resolves a name from the context (else a global or Undefined: ``_Fallback``),
    looks up ``a.b`` with ``environment.getattr`` and ``a[b]`` with ``environment.getitem`` (the sandbox's
    checks), and applies the sandbox's operators (checked ``+`` and ``*``): so do these closures."""
    if isinstance(node, nodes.Const):
        value = node.value
        return lambda _ctx: value
    if isinstance(node, nodes.Name) and node.ctx == "load":
        return _name(node.name)
    if isinstance(node, nodes.Getattr):
        base = _fast(node.node)
        return None if base is None else _getattr(base, node.attr)
    if isinstance(node, nodes.Getitem) and not isinstance(node.arg, nodes.Slice):
        return _pair(environment().getitem, _fast(node.node), _fast(node.arg))
    if isinstance(node, nodes.Add):
        return _add(_fast(node.left), _fast(node.right))
    if type(node) in _BINARY:
        assert isinstance(node, nodes.BinExpr)
        return _pair(_BINARY[type(node)], _fast(node.left), _fast(node.right))
    if isinstance(node, nodes.And | nodes.Or):
        left, right = _fast(node.left), _fast(node.right)
        if left is None or right is None:
            return None
        if isinstance(node, nodes.And):
            return lambda ctx: left(ctx) and right(ctx)
        return lambda ctx: left(ctx) or right(ctx)
    if isinstance(node, nodes.Not):
        operand = _fast(node.node)
        return None if operand is None else lambda ctx: not operand(ctx)
    if isinstance(node, nodes.Compare):
        return _compare(node)
    return None


def _name(name: str) -> Evaluate:
    def load(ctx: Context) -> Any:
        try:
            return ctx[name]
        except KeyError:
            raise _Fallback(name) from None

    return load


def _getattr(base: Evaluate, attr: str) -> Evaluate:
    getattr_ = environment().getattr
    if attr.startswith("_") or hasattr(dict, attr):
        return lambda ctx: getattr_(base(ctx), attr)

    def get(ctx: Context) -> Any:
        # A dict has no such attribute, so the sandbox's getattr would fail over to the item: go there first.
        obj = base(ctx)
        if type(obj) is dict and attr in obj:
            return obj[attr]
        return getattr_(obj, attr)

    return get


def _add(left: Evaluate | None, right: Evaluate | None) -> Evaluate | None:
    """``a + b``; numbers, by far the commonest (``vars.count + 1``), skip the size check's call."""
    if left is None or right is None:
        return None

    def plus(ctx: Context) -> Any:
        a, b = left(ctx), right(ctx)
        if type(a) in _NUMBERS and type(b) in _NUMBERS:
            return a + b
        return add(a, b)

    return plus


_NUMBERS = frozenset({int, float})


def _pair(apply: Callable[[Any, Any], Any], left: Evaluate | None, right: Evaluate | None) -> Evaluate | None:
    if left is None or right is None:
        return None
    return lambda ctx: apply(left(ctx), right(ctx))


def _compare(node: nodes.Compare) -> Evaluate | None:
    """``a < b < c`` as Python chains it: ``b`` evaluated once, the first false result returned."""
    first = _fast(node.expr)
    chain: list[tuple[Callable[[Any, Any], Any], Evaluate]] = []
    for op in node.ops:
        test, operand = _COMPARE.get(op.op), _fast(op.expr)
        if test is None or operand is None:
            return None
        chain.append((test, operand))
    if first is None or not chain:
        return None
    *head, (last_test, last_operand) = chain

    def compare(ctx: Context) -> Any:
        left = first(ctx)
        for test, operand in head:
            right = operand(ctx)
            result = test(left, right)
            if not result:
                return result
            left = right
        return last_test(left, last_operand(ctx))

    return compare


def template_sources(value: Any) -> Iterator[str]:
    """Every string in ``value`` that holds a template, as Jinja2 source (for analysis)."""
    if isinstance(value, str):
        if has_template(value):
            yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from template_sources(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from template_sources(item)
