"""A flow's variables as a contract: the type each declared value gives its variable, the check of values
given from outside (``POST /api/calls``'s ``vars``) against it, and the reading of ``name=value`` text
(``flowengine call --var``) as that type.

A variable's type is its initial value's: ``attempts: 0`` is an integer, ``name: ""`` a string; a
variable declared ``null`` takes any value. A number variable takes integers too; nothing else is
converted, so ``"3"`` is not an integer and ``true`` is not a number.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flowengine.flow.diagnostics import did_you_mean, quote

ANY = "any"
# type name -> what a message calls a value of it
TYPES: dict[str, str] = {
    "string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
    "list": "a list", "mapping": "a mapping", ANY: "any value",
}


def type_of(value: Any) -> str:
    """The type a declared value gives its variable."""
    if value is None:
        return ANY
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list | tuple) else "mapping"


def declared_types(declared: Mapping[str, Any]) -> dict[str, str]:
    """Variable -> type name, for each declared variable."""
    return {name: type_of(value) for name, value in declared.items()}


def fits(kind: str, value: Any) -> bool:
    """Whether ``value`` (plain JSON) is of type ``kind``."""
    if kind == ANY:
        return True
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    given = type_of(value)
    return given == kind and value is not None


def problems(declared: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    """What is wrong with ``given`` as values of the flow's ``declared`` variables, one line each."""
    types = declared_types(declared)
    found = []
    for name, value in given.items():
        kind = types.get(name)
        if kind is None:
            hint = did_you_mean(name, types)
            known = ", ".join(sorted(types)) or "none"
            found.append(f"vars: unknown variable {quote(name)}{hint} (the flow declares: {known})")
        elif not fits(kind, value):
            found.append(f"vars.{name}: expected {TYPES[kind]} (as declared: {_shown(declared[name])}), "
                         f"got {_shown(value)}")
    return found


def parse_text(kind: str, text: str) -> Any:
    """``text`` (a command line's ``--var name=text``) as a value of type ``kind``; ``ValueError`` saying
    what was expected when it is not one. Strings are taken as they are (a phone number stays text)."""
    if kind == "string":
        return text
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise ValueError(f"expected true or false, got {quote(text)}")
    try:
        value = json.loads(text)
    except ValueError:
        if kind == ANY:
            return text
        raise ValueError(f"expected {TYPES[kind]}, got {quote(text)}") from None
    if not fits(kind, value):
        raise ValueError(f"expected {TYPES[kind]}, got {quote(text)}")
    return value


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."
