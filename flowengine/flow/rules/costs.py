"""[expression-budget] Expressions that always go over the run-time budget (``flow.costs``), seen in
the source: a constant power, repetition, concatenation or ``%`` format whose result is too big, a
filter or method with constant arguments that would make too much (``center(10**9)``), a constant
``range`` longer than a render may iterate, and nested loops over constants whose iterations multiply
past the operation budget.

Constant sub-expressions are evaluated with the run-time checks themselves, so ``validate`` and the
sandbox refuse the same things and nothing big is ever computed here; a value read from the context is
unknown and ends the analysis of whatever holds it. A finding points at its operator, filter, method,
``range`` or ``for``: the lexer's tokens say which occurrence of that text in the template it is.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import nodes

from flowengine.errors import ExpressionBudgetError
from flowengine.flow import costs
from flowengine.flow.costs import MAX_OPS
from flowengine.flow.diagnostics import Diagnostic
from flowengine.flow.expressions import environment, has_template
from flowengine.flow.rules.context import Rule, RuleContext
from flowengine.flow.rules.expressions import analysed
from flowengine.flow.template_analysis import analyse

RULE = "expression-budget"
_UNKNOWN: Any = object()
# An operator, a call, a filter or a statement: a loop is a statement, so the "%" of its "{%" is enough
# (a "for" in plain text, as in "Step 3 for {{ session.id }}", made every such template be walked).
_MAY_COST = re.compile(r"[*+%~(|]")
_OPERATORS: dict[type[nodes.Node], tuple[str, Callable[[Any, Any], Any]]] = {
    nodes.Add: ("+", costs.add), nodes.Mul: ("*", costs.multiply), nodes.Pow: ("**", costs.power),
    nodes.Mod: ("%", costs.modulo), nodes.Sub: ("-", operator.sub), nodes.Div: ("/", operator.truediv),
    nodes.FloorDiv: ("//", operator.floordiv),
}


@dataclass(frozen=True, slots=True)
class Finding:
    needle: str  # the text the position points at
    skip: int  # occurrences of that text before it in the template
    message: str


def over_budget(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[expression-budget] constant work that the run-time budget will always refuse."""
    for template, source, _ in ctx.shared(analysed):
        if template.guard and has_template(template.text):
            continue  # reported by "expression"
        for finding in findings(source):
            pos = ctx.source_map.find(template.path, finding.needle, finding.skip)
            yield ctx.at(pos, finding.message, RULE)


@lru_cache(maxsize=4096)
def findings(source: str) -> tuple[Finding, ...]:
    if not _MAY_COST.search(source):
        return ()  # no operator, call or loop: nothing to grow (most templates read a value or two)
    tree = analyse(source).tree
    if tree is None:
        return ()
    static = _Static()
    for node in tree.find_all(nodes.Expr):
        static.value(node)
    static.loops(tree, 1)
    return tuple(_place(source, tree, node, needle, message) for node, needle, message in static.problems)


class _Static:
    """Constant values of a template's expressions (``_UNKNOWN`` where not constant), and the problems
    met computing them: (node, the token it is written with, message)."""

    def __init__(self) -> None:
        self.memo: dict[int, Any] = {}
        self.problems: list[tuple[nodes.Node, str, str]] = []

    def value(self, node: nodes.Node) -> Any:
        key = id(node)
        if key not in self.memo:
            self.memo[key] = self._value(node)
        return self.memo[key]

    def _value(self, node: nodes.Node) -> Any:
        if isinstance(node, nodes.Const):
            return node.value
        if isinstance(node, nodes.List | nodes.Tuple):
            items = [self.value(item) for item in node.items]
            known = all(item is not _UNKNOWN for item in items)
            return (items if isinstance(node, nodes.List) else tuple(items)) if known else _UNKNOWN
        if isinstance(node, nodes.Neg | nodes.Pos):
            operand = self.value(node.node)
            sign = operator.neg if isinstance(node, nodes.Neg) else operator.pos
            return _UNKNOWN if operand is _UNKNOWN else self._try(node, node.operator, lambda: sign(operand))
        if type(node) in _OPERATORS:
            assert isinstance(node, nodes.BinExpr)
            token, apply = _OPERATORS[type(node)]
            left, right = self.value(node.left), self.value(node.right)
            if left is _UNKNOWN or right is _UNKNOWN:
                return _UNKNOWN
            return self._try(node, token, lambda: apply(left, right))
        if isinstance(node, nodes.Concat):
            parts = [self.value(part) for part in node.nodes]
            if any(part is _UNKNOWN for part in parts):
                return _UNKNOWN
            return self._try(node, "~", lambda: _concat(parts))
        if isinstance(node, nodes.Filter):
            return self._filter(node)
        if isinstance(node, nodes.Call):
            return self._call(node)
        return _UNKNOWN

    def _try(self, node: nodes.Node, token: str, compute: Callable[[], Any]) -> Any:
        try:
            return compute()
        except ExpressionBudgetError as exc:
            self.problems.append((node, token, f"always {exc}"))
        except Exception:  # a type error or the like: the run time reports it, not this rule
            pass
        return _UNKNOWN

    def _arguments(self, node: nodes.Filter | nodes.Call) -> tuple[list[Any], dict[str, Any]] | None:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            return None
        args = [self.value(arg) for arg in node.args]
        kwargs = {str(kw.key): self.value(kw.value) for kw in node.kwargs}
        if any(v is _UNKNOWN for v in (*args, *kwargs.values())):
            return None
        return args, kwargs

    def _filter(self, node: nodes.Filter) -> Any:
        check = costs.FILTER_CHECKS.get(node.name)
        base = self.value(node.node) if node.node is not None else _UNKNOWN
        if base is _UNKNOWN:
            base = ""  # every check's bound grows with the value: an empty one gives the least it can be
        arguments = self._arguments(node)
        if check is not None and arguments is not None:
            args, kwargs = arguments
            self._try(node, node.name, lambda: check(base, *args, **kwargs))
        return _UNKNOWN  # a filter's result is left to the run time

    def _call(self, node: nodes.Call) -> Any:
        arguments = self._arguments(node)
        if arguments is None:
            return _UNKNOWN
        args, kwargs = arguments
        func = node.node
        if isinstance(func, nodes.Name) and func.name == "range" and not kwargs:
            return self._try(func, "range", lambda: _range(args))
        if isinstance(func, nodes.Getattr):
            owner = self.value(func.node)
            if func.attr == "format" and isinstance(owner, str):
                self._try(func, func.attr, lambda: costs.check_format(owner, args, kwargs))
            elif (check := costs.method_check(owner, func.attr)) is not None:
                self._try(func, func.attr, lambda: check(owner, *args, **kwargs))
        return _UNKNOWN

    def loops(self, node: nodes.Node, multiplier: int) -> None:
        """Nested ``for`` loops over constants: their iterations multiply."""
        for child in node.iter_child_nodes():
            if not isinstance(child, nodes.For):
                self.loops(child, multiplier)
                continue
            items = self.value(child.iter)
            count = len(items) if isinstance(items, range | list | tuple | str) else None
            if count is None or count > MAX_OPS:  # unknown, or its range is reported already
                self.loops(child, multiplier)
            elif multiplier * count > MAX_OPS:
                self.problems.append((child, "for", (
                    f"always over the expression budget: nested loops of {multiplier * count:,} iterations "
                    f"(at most {MAX_OPS:,} operations a render)")))
            else:
                self.loops(child, multiplier * count)


def _concat(parts: list[Any]) -> str:
    costs.limit_chars(sum(len(p) if isinstance(p, str) else costs.measure(p).text for p in parts))
    return "".join(map(str, parts))


def _range(args: list[Any]) -> range:
    items = range(*args)
    try:
        count = len(items)
    except OverflowError:
        count = MAX_OPS + 1
    if count > MAX_OPS:
        raise costs.over(f"a range of {count:,} items (at most {MAX_OPS:,} operations a render)")
    return items


# -- positions --------------------------------------------------------------------------------------------
def _place(source: str, tree: nodes.Template, target: nodes.Node, needle: str, message: str) -> Finding:
    """Which occurrence of ``needle`` in ``source`` writes ``target``: its rank among the nodes written
    with that token (in text order) picks the token, and the text before the token counts the skip."""
    rank = [node for node, token in _in_text_order(tree) if token == needle].index(target)
    tokens = list(environment().lex(source))
    matching = [i for i, (_line, kind, value) in enumerate(tokens) if value == needle and kind in _WRITTEN]
    if rank >= len(matching):
        return Finding(needle, 0, message)
    return Finding(needle, sum(value.count(needle) for _l, _k, value in tokens[:matching[rank]]), message)


_WRITTEN = ("name", "operator")


def _in_text_order(node: nodes.Node) -> Iterator[tuple[nodes.Node, str]]:
    """(node, the name or operator token it is written with), in the order they appear in the text."""
    if isinstance(node, nodes.BinExpr):
        yield from _in_text_order(node.left)
        yield node, node.operator
        yield from _in_text_order(node.right)
        return
    if isinstance(node, nodes.Concat):
        for index, part in enumerate(node.nodes):
            if index:
                yield node, "~"
            yield from _in_text_order(part)
        return
    if isinstance(node, nodes.CondExpr):  # written ``expr1 if test else expr2``
        for written in (node.expr1, node.test, node.expr2):
            if written is not None:
                yield from _in_text_order(written)
        return
    if isinstance(node, nodes.Filter | nodes.Test | nodes.Getattr) and node.node is not None:
        yield from _in_text_order(node.node)
        yield node, node.attr if isinstance(node, nodes.Getattr) else node.name
        for child in node.iter_child_nodes(exclude=("node",)):
            yield from _in_text_order(child)
        return
    own = _own_token(node)
    if own is not None:
        yield node, own
    for child in node.iter_child_nodes():
        yield from _in_text_order(child)


def _own_token(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Keyword):
        return node.key
    if isinstance(node, nodes.For):
        return "for"
    if isinstance(node, nodes.UnaryExpr):
        return node.operator
    if isinstance(node, nodes.Filter | nodes.Test):
        return node.name
    return None


RULES: tuple[Rule, ...] = (over_budget,)
