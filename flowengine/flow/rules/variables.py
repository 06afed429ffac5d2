"""Rules about variables read before any path sets them.

``vars.count`` that nothing declares is the ``expression`` rule's. This one is about order: a variable
set only by a later state, or ``set: {count: "{{ vars.count + 1 }}"}`` with no first value under
``vars``, fails at run time with an undefined name. A may-analysis (``dataflow``): reported only where
no path at all has set the variable; a read under ``default(...)`` or ``is defined`` is left alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache

from jinja2 import nodes

from flowengine.flow.diagnostics import Diagnostic, quote
from flowengine.flow.model import Action
from flowengine.flow.rules.context import Rule, RuleContext
from flowengine.flow.rules.dataflow import Facts, before, may_hold, states_running
from flowengine.flow.rules.sites import ActionSite, Template, TransitionSite, templates
from flowengine.flow.template_analysis import analyse, guard_source
from flowengine.flow.vocabulary import ACTIONS

_TOLERANT_FILTERS = frozenset({"default", "d"})
_TOLERANT_TESTS = frozenset({"defined", "undefined"})


def set_by(actions: tuple[Action, ...]) -> set[str]:
    """The variables these actions set: ``set`` keys and ``as:`` results (``http``, ``conference_info``)."""
    found: set[str] = set()
    for action in actions:
        spec = ACTIONS.get(action.name)
        if action.name == "set" and isinstance(action.params.get("vars"), Mapping):
            found.update(action.params["vars"])
        binder = spec.param("as") if spec else None
        if binder is not None and binder.kind == "new_var" and isinstance(action.params.get("as"), str):
            found.add(action.params["as"])
    return found


def variable_flow(ctx: RuleContext) -> Facts:
    """Only the variables that have no first value under ``vars`` are followed: the others always hold."""
    late = _late(ctx)
    return may_hold(ctx, lambda actions: set_by(actions) & late, set())


def _late(ctx: RuleContext) -> set[str]:
    return set(ctx.shared(_first_setter)) - set(ctx.flow.vars)


def _first_setter(ctx: RuleContext) -> dict[str, ActionSite]:
    found: dict[str, ActionSite] = {}
    for site in ctx.actions:
        for name in sorted(set_by((site.action,))):
            found.setdefault(name, site)
    return found


def unset_variables(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[unset-variable] a variable is read only where some path may already have set it."""
    if not ctx.graph_known or not _late(ctx):
        return  # every variable set anywhere has a first value: nothing can be read too early
    facts = ctx.shared(variable_flow)
    setters = ctx.shared(_first_setter)
    for site in ctx.actions:
        running = states_running(ctx, site)
        available = [before(ctx, facts, site, state) for state in running]
        for template in templates([site], [], ctx.doc):
            yield from _check(ctx, template, facts, available, setters, site)
    for tsite in ctx.transitions:
        running = _guard_states(ctx, tsite)
        available = [facts.inside.get(state, 0) for state in running]
        for template in templates([], [tsite], ctx.doc):
            yield from _check(ctx, template, facts, available, setters)


def _guard_states(ctx: RuleContext, tsite: TransitionSite) -> list[str]:
    if tsite.state is not None:
        return [tsite.state] if tsite.state in ctx.reachable else []
    return [name for name in ctx.reachable
            if not ctx.flow.states[name].final and tsite.event not in ctx.flow.states[name].on]


def _check(
    ctx: RuleContext, template: Template, facts: Facts, available: list[int],
    setters: Mapping[str, ActionSite], site: ActionSite | None = None,
) -> Iterator[Diagnostic]:
    if not available:
        return  # runs nowhere reachable: the graph rules say so
    source = guard_source(template.text) if template.guard else template.text
    for name in sorted(strict_reads(source) & setters.keys() - ctx.flow.vars.keys()):
        setter = setters[name]  # (never set at all: the expression rule reports it)
        if any(facts.holds(names, name) for names in available):
            continue
        where = f"state {quote(setter.state)}" if setter.state else "a flow-level handler"
        what = "by the very action that first sets it" if setter is site else \
            f"before any path sets it (it is set in {where})"
        yield ctx.at(
            ctx.source_map.find(template.path, f"vars.{name}"),
            f'variable "vars.{name}" is read {what}: give it a first value under "vars", or read it as '
            f'"vars.{name} | default(...)"',
            "unset-variable",
        )


@lru_cache(maxsize=4096)
def strict_reads(source: str) -> frozenset[str]:
    """``vars.x`` read where an undefined value fails (not under ``default`` or ``is defined``)."""
    analysis = analyse(source)
    if analysis.tree is None:
        return frozenset()
    reads = {ref[1] for ref in analysis.references if ref[0] == "vars" and len(ref) > 1}
    tolerant: set[str] = set()
    for node in analysis.tree.find_all((nodes.Filter, nodes.Test)):
        names = _TOLERANT_FILTERS if isinstance(node, nodes.Filter) else _TOLERANT_TESTS
        if node.name in names and node.node is not None:
            tolerant |= _vars_in(node.node)
    return frozenset(reads - tolerant)


def _vars_in(node: nodes.Node) -> set[str]:
    """The ``vars.x`` (or ``vars['x']``) names read in ``node``, itself included."""
    found: set[str] = set()
    for item in (node, *node.find_all((nodes.Getattr, nodes.Getitem))):
        if not (isinstance(item, nodes.Getattr | nodes.Getitem) and isinstance(item.node, nodes.Name)):
            continue
        if item.node.name != "vars":
            continue
        if isinstance(item, nodes.Getattr):
            found.add(item.attr)
        elif isinstance(item.arg, nodes.Const) and isinstance(item.arg.value, str):
            found.add(item.arg.value)
    return found


RULES: tuple[Rule, ...] = (unset_variables,)
