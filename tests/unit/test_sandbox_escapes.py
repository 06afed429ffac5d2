"""Sandbox escapes: the classic ways out of a Jinja2 template (class hierarchy walks, function globals,
format-string attribute access, encoded underscores, mutating methods, loaders, Python builtins) all
fail as an ``ExpressionError`` and leave the context as it was, in templates and in guards alike."""

from __future__ import annotations

from typing import Any

import pytest

from flowengine.errors import ExpressionError
from flowengine.flow.expressions import compile_guard, compile_value, has_template

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__base__.__subclasses__() }}",
    "{{ [].__class__.__base__.__subclasses__() }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ (1).__class__.__subclasses__() }}",
    "{{ vars.__class__ }}",
    "{{ vars['__class__'] }}",
    "{{ vars | attr('__class__') }}",
    "{{ '' | attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ ''['\\x5f\\x5fclass\\x5f\\x5f'] }}",
    "{{ self.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__.os.popen('id').read() }}",
    "{{ namespace.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ range.__globals__ }}",
    "{{ dict.__base__.__subclasses__() }}",
    "{{ dict.mro()[-1].__subclasses__() }}",
    "{{ config.items() }}",
    "{{ request.application.__globals__.__builtins__.__import__('os').popen('id').read() }}",
    "{{ __import__('os').system('id') }}",
    "{{ __builtins__ }}",
    "{{ '{0.__class__}'.format(vars) }}",
    "{{ '{0.__class__.__mro__[1].__subclasses__}'.format('') }}",
    "{{ '{0[__class__]}'.format(vars) }}",
    "{{ '{x.__init__.__globals__}'.format_map({'x': cycler}) }}",
    "{{ '%s' | format(vars.__class__) }}",
    "{{ vars.update({'x': 1}) }}",
    "{{ vars.setdefault('x', 1) }}",
    "{{ vars.pop('s') }}",
    "{{ vars.clear() }}",
    "{{ vars.lst.append(1) }}",
    "{{ vars.lst.extend([1]) }}",
    "{% set x = vars.__setitem__('a', 1) %}",
    "{% for x in [1] %}{{ loop.__init__.__globals__ }}{% endfor %}",
    "{% macro m() %}{% endmacro %}{{ m._func.__globals__ }}",
    "{% macro m() %}{% endmacro %}{{ m.__call__.__globals__ }}",
    "{{ caller.id.__class__ }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}",
    "{% extends '/etc/passwd' %}",
    "{% from 'os' import system %}",
    "{{ ''.join.__self__ }}",
    "{{ namespace(a=1).__dict__ }}",
    "{{ vars.s.format.__globals__ }}",
    "{{ vars.s.__add__ }}",
    "{{ (vars.s|string).__class__ }}",
    "{{ vars.items().__iter__ }}",
    "{{ event.__getitem__('call') }}",
    "{{ range(1).__class__ }}",
    "{{ cycler(1).__class__.__init__.__globals__ }}",
    "{{ namespace.__module__ }}",
    "{{ vars.s.translate.__self__ }}",
    "{% set ns = namespace() %}{% set ns.__class__ = 1 %}{{ ns.__class__ }}",
    "{{ (vars|tojson).__class__ }}",
    "{{ getattr }}", "{{ globals() }}", "{{ os }}",
]


def context() -> dict[str, Any]:
    return {"vars": {"s": "ab", "lst": [1], "x": 0}, "event": {"call": "caller"}, "caller": {"id": "c"},
            "session": {"id": "s-1"}}


@pytest.mark.parametrize("source", ESCAPES)
def test_escape_attempt_fails_and_changes_nothing(source: str) -> None:
    ctx = context()
    with pytest.raises(ExpressionError):
        compile_value(source).render(ctx)
    assert ctx == context()


@pytest.mark.parametrize("source", [s for s in ESCAPES if s.startswith("{{") and s.count("{{") == 1])
def test_escape_attempt_as_a_guard_fails_and_changes_nothing(source: str) -> None:
    expression = source.removeprefix("{{").removesuffix("}}").strip()
    assert not has_template(expression)
    ctx = context()
    with pytest.raises(ExpressionError):
        compile_guard(expression).render(ctx)
    assert ctx == context()

