"""The trees ``plain_templates`` builds are Jinja2's own, node for node, line for line."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from jinja2 import nodes

from flowengine.flow.expressions import environment
from flowengine.flow.plain_templates import plain_tree
from flowengine.flow.template_analysis import analyse, parsed_analysis

_PIECES = ["{{", "}}", "{{ ", " }}", " ", "  ", ".", "vars", "event", "x1", "_a", "total", "true", "None",
           "not", "in", "if", "-", "+", "\n", "\r\n", "{%", "%}", "{#", "#}", "|", "{", "}", "Step 3 ", "é",
           "1", "(", "'", "~", "\t", "0"]


def _dump(node: Any) -> Any:
    if isinstance(node, nodes.Node):
        fields = tuple((name, _dump(value)) for name, value in node.iter_fields())
        return (type(node).__name__, node.lineno, node.environment is environment(), fields)
    if isinstance(node, list):
        return [_dump(item) for item in node]
    return node


_NAMES = st.sampled_from(["vars", "session", "x1", "_a", "A_b9", "true", "None", "not", "in", "is", "if",
                          "else", "and", "loop", "range", "for", "é", "1a", ""])
_OUTPUTS = st.tuples(st.sampled_from(["{{", "{{ ", "{{  ", "{{-", "{{ -"]),
                     st.lists(_NAMES, min_size=1, max_size=10).map(".".join),
                     st.sampled_from(["}}", " }}", "  }}", " -}}", "\t}}", "}}}"]))
_PLAINISH = st.lists(st.one_of(st.sampled_from(_PIECES), _OUTPUTS.map("".join)), max_size=8).map("".join)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.lists(st.sampled_from(_PIECES), max_size=14).map("".join), _PLAINISH))
@example("Step 3 of {{ vars.total }} for {{ session.id }}")
@example("{{ a.b.c.d.e.f.g.h }}}} {{x}}")
@example("")
def test_a_plain_template_is_what_jinja_parses(source: str) -> None:
    plain = plain_tree(source, environment())
    if plain is None:
        return
    parsed = parsed_analysis(source)
    assert parsed.error is None and parsed.tree is not None
    assert _dump(plain[0]) == _dump(parsed.tree)
    assert frozenset(plain[1]) == parsed.references
    assert (parsed.filters, parsed.tests) == ((), ())
    got = analyse(source)
    assert (got.references, got.error, got.filters, got.tests) == (parsed.references, None, (), ())


def test_plain_templates_take_the_short_path_and_the_rest_jinja2() -> None:
    assert plain_tree("Step 3 of {{ vars.total }} for {{ session.id }}", environment()) is not None
    for source in ("{{ vars.a | upper }}", "{{ a + 1 }}", "{% if a %}x{% endif %}", "{{ true }}",
                   "{{ a }}\n", "{{- a }}", "{{ a.0 }}", "{{ not a }}", "{# c #}{{ a }}", "{{{ a }}"):
        assert plain_tree(source, environment()) is None, source
