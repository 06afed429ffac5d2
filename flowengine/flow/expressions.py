"""Expressions and templates: sandboxed Jinja2, compiled once at load.

- A string value may hold ``{{ … }}`` templates. A value that is exactly one ``{{ expr }}`` renders to the
  expression's native value (an int stays an int); anything else renders to a string.
- A guard (``when:``) is a bare expression, true or false.
- Undefined names fail loudly (``StrictUndefined``) as ``ExpressionError``; ``validate`` finds them first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from flowengine.errors import ExpressionError

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}).)*)\}\}\s*$", re.DOTALL)
Context = Mapping[str, Any]


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


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
        except (UndefinedError, SecurityError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
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
        expression = environment().compile_expression(single["expr"], undefined_to_none=False)
        return lambda ctx: _defined(expression(**ctx))
    template = environment().from_string(text)
    return lambda ctx: template.render(**ctx)


def _defined(result: Any) -> Any:
    # A lone expression returns Undefined itself instead of failing on str(); make it fail here.
    if isinstance(result, Undefined):
        result._fail_with_undefined_error()
    return result


def compile_guard(expression: str) -> Compiled:
    """Compile a ``when:`` expression to a predicate over the context."""
    compiled = environment().compile_expression(expression, undefined_to_none=False)
    return Compiled(expression, lambda ctx: bool(_defined(compiled(**ctx))))


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


def guard_source(expression: str) -> str:
    """A guard as template source, so guards and templates are analysed alike."""
    return "{{ " + expression + " }}"


def syntax_error(source: str) -> TemplateSyntaxError | None:
    try:
        environment().parse(source)
    except TemplateSyntaxError as exc:
        return exc
    return None


def references(source: str) -> set[tuple[str, ...]]:
    """Names a template reads from its context, with the constant attribute path after each:
    ``{{ vars.callee }}`` -> {("vars", "callee")}; ``{{ event.call == 'x' }}`` -> {("event", "call")}.
    Names bound inside the template (``{% set %}``, loop variables) are not reported."""
    tree = environment().parse(source)
    bound = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    found: set[tuple[str, ...]] = set()
    _collect(tree, bound, found)
    return found


def _collect(node: nodes.Node, bound: set[str], found: set[tuple[str, ...]]) -> None:
    path = _path(node)
    if path is not None and path[0] not in bound:
        found.add(path)
        if isinstance(node, nodes.Getitem):
            _collect(node.arg, bound, found)
        return
    for child in node.iter_child_nodes():
        _collect(child, bound, found)


def _path(node: nodes.Node) -> tuple[str, ...] | None:
    """``a.b['c']`` -> ("a", "b", "c"); None if ``node`` is not a load of a name or a constant path."""
    if isinstance(node, nodes.Name) and node.ctx == "load":
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        base = _path(node.node)
        return None if base is None else (*base, node.attr)
    if isinstance(node, nodes.Getitem):
        base = _path(node.node)
        if base is None:
            return None
        if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            return (*base, node.arg.value)
        return base
    return None


@dataclass(frozen=True, slots=True)
class Analysis:
    """What a template reads (``references``), or why it does not parse."""

    references: frozenset[tuple[str, ...]]
    tree: nodes.Template | None
    error: TemplateSyntaxError | None


@lru_cache(maxsize=4096)
def analyse(source: str) -> Analysis:
    """Parse ``source`` once (cached: flows repeat templates) for the validator's rules."""
    try:
        tree = environment().parse(source)
    except TemplateSyntaxError as exc:
        return Analysis(frozenset(), None, exc)
    bound = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    found: set[tuple[str, ...]] = set()
    _collect(tree, bound, found)
    return Analysis(frozenset(found), tree, None)
