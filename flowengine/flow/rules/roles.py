"""Rules about roles: the names of calls (``caller``, ``as: callee``) and conferences (``as: room``).

A role must be bound before it is used on at least one path (``dataflow.may_hold``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from flowengine.flow.diagnostics import Diagnostic, alternatives, closest, quote
from flowengine.flow.expressions import has_template
from flowengine.flow.model import Action
from flowengine.flow.rules.context import Rule, RuleContext
from flowengine.flow.rules.dataflow import Facts, before, may_hold, states_running
from flowengine.flow.rules.sites import ActionSite
from flowengine.flow.template_analysis import analyse
from flowengine.flow.vocabulary import ACTIONS, CALLER_ROLE, EXPRESSION_GLOBALS, ActionSpec

RoleKind = Literal["call", "conference"]
_USES: dict[str, RoleKind] = {"call": "call", "conference": "conference"}
_BINDS: dict[str, RoleKind] = {"new_call": "call", "new_conference": "conference"}


@dataclass(frozen=True, slots=True)
class RoleParam:
    param: str
    kind: RoleKind
    name: str
    binds: bool


def role_params(action: Action) -> Iterator[RoleParam]:
    for name, kind, binds in _role_slots(action.name):
        value = action.params.get(name)
        if isinstance(value, str):
            yield RoleParam(name, kind, value, binds)


# Action name -> its spec and the spec's role parameters (name, kind, binds?), worked out once per spec:
# every rule about roles asks for every action's (issue 15).
_ROLE_SLOTS: dict[str, tuple[ActionSpec, tuple[tuple[str, RoleKind, bool], ...]]] = {}


def _role_slots(action: str) -> tuple[tuple[str, RoleKind, bool], ...]:
    spec = ACTIONS.get(action)
    if spec is None:
        return ()
    known = _ROLE_SLOTS.get(action)
    if known is None or known[0] is not spec:
        slots = tuple((p.name, _USES.get(p.kind) or _BINDS[p.kind], p.kind in _BINDS)
                      for p in spec.params if p.kind in _USES or p.kind in _BINDS)
        known = _ROLE_SLOTS[action] = (spec, slots)
    return known[1]


ParamsOf = Mapping[int, tuple[RoleParam, ...]]  # id of an action -> its role parameters


def bound(actions: Iterable[Action], params_of: ParamsOf | None = None) -> set[str]:
    """The roles ``actions`` bind; ``params_of``: ``params_by_action``'s, when the caller has it."""
    if params_of is None:
        return {p.name for a in actions for p in role_params(a) if p.binds}
    return {p.name for a in actions for p in _params(params_of, a) if p.binds}


def params_by_action(ctx: RuleContext) -> dict[int, tuple[RoleParam, ...]]:
    """Each action's role parameters, by the action's id (the flow keeps every action alive as long as
    the context), worked out once: every rule about roles asks for every action's (issue 15)."""
    return {id(site.action): tuple(role_params(site.action)) for site in ctx.actions}


def _params(params_of: ParamsOf, action: Action) -> Iterable[RoleParam]:
    found = params_of.get(id(action))
    return role_params(action) if found is None else found


def role_kinds(ctx: RuleContext) -> dict[str, tuple[RoleKind, ActionSite | None]]:
    """Role -> its kind and the first action binding it (None for the call the session starts with:
    ``caller``, or an outbound flow's dialled call)."""
    kinds: dict[str, tuple[RoleKind, ActionSite | None]] = {ctx.flow.start_role: ("call", None)}
    params_of = ctx.shared(params_by_action)
    for site in ctx.actions:
        for param in params_of[id(site.action)]:
            if param.binds and param.name not in kinds:
                kinds[param.name] = (param.kind, site)
    return kinds


def bad_bindings(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[role] ``as:`` picks a fresh name and keeps one kind."""
    kinds = ctx.shared(role_kinds)
    start = ctx.flow.start_role
    what = "the inbound call" if start == CALLER_ROLE else "the call the session starts by dialling"
    params_of = ctx.shared(params_by_action)
    for site in ctx.actions:
        for param in (p for p in params_of[id(site.action)] if p.binds):
            path = (*site.path, site.action.name, param.param)
            if param.name == start:
                yield ctx.at_value(path, f"{quote(start)} is always {what}; choose another role name", "role")
            elif param.name in EXPRESSION_GLOBALS:
                yield ctx.at_value(
                    path, f"{quote(param.name)} is reserved in templates; choose another role name", "role"
                )
            elif kinds[param.name][0] != param.kind:
                yield ctx.at_value(
                    path,
                    f"role {quote(param.name)} is bound here as a {param.kind} but "
                    f"elsewhere as a {kinds[param.name][0]}; use two names",
                    "role",
                )


def unknown_roles(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[role] every role used is bound somewhere, as the kind the parameter expects."""
    kinds = ctx.shared(role_kinds)
    params_of = ctx.shared(params_by_action)
    for site in ctx.actions:
        for param in (p for p in params_of[id(site.action)] if not p.binds):
            path = (*site.path, site.action.name, param.param)
            known = kinds.get(param.name)
            if known is None:
                same_kind = [n for n, (k, _) in kinds.items() if k == param.kind]
                hint = _role_hint(ctx, site, param.name, same_kind)
                yield ctx.at_value(path, f"unknown {param.kind} role {quote(param.name)}{hint}", "role")
            elif known[0] != param.kind:
                yield ctx.at_value(
                    path,
                    f"{quote(param.name)} is a {known[0]}, but parameter "
                    f"{quote(param.param)} of action {quote(site.action.name)} expects a "
                    f"{param.kind}",
                    "role",
                )


def _role_hint(ctx: RuleContext, site: ActionSite, name: str, same_kind: list[str]) -> str:
    """A did-you-mean among the roles some path has bound by the time ``site`` runs: one bound only
    later would be the next error, so it is named as such instead."""
    running = states_running(ctx, site) if ctx.graph_known else []
    if not running:
        return alternatives(name, same_kind)
    roles = ctx.shared(role_flow)
    usable = [r for r in same_kind if any(roles.holds(before(ctx, roles, site, s), r) for s in running)]
    close = closest(name, same_kind)
    if close is not None and close not in usable:
        return f'; "{close}" is close, but no path binds it before this action'
    return alternatives(name, usable)


def role_flow(ctx: RuleContext) -> Facts:
    """Roles possibly bound on entering each state and while it is active (the flow's first role: the
    caller, or an outbound flow's dialled party)."""
    params_of = ctx.shared(params_by_action)
    return may_hold(ctx, lambda actions: bound(actions, params_of), {ctx.flow.start_role})


def _uses(
    site: ActionSite, kinds: Mapping[str, tuple[RoleKind, ActionSite | None]], params: Iterable[RoleParam]
) -> Iterator[tuple[str, tuple[str | int, ...]]]:
    """Roles the action reads: role parameters (``params``, of the right kind: others are reported by
    ``unknown_roles``) and role names in its templates."""
    for param in params:
        if not param.binds and kinds.get(param.name, (None,))[0] == param.kind:
            yield param.name, (*site.path, site.action.name, param.param)
    for name, value in site.action.params.items():
        for text in _strings(value):
            for ref in analyse(text).references:
                if ref[0] in kinds:  # not a set of the roles made for each action (issue 15)
                    yield ref[0], (*site.path, site.action.name, name)


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str) and has_template(value):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def unbound_roles(ctx: RuleContext) -> Iterator[Diagnostic]:
    """[role] a role is used only where some path may already have bound it."""
    if not ctx.graph_known:
        return
    kinds = ctx.shared(role_kinds)
    roles = ctx.shared(role_flow)
    params_of = ctx.shared(params_by_action)
    for site in ctx.actions:
        running = states_running(ctx, site)
        for role, path in _uses(site, kinds, params_of[id(site.action)]):
            if running and not any(roles.holds(before(ctx, roles, site, s), role) for s in running):
                yield ctx.at_value(path, _unbound_message(role, kinds[role]), "role")


def _unbound_message(role: str, kind: tuple[RoleKind, ActionSite | None]) -> str:
    binder = kind[1]
    where = f"state {quote(binder.state)}" if binder and binder.state else "a flow-level handler"
    return (
        f"{kind[0]} role {quote(role)} is used before any path binds it (it is bound with "
        f'"as: {role}" in {where})'
    )


RULES: tuple[Rule, ...] = (bad_bindings, unknown_roles, unbound_roles)
