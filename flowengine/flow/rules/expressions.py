"""Rules about templates (``{{ … }}`` in action parameters) and guards (``when``, an action's ``if``).

Every template is parsed once (``template_analysis.analyse`` caches by source) and checked for syntax, for
names that do not exist at run time (only ``vars``, ``session``, ``event``, the roles and Jinja2's own
globals do), for ``vars.x`` that no ``vars`` entry, ``set`` or ``as:`` declares, for ``event.x`` that no
event carries, and for string literals compared with ``event.reason``/``call``/``name`` that can never
match.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

from jinja2 import nodes

from flowengine.errors import ERROR_KINDS
from flowengine.flow.diagnostics import Diagnostic, alternatives, did_you_mean, quote, quoted_list
from flowengine.flow.expressions import environment, has_template
from flowengine.flow.model import Pos
from flowengine.flow.rules.context import Rule, RuleContext
from flowengine.flow.rules.roles import role_kinds
from flowengine.flow.rules.sites import SAVE, Template
from flowengine.flow.template_analysis import (
    Analysis,
    analyse,
    guard_source,
    unknown_filters,
    unknown_tests,
    usable_filters,
    usable_tests,
)
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
        if site.action.name == "http" and isinstance(params.get(SAVE), Mapping):
            declared.update(params[SAVE])
    return declared


Analysed = tuple[Template, str, Analysis]  # a template, its source as Jinja2 reads it, its analysis


def analysed(ctx: RuleContext) -> list[Analysed]:
    """Every template's source (a guard wrapped in ``{{ }}``) and analysis, worked out once for all the
    rules that read them: each rule made the source and looked the analysis up again for each of the
    flow's templates (issue 15). Plain tuples: a frozen dataclass each costs as much again."""
    found = []
    for template in ctx.templates:
        source = _source(template)
        found.append((template, source, analyse(source)))
    return found


def bad_syntax(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[expression] templates and guards parse; a guard is a bare expression."""
    for template, _, analysis in ctx.shared(analysed):
        if analysis.error is None and not template.guard:
            continue
        key = quote(str(template.path[-1]))
        if template.guard and has_template(template.text):
            yield ctx.at_value(template.path, _bare_message(key, template.text), "expression")
            continue
        error = analysis.error
        if error is None:
            continue
        equals = _lone_equals(template)
        if equals is not None:
            column, fixed = equals
            start = ctx.source_map.find(template.path, template.text)
            written = ctx.source_map.line(start.line, start.file)[start.col - 1:].startswith(template.text)
            pos = Pos(start.line, start.col + column, start.file) if written else start
            yield ctx.at(
                pos, f'"=" sets a value, it does not compare: write "==", as in {quote(fixed)}', "equals"
            )
            continue
        what = f"{key} expression" if template.guard else "template"
        yield ctx.at_value(
            template.path, f"invalid {what}: {_lower(error.message or 'syntax error')}", "expression"
        )


def _bare_message(key: str, text: str) -> str:
    """A guard written as a template: the bare expression inside, when that is all it holds and parses."""
    single = _SINGLE.match(text)
    inner = single["expr"].strip() if single else ""
    if inner and analyse(guard_source(inner)).error is None:
        return f"write {key} as a bare expression, without {{{{ }}}}: {quote(inner)}"
    return f"write {key} as a bare expression, without {{{{ }}}}, such as \"event.digits == '1'\""


_SINGLE = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}).)*)\}\}\s*$", re.DOTALL)
_EQUALS = re.compile(r"(?<![=!<>])=(?!=)")


def _lone_equals(template: Template) -> tuple[int, str] | None:
    """Where a single ``=`` stands for ``==`` (its offset in the text, and the text with ``==``): the text
    does not parse, and parses once that ``=`` is doubled. Inside ``{% set x = 1 %}`` it is not tried."""
    matches = list(_EQUALS.finditer(template.text))
    for match in matches:
        fixed = template.text[: match.start()] + "==" + template.text[match.end():]
        if analyse(guard_source(fixed) if template.guard else fixed).error is None:
            return match.start(), fixed
    if len(matches) > 1:  # ``a = 1 or b = 2``: every one of them
        fixed = _EQUALS.sub("==", template.text)
        if analyse(guard_source(fixed) if template.guard else fixed).error is None:
            return matches[0].start(), fixed
    return None


def _source(template: Template) -> str:
    return guard_source(template.text) if template.guard else template.text


def undefined_names(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[expression] only names that exist at run time are read."""
    known = ctx.shared(names)
    for template, _, analysis in ctx.shared(analysed):
        if template.guard and has_template(template.text):
            continue
        for ref in sorted(analysis.references):
            if ref[0] in template.scope:
                continue
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
    else:  # not "loop": it exists only inside a for loop, where it is never reported
        hint = did_you_mean(head, names.top - {"loop"})
    return f"undefined name {quote(head)}{hint} (templates read vars, session, event and the roles)"


def _field_hint(name: str, fields: tuple[str, ...], prefix: str) -> str:
    return did_you_mean(name, fields, prefix) or f"; expected {quoted_list(prefix + f for f in fields)}"


def impossible_comparisons(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[expression] ``event.reason == 'noanswer'`` can never be true: the value is not in the vocabulary."""
    known = ctx.shared(names)
    for template, source, _ in ctx.shared(analysed):
        for field, literal in compared_literals(source):
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
    if field in ("call", "conference") and names.roles.get(literal) != field:
        # the roles of that kind only for the message: a comparison with a role (``event.call ==
        # 'caller'``, in most states) listed every role each time (issue 15)
        same = [n for n, kind in names.roles.items() if kind == field]
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


def unknown_filter_names(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[filter] every filter (``| upper``) and test (``is odd``) named exists: Jinja2 refuses the rest
    only when the template is compiled, which is at run time."""
    for template, _, analysis in ctx.shared(analysed):
        if not analysis.filters and not analysis.tests:
            continue  # most templates: nothing to look for
        if template.guard and has_template(template.text):
            continue
        for name in unknown_filters(analysis.filters):
            pos = ctx.source_map.find(template.path, name)
            yield ctx.at(pos, f"unknown filter {quote(name)}{_filter_hint(name, usable_filters())}", "filter")
        for name in unknown_tests(analysis.tests):
            pos = ctx.source_map.find(template.path, name)
            yield ctx.at(pos, f"unknown test {quote(name)}{_filter_hint(name, usable_tests())}", "filter")


def _filter_hint(name: str, usable: frozenset[str]) -> str:
    return did_you_mean(name, usable) or " (flows have Jinja2's built-in filters and tests)"


RULES: tuple[Rule, ...] = (bad_syntax, undefined_names, impossible_comparisons, unknown_filter_names)
# What a file of shared states is checked for on its own (``include``): names need the including flow.
STATES_FILE_RULES: tuple[Rule, ...] = (bad_syntax, unknown_filter_names)
