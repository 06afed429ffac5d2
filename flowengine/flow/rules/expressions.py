"""Rules about templates (``{{ … }}`` in action parameters) and guards (``when``, an action's ``if``).

Every template is parsed once (``expressions.analyse`` caches by source) and checked for syntax, for
names that do not exist at run time (only ``vars``, ``session``, ``event``, the roles and Jinja2's own
globals do), for ``vars.x`` that no ``vars`` entry, ``set`` or ``as:`` declares, for ``event.x`` that no
event carries, and for string literals compared with ``event.reason``/``call``/``name`` that can never
match.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

from jinja2 import nodes

from flowengine.errors import ERROR_KINDS
from flowengine.flow.diagnostics import Diagnostic, alternatives, did_you_mean, quote, quoted_list
from flowengine.flow.expressions import analyse, environment, guard_source, has_template
from flowengine.flow.rules.context import Rule, RuleContext
from flowengine.flow.rules.roles import role_kinds
from flowengine.flow.rules.sites import Template
from flowengine.flow.vocabulary import (
    ACTIONS,
    EVENT_FIELDS,
    EVENTS,
    EXPRESSION_GLOBALS,
    REASONS,
    ROLE_FIELDS,
    SESSION_FIELDS,
)

_JINJA_NAMES = frozenset(environment().globals) | {"loop"}


@dataclass(frozen=True, slots=True)
class Names:
    """What expressions may read in this flow."""

    roles: Mapping[str, str]  # role -> "call" | "conference"
    variables: set[str]  # declared in ``vars``, set by ``set``, or bound by ``as:`` (conference_info, http)
    top: set[str]  # every top-level name that exists at run time
    events: frozenset[str] = frozenset()  # the flow's custom events (``events``)


def names(ctx: RuleContext) -> Names:
    roles = {name: kind for name, (kind, _) in ctx.shared(role_kinds).items()}
    top = {*EXPRESSION_GLOBALS, *roles, *_JINJA_NAMES}
    return Names(roles, _variables(ctx), top, frozenset(ctx.flow.events))


def _variables(ctx: RuleContext) -> set[str]:
    declared = set(ctx.flow.vars)
    for site in ctx.actions:
        params = site.action.params
        spec = ACTIONS.get(site.action.name)
        binder = spec.param("as") if spec else None
        if site.action.name == "set" and isinstance(params.get("vars"), Mapping):
            declared.update(params["vars"])
        elif binder is not None and binder.kind == "new_var" and isinstance(params.get("as"), str):
            declared.add(params["as"])
    return declared


def bad_syntax(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[expression] templates and guards parse; a guard is a bare expression."""
    for template in ctx.templates:
        key = quote(str(template.path[-1]))
        if template.guard and has_template(template.text):
            yield ctx.at_value(
                template.path,
                f"write {key} as a bare expression, without {{{{ }}}}: for example event.call == 'callee'",
                "expression",
            )
            continue
        error = analyse(_source(template)).error
        if error is not None:
            what = f"{key} expression" if template.guard else "template"
            yield ctx.at_value(
                template.path, f"invalid {what}: {_lower(error.message or 'syntax error')}", "expression"
            )


def _source(template: Template) -> str:
    return guard_source(template.text) if template.guard else template.text


def undefined_names(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[expression] only names that exist at run time are read."""
    known = ctx.shared(names)
    for template in ctx.templates:
        if template.guard and has_template(template.text):
            continue
        for ref in sorted(analyse(_source(template)).references):
            problem = _check_reference(ref, known)
            if problem is not None:
                needle = ".".join(ref[:2]) if len(ref) > 1 else ref[0]
                pos = ctx.source_map.find(template.path, needle)
                yield ctx.at(pos, problem, "expression")


def _check_reference(ref: tuple[str, ...], names: Names) -> str | None:
    head = ref[0]
    if head == "vars" and len(ref) > 1 and ref[1] not in names.variables:
        close = did_you_mean(ref[1], names.variables, prefix="vars.")
        return (
            f'undefined variable "vars.{ref[1]}"{close} (declare it under "vars", or bind it with "set" or '
            '"as:")'
        )
    if head == "event" and len(ref) > 1 and ref[1] not in EVENT_FIELDS:
        return f'unknown event field "event.{ref[1]}"{_field_hint(ref[1], EVENT_FIELDS, "event.")}'
    if head == "session" and len(ref) > 1 and ref[1] not in SESSION_FIELDS:
        return f'unknown session field "session.{ref[1]}"{_field_hint(ref[1], SESSION_FIELDS, "session.")}'
    if head in names.roles and len(ref) > 1 and ref[1] not in ROLE_FIELDS:
        fields = quoted_list(f"{head}.{field}" for field in ROLE_FIELDS)
        return f"unknown field {quote('.'.join(ref[:2]))}: a role has only {fields}"
    if head in names.top:
        return None
    if head in names.variables:
        hint = f'; did you mean "vars.{head}"?'
    elif head in EVENT_FIELDS:
        hint = f'; did you mean "event.{head}"?'
    else:
        hint = did_you_mean(head, names.top)
    return f"undefined name {quote(head)}{hint} (templates read vars, session, event and the roles)"


def _field_hint(name: str, fields: tuple[str, ...], prefix: str) -> str:
    return did_you_mean(name, fields, prefix) or f"; expected {quoted_list(prefix + f for f in fields)}"


def impossible_comparisons(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[expression] ``event.reason == 'noanswer'`` can never be true: the value is not in the vocabulary."""
    known = ctx.shared(names)
    for template in ctx.templates:
        for field, literal in compared_literals(_source(template)):
            problem = _check_literal(field, literal, known)
            if problem is not None:
                yield ctx.at(ctx.source_map.find(template.path, literal), problem, "expression")


def _check_literal(field: str, literal: str, names: Names) -> str | None:
    if field == "data.kind" and literal not in ERROR_KINDS:
        return f"unknown error kind {quote(literal)}{alternatives(literal, ERROR_KINDS)}"
    if field == "reason" and literal not in REASONS:
        return f"unknown reason {quote(literal)}{alternatives(literal, REASONS)}"
    if field == "name" and literal not in EVENTS and literal not in names.events:
        return f"unknown event {quote(literal)}{alternatives(literal, [*EVENTS, *names.events])}"
    if field in ("call", "conference"):
        same = [n for n, kind in names.roles.items() if kind == field]
        if literal not in same:
            return f"{quote(literal)} is not a {field} role of this flow{alternatives(literal, same)}"
    return None


@lru_cache(maxsize=4096)
def compared_literals(source: str) -> tuple[tuple[str, str], ...]:
    """(field, literal) for each ``event.<field> ==/!=/in <string literal(s)>`` in the template."""
    tree = analyse(source).tree
    if tree is None or "event." not in source:
        return ()
    found: list[tuple[str, str]] = []
    for compare in tree.find_all(nodes.Compare):
        operands = [compare.expr, *(op.expr for op in compare.ops)]
        field = next((f for f in map(_event_field, operands) if f), None)
        if field is not None:
            found.extend((field, text) for operand in operands for text in _string_constants(operand))
    return tuple(found)


def _event_field(node: nodes.Node) -> str | None:
    """``reason`` for ``event.reason``; ``data.kind`` for ``event.data.kind`` (action.failed's kind)."""
    if not isinstance(node, nodes.Getattr):
        return None
    if isinstance(node.node, nodes.Name) and node.node.name == "event":
        return node.attr
    if node.attr == "kind" and _event_field(node.node) == "data":
        return "data.kind"
    return None


def _string_constants(node: nodes.Node) -> Iterator[str]:
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, nodes.List | nodes.Tuple):
        for item in node.items:
            yield from _string_constants(item)


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]


RULES: tuple[Rule, ...] = (bad_syntax, undefined_names, impossible_comparisons)
