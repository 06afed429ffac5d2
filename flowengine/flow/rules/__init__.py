"""Semantic rules: one small function per check, each reporting under a rule id.

The schema-level rule ids (syntax, limits, schema, duplicate-key, event, action, action-params, duration) come
from ``source`` and ``schema_check``; the functions listed in ``SEMANTIC_RULES`` run on a schema-sound
flow. ``RULE_DOCS`` is the catalogue ``validate --list-rules`` prints.
"""

from __future__ import annotations

from flowengine.flow.diagnostics import Diagnostic
from flowengine.flow.rules import (
    actions,
    always,
    costs,
    events,
    expressions,
    http,
    provider,
    roles,
    states,
    variables,
)
from flowengine.flow.rules.context import Rule, RuleContext

RULE_DOCS: dict[str, str] = {
    "syntax": "the file is not valid YAML (or uses tags, anchors or nesting flows do not allow); the message "
              "says where the mistake is and how to fix it (an unclosed `{`, a `: ` in unquoted text, ...)",
    "flow-comma": "unquoted text inside `{...}` cut at a comma: `{text: Hello, world}` reads `world` as a "
                  "key",
    "limits": "the text nests deeper than 64 levels or holds or expands too many aliases (hostile input)",
    "duplicate-key": "a key appears twice in one mapping (YAML parsers silently keep the last)",
    "schema": "the document does not match the flow schema (missing keys, wrong types, yes/no booleans)",
    "event": "an unknown event name under `on`, a custom event handled but not declared under `events` "
             "(or, a warning, declared and never handled)",
    "action": "an unknown action name, or an action item that is not a one-key mapping",
    "action-params": "bad action parameters: missing, unknown, wrong type, bad duration or endpoint",
    "duration": "an `after` key that is not a duration such as 500ms, 10s, 2m or 1h",
    "include": "an `include:`d file that cannot be read, holds more than `states`, `on` and `vars`, or "
               "defines a state, handler or variable the flow (or another included file) defines too",
    "target": "a transition (or `initial`) names a state that does not exist",
    "final": "a final state with `on`, `after` or `always`",
    "unreachable": "a state no path from `initial` leads to",
    "dead-end": "a non-final state with no transition to another state",
    "no-final": "no final state can be reached from `initial`",
    "always-loop": "a cycle of `always` transitions none of whose guards reads what the actions on the "
                   "cycle change (or that has no guard): once entered it never ends",
    "role": "a call or conference role that is unknown, of the wrong kind, or not yet bound on any path",
    "expression": "a template or `when` guard with bad syntax, an undefined name, variable or event field",
    "filter": "an unknown Jinja filter or test (`| uppper`, `is odd2`): Jinja2 refuses it only at run time",
    "equals": "a single `=` where a comparison (`==`) was meant, in a guard or template",
    "unset-variable": "a variable read where no path has set it yet (set later, or `set` reading itself "
                      "without a first value under `vars`)",
    "expression-budget": "an expression that always goes over its run-time budget: a huge constant power, "
    "repetition or format width, or a range or nested loops of more iterations than a render may spend",
    "no-timeout": "(warning) a state that waits for events without an `after` timer",
    "unhandled-failure": "(warning) a dial whose failure event no state after it handles",
    "outbound-start": "(warning) an outbound flow whose initial state does not handle the dialled call's "
                      "`call.answered` or `call.failed`",
    "provider": "an action the chosen provider (validate --provider) cannot perform",
    "http-secret": "(warning) an `http` header or URL holding what looks like a credential written into the "
                   "flow (write ${VAR}: the service fills it from its environment)",
    "provider-place": "an action the chosen provider takes only in the reply to some of its callbacks can "
                      "run on an event that brings no such reply (the events leading into its state are "
                      "followed, per path), or after the reply's one action on that call",
    "provider-param": "a parameter, or a literal value of one, that the chosen provider does not take",
    "provider-timeout": "(warning) a timeout longer than the chosen provider can hold: it is cut short",
    "io": "the file cannot be read",
}

SEMANTIC_RULES: tuple[Rule, ...] = (
    *states.RULES,
    *always.RULES,
    *roles.RULES,
    *expressions.RULES,
    *variables.RULES,
    *costs.RULES,
    *actions.RULES,
    *http.RULES,
    *provider.RULES,
    *events.RULES,
)


def run_rules(context: RuleContext) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for rule in SEMANTIC_RULES:
        found.extend(rule(context))
    return found


__all__ = ["RULE_DOCS", "SEMANTIC_RULES", "RuleContext", "run_rules"]
