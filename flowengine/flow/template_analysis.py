"""What a template reads, for the validator's rules: the names and constant paths it takes from its
context, the filters and tests it names, and why it does not parse or compile.

Analysis never renders: it parses (cached by source, since flows repeat templates), or for text that only
reads values (most templates) skips Jinja2's parser altogether (``plain_templates``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from jinja2 import TemplateSyntaxError, nodes

from flowengine.flow.expressions import parsing
from flowengine.flow.plain_templates import plain_tree
from flowengine.flow.sandbox import check_nesting, environment


def guard_source(expression: str) -> str:
    """A guard as template source, so guards and templates are analysed alike."""
    return "{{ " + expression + " }}"


def references(source: str) -> set[tuple[str, ...]]:
    """Names a template reads from its context, with the constant attribute path after each:
    ``{{ vars.callee }}`` -> {("vars", "callee")}; ``{{ event.call == 'x' }}`` -> {("event", "call")}.
    Names bound inside the template (``{% set %}``, loop variables) are not reported."""
    return set(analyse(source).references)


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
    """What a template reads (``references``), the filters and tests it names, or why it does not parse."""

    references: frozenset[tuple[str, ...]]
    tree: nodes.Template | None
    error: TemplateSyntaxError | None
    filters: tuple[str, ...] = ()  # in source order, repeats kept (a message points at each)
    tests: tuple[str, ...] = ()


@lru_cache(maxsize=4096)
def analyse(source: str) -> Analysis:
    """Parse ``source`` once (cached: flows repeat templates) for the validator's rules; text reading
    values only (most templates) without Jinja2's parser, and so without filters, tests or errors."""
    plain = plain_tree(source, environment())
    if plain is not None:
        return Analysis(frozenset(plain[1]), plain[0], None)
    return parsed_analysis(source)


def parsed_analysis(source: str) -> Analysis:
    """``analyse`` by Jinja2's parser, whatever the template."""
    try:
        tree = parsing(lambda: environment().parse(source))
        check_nesting(tree)
    except TemplateSyntaxError as exc:
        return Analysis(frozenset(), None, exc)
    bound = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    found: set[tuple[str, ...]] = set()
    _collect(tree, bound, found)
    filters = _named(tree, nodes.Filter)
    tests = _named(tree, nodes.Test)
    error = None if unknown_filters(filters) or unknown_tests(tests) else _compile_error(source, tree)
    return Analysis(frozenset(found), tree, error, filters, tests)


def _named(tree: nodes.Template, kind: type[nodes.Filter] | type[nodes.Test]) -> tuple[str, ...]:
    """The distinct filter (or test) names in ``tree``."""
    return tuple(sorted({node.name for node in tree.find_all(kind)}))


@lru_cache(maxsize=1)
def usable_filters() -> frozenset[str]:
    """The filters a flow may name: the sandbox's own, less its internal ones (``_budget_...``)."""
    return frozenset(name for name in environment().filters if not name.startswith("_"))


@lru_cache(maxsize=1)
def usable_tests() -> frozenset[str]:
    return frozenset(environment().tests)


def unknown_filters(names: tuple[str, ...]) -> tuple[str, ...]:
    usable = usable_filters()
    return tuple(name for name in names if name not in usable)


def unknown_tests(names: tuple[str, ...]) -> tuple[str, ...]:
    usable = usable_tests()
    return tuple(name for name in names if name not in usable)


def _compile_error(source: str, tree: nodes.Template) -> TemplateSyntaxError | None:
    """What Jinja2's compiler alone refuses in statements (a block twice, ``loop`` assigned, a macro's
    ``caller``): compiled here, once per source, so ``validate`` refuses what the runtime would. Lone
    expressions, the usual case, can fail only on filter and test names, checked above."""
    if "{%" not in source:
        return None
    try:
        environment().compile(source)
    except TemplateSyntaxError as exc:  # TemplateAssertionError is one
        return exc
    return None
