"""The Jinja2 sandbox flows run in: ``ImmutableSandboxedEnvironment`` with a budget on every render.

Jinja2's sandbox stops escapes (no ``_`` attributes, no mutating methods) but not work: a loop, a power
or a repetition could hold the event loop for seconds. Here every render runs under a ``Budget``:

- the operators that can grow a value (``+ * ** %``) are intercepted and checked (``flow.costs``);
- every call, filter and loop iteration is charged one operation plus the data it reads; a render may
  spend ``MAX_OPS`` of them, make ``MAX_PRODUCED`` characters and items in all, and use
  ``MAX_SECONDS`` of CPU time (looked at every few operations; collecting garbage is not counted);
- calls and filters that can make more than they are given (``center``, ``replace``, ``join``,
  ``format``...) are checked before they run, and what any of them returns is measured;
- list, tuple and dict literals are measured as they are made, so ``[a, a]`` cannot double a value
  out of reach; a template's output is measured piece by piece and capped at ``MAX_CHARS``.

Loops, literals and ``~`` have no hook in Jinja2, so the compiled tree is rewritten (``_Instrument``) to
pass them through internal filters. Nothing is evaluated while compiling: the optimizer (constant
folding) is off, and the output finalizer takes the evaluation context, which keeps Jinja2 from
folding constant output too. A template nested more than ``MAX_NESTING`` deep is refused as a syntax
error rather than left to overflow the compiler's stack.
"""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from functools import lru_cache, update_wrapper, wraps
from typing import Any, TypeVar

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes, pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, LoopContext, Macro, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer

from flowengine.flow import costs
from flowengine.flow.costs import MAX_OPS, MAX_PRODUCED, MAX_SECONDS, limit_chars, measure, over

T = TypeVar("T")
MAX_NESTING = 40  # nodes within nodes in one template; far deeper than any flow needs
CLOCK_EVERY = 8  # operations between two looks at the CPU clock
MACRO_CALL_OPS = 5  # a macro call costs Jinja2 about five times what an operation does
_LOOP, _CONCAT, _VALUE = "_budget_loop", "_budget_concat", "_budget_value"
_READS = "what a filter reads"


class Budget:
    """What one render has spent so far. The clock is read every ``CLOCK_EVERY`` operations: reading
    it costs as much as a cheap operation, and an operation's work is bounded by the size budgets.

    The CPU clock (``thread_time``, a system call here: ~0.7 µs, against 0.06 µs for ``monotonic``,
    which the vDSO serves) is first read at the first check, not when the render starts: most renders
    (a variable, a static text) never reach ``CLOCK_EVERY`` operations and so never pay for it. The
    limit keeps its meaning: the work before the first check is at most ``CLOCK_EVERY`` operations,
    each bounded by the size budgets -- the same bound as the work between two checks, which the limit
    already allows past the deadline -- so a render is stopped at most two check intervals past
    ``MAX_SECONDS`` of its CPU time instead of one. A cheaper clock would not do: ``monotonic`` counts
    the time other threads and processes hold the core, so on a busy machine it would stop renders that
    did little work."""

    __slots__ = ("clock_at", "deadline", "gc_started", "ops", "produced")

    def __init__(self) -> None:
        self.ops = 0
        self.produced = 0
        self.clock_at = CLOCK_EVERY
        self.deadline = 0.0  # 0.0 until the first check reads the clock
        self.gc_started = 0.0

    def charge(self, ops: int, produced: int = 0) -> None:
        self.ops += ops
        self.produced += produced
        if self.ops > MAX_OPS:
            raise over(f"more than {MAX_OPS:,} operations (loop iterations, calls, filters, data read)")
        if self.produced > MAX_PRODUCED:
            raise over(f"more than {MAX_PRODUCED:,} characters and items made in all")
        if self.ops >= self.clock_at:
            self.clock_at = self.ops + CLOCK_EVERY
            if not self.deadline:
                self.deadline = time.thread_time() + MAX_SECONDS
            elif time.thread_time() > self.deadline:
                raise over(f"more than {MAX_SECONDS * 1000:g} ms of work")


_CURRENT: ContextVar[Budget | None] = ContextVar("flowengine_expression_budget", default=None)


def _on_gc(phase: str, _info: Mapping[str, Any]) -> None:
    """A collection pauses whatever runs: a render it interrupts is not charged for it."""
    budget = _CURRENT.get()
    if budget is None or not budget.deadline:  # before the clock's first reading nothing is charged
        return
    if phase == "start":
        budget.gc_started = time.thread_time()
    elif budget.gc_started:  # a collection that started before the clock's first reading is not charged
        budget.deadline += time.thread_time() - budget.gc_started
        budget.gc_started = 0.0


gc.callbacks.append(_on_gc)


def budgeted(render: Callable[[], T]) -> T:
    """Run ``render`` (one evaluation through Jinja2) under a fresh budget."""
    token = _CURRENT.set(Budget())
    try:
        return render()
    finally:
        _CURRENT.reset(token)


def charge(ops: int, produced: int = 0) -> None:
    budget = _CURRENT.get()
    if budget is not None:  # outside ``budgeted`` (analysis, tests of Jinja itself) only sizes are checked
        budget.charge(ops, produced)


def check_result(value: Any) -> Any:
    """Measure what a call or filter made (refusing it when too big) and charge for it."""
    if not isinstance(value, Iterator):  # a generator is measured where its items are used
        measure(value)
    budget = _CURRENT.get()
    if budget is not None:
        budget.charge(0, costs.shallow(value))
    return value


class BudgetedEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, optimized=False, finalize=_finalize)
        self.binop_table.update({"+": costs.add, "*": costs.multiply, "**": costs.power, "%": costs.modulo})
        del self.globals["lipsum"]  # lorem ipsum of any length: nothing a call flow needs
        self.filters = {name: _guarded(name, f) for name, f in self.filters.items()}
        self.filters.update({_LOOP: _loop_items, _CONCAT: _concat, _VALUE: _literal})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        result = self.binop_table[operator](left, right)
        made = costs.shallow(result)
        charge(1 + (made if isinstance(result, list | tuple) else 0), made)  # a list is copied item by item
        return result

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if not __self.is_safe_callable(__obj):
            raise SecurityError(f"{__obj!r} is not safely callable")
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if name == "join" and args and isinstance(owner, str | bytes):
            args = (_materialize(args[0]), *args[1:])
        reads = measure(args, kwargs, what="what a call reads").ops() if args or kwargs else 0
        charge(1 + reads + _owner_ops(owner) + (MACRO_CALL_OPS if isinstance(__obj, Macro) else 0))
        check = costs.method_check(owner, name)
        if check is not None:
            costs.run_check(check, owner, *args, **kwargs)
        if isinstance(__obj, LoopContext) and args:  # ``loop(children)`` in a recursive loop
            args = (_loop_items(args[0]), *args[1:])
        return check_result(__context.call(__obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template: str = value.__self__
        is_map = value.__name__ == "format_map"

        def checked(*args: Any, **kwargs: Any) -> str:
            if is_map and len(args) == 1 and isinstance(args[0], Mapping):
                costs.check_format(template, (), args[0])
            else:
                costs.check_format(template, args, kwargs)
            return wrapped(*args, **kwargs)

        return update_wrapper(checked, value)

    def _generate(
        self, source: nodes.Template, name: str | None, filename: str | None, defer_init: bool = False
    ) -> str:
        check_nesting(source)
        instrumented = _Instrument(self).visit(source)
        return super()._generate(instrumented, name, filename, defer_init)


def _owner_ops(owner: Any) -> int:
    """What a method may read of its object: a string's characters (at C speed), a collection's items
    (``index``, ``count``, ``copy``; not walked: what they hold was measured when it was made)."""
    if isinstance(owner, str | bytes):
        return len(owner) // costs.CHARS_PER_OP
    if isinstance(owner, list | tuple | dict):
        return len(owner)
    return 0


@lru_cache(maxsize=1)
def environment() -> BudgetedEnvironment:
    return BudgetedEnvironment()


@pass_eval_context
def _finalize(_eval_ctx: EvalContext, value: Any) -> Any:
    """Each ``{{ … }}`` of a template's output, before it is written out: what it writes is charged."""
    budget = _CURRENT.get()
    if budget is not None:
        budget.produced += len(value) if type(value) is str else measure(value).text
        if budget.produced > MAX_PRODUCED:
            budget.charge(0)  # refuses, saying why
    return value


def _guarded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` (a Jinja2 filter) charged for what it reads, checked, and its result measured."""
    skip = 0 if _PassArg.from_obj(func) is None else 1  # the context Jinja2 passes first
    per_op = 1 if name in costs.ITERATING_FILTERS else costs.CHARS_PER_OP
    per_op = costs.SLOW_CHARS_PER_OP if name in costs.SLOW_FILTERS else per_op
    check = costs.FILTER_CHECKS.get(name)
    if name in costs.CHEAP_FILTERS:
        return _cheap(func)

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if name == "join" and len(args) > skip:
            args = (*args[:skip], _materialize(args[skip]), *args[skip + 1:])
        reads = measure(args[skip], what=_READS) if len(args) == skip + 1 and not kwargs else \
            measure(args[skip:], kwargs, what=_READS)
        charge(1 + reads.ops(per_op))
        if check is not None:
            costs.run_check(check, *args[skip:], **kwargs)
        return check_result(func(*args, **kwargs))

    return guarded


def _cheap(func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that looks at a value without going through it (``length``, ``default``...): one
    operation, whatever the value holds."""

    @wraps(func)
    def cheap(*args: Any, **kwargs: Any) -> Any:
        charge(1)
        return func(*args, **kwargs)

    return cheap


def _materialize(items: Any) -> Any:
    """An iterator as a list (at most ``MAX_ITEMS``, each charged), so what consumes it can be sized."""
    if not isinstance(items, Iterator):
        return items
    listed = list(itertools.islice(items, costs.MAX_ITEMS + 1))
    costs.limit_items(len(listed))
    charge(len(listed))
    return listed


def _loop_items(iterable: Any, static: int = 0) -> Any:
    """A ``for`` loop's items, each iteration charged (with the text its body writes out)."""
    budget = _CURRENT.get()
    if budget is None:
        return iterable
    return _counted(iterable, budget, static)


def _counted(iterable: Iterable[Any], budget: Budget, static: int) -> Iterator[Any]:
    for item in iterable:
        budget.charge(1, static)
        yield item


@pass_eval_context
def _concat(eval_ctx: EvalContext, parts: list[Any]) -> str:
    """``a ~ b``: Jinja2's own join, once the pieces' written length is known to fit."""
    limit_chars(sum(len(p) if isinstance(p, str) else measure(p).text for p in parts))
    result: str = markup_join(parts) if eval_ctx.autoescape else str_join(parts)
    charge(1, len(result))
    return result


def _literal(value: Any) -> Any:
    """A list, tuple or dict written in a template, measured (and charged for) as it is made."""
    charge(1 + measure(value).items)
    return value


class _Instrument(NodeTransformer):
    """Route loops, ``~`` and literals holding variables through the internal filters above."""

    def __init__(self, environment: BudgetedEnvironment) -> None:
        self.environment = environment

    def visit_For(self, node: nodes.For) -> nodes.Node:
        static = sum(len(d.data) for child in node.body for d in child.find_all(nodes.TemplateData))
        self.generic_visit(node)
        node.iter = self._filter(node.iter, _LOOP, nodes.Const(static))
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._filter(nodes.List(node.nodes, lineno=node.lineno), _CONCAT)

    def visit_List(self, node: nodes.List) -> nodes.Node:
        return self._literal(node, node.items)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        return self._literal(node, node.items) if node.ctx == "load" else self.generic_visit(node)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        return self._literal(node, [part for pair in node.items for part in (pair.key, pair.value)])

    def _literal(self, node: nodes.Expr, parts: list[nodes.Expr]) -> nodes.Node:
        self.generic_visit(node)
        if all(isinstance(part, nodes.Const) for part in parts):
            return node  # its size is the source's
        return self._filter(node, _VALUE)

    def _filter(self, node: nodes.Node, name: str, *args: nodes.Expr) -> nodes.Filter:
        wrapped = nodes.Filter(node, name, list(args), [], None, None, lineno=node.lineno)
        wrapped.set_environment(self.environment)
        return wrapped


def check_nesting(tree: nodes.Node) -> None:
    """Refuse a tree nested deeper than ``MAX_NESTING`` (walked without recursion)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise TemplateSyntaxError(f"nested more than {MAX_NESTING} levels deep", node.lineno or 1)
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
