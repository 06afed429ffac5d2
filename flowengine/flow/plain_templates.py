"""The tree of a template that only writes text and reads values, built without Jinja2's parser.

Most templates of a flow are text with a name or a constant attribute path or two in it (``Step 3 of
{{ vars.total }} for {{ session.id }}``), and most flows write each one once: parsing them with Jinja2
(its lexer and recursive-descent parser, a tenth of a millisecond each) was a third of a first
``validate`` of a 1,000-state flow (issue 15). Here such a template's tree is put together directly:
the very nodes, fields and line numbers Jinja2's parser gives (a property test holds the two to each
other). Anything else (a filter, an operator, a statement, a comment, whitespace control, a line break,
a name Jinja2 reads as a constant or a keyword) is left to Jinja2.
"""

from __future__ import annotations

import re

from jinja2 import nodes
from jinja2.environment import Environment

# ``{{ name.attr.attr }}`` with spaces only: Jinja2's lexer makes these tokens of it, and its parser a
# ``Name`` inside ``Getattr`` nodes, one a dot.
_OUTPUT = re.compile(r"\{\{ *([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*){0,7}) *\}\}")
# First names the parser does not read as a name: constants, and the words of its grammar.
_NOT_NAMES = frozenset({"true", "false", "none", "True", "False", "None", "not", "and", "or", "in", "is",
                        "if", "else"})


def plain_tree(source: str, environment: Environment) -> tuple[nodes.Template, set[tuple[str, ...]]] | None:
    """The tree Jinja2's ``environment.parse(source)`` gives, and the paths it reads (``("vars",
    "total")``), when ``source`` is text and ``{{ path }}`` only; None for anything else."""
    if "\n" in source or "\r" in source or "{%" in source or "{#" in source:
        return None
    parts: list[nodes.Node] = []
    paths: set[tuple[str, ...]] = set()
    done = 0
    while (start := source.find("{{", done)) >= 0:
        match = _OUTPUT.match(source, start)
        if match is None:
            return None
        path = tuple(match[1].split("."))
        if path[0] in _NOT_NAMES:
            return None
        if start > done:
            parts.append(nodes.TemplateData(source[done:start], lineno=1))
        node: nodes.Expr = nodes.Name(path[0], "load", lineno=1)
        for attr in path[1:]:
            node = nodes.Getattr(node, attr, "load", lineno=1)
        parts.append(node)
        paths.add(path)
        done = match.end()
    if done < len(source):
        parts.append(nodes.TemplateData(source[done:], lineno=1))
    tree = nodes.Template([nodes.Output(parts, lineno=1)] if parts else [], lineno=1)
    tree.set_environment(environment)
    return tree, paths
