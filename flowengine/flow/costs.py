"""What an expression may cost, and the checks that refuse an operation before it goes over.

A flow's templates run on the event loop, so one hostile expression (or a hostile value in an innocent
one: ``{{ 'x' * (event.digits | int) }}``) must not freeze every call. Each check here runs *before* the
operation and estimates its result from the operands' sizes, so nothing big is ever built:

- numbers: a power or product of more than ``MAX_INT_BITS`` bits;
- text: a string (repetition, concatenation, ``%`` and ``format`` widths, padding, ``replace``,
  ``join``...) of more than ``MAX_CHARS`` characters;
- collections: more than ``MAX_ITEMS`` items, nested collections counted in full as ``str()`` or JSON
  would write them (``[a, a]`` holds ``a`` twice), so a value cannot double itself out of reach.

The sandbox (``flow.sandbox``) applies them to every operator, call and filter and adds the per-render
budgets (operations, characters produced, CPU time); the fast path applies the same operator checks;
``validate`` (``rules.costs``) runs them on constant operands to report what it can see statically.
"""

from __future__ import annotations

import contextlib
import math
import re
import string
from collections.abc import Callable, Iterable, Mapping, MappingView, Sized
from typing import Any, NamedTuple

from jinja2.utils import Cycler, Namespace

from flowengine.errors import ExpressionBudgetError

MAX_CHARS = 1_000_000  # characters in one string, and in one template's output
MAX_ITEMS = 100_000  # items in one collection, nested collections counted in full
MAX_INT_BITS = 4_096  # bits in one integer (about 1,233 decimal digits)
MAX_OPS = 10_000  # loop iterations, calls, filters and operators in one render (data read is charged too)
MAX_PRODUCED = 4 * MAX_CHARS  # characters and items all the operations of one render make together
MAX_SECONDS = 0.05  # CPU time of one render, garbage collection left out
# A call or filter is charged one operation, plus one per item it reads and one per CHARS_PER_OP
# characters (string methods run at C speed). Filters that go through a string a character at a time
# in Python pay more: one per character for those that iterate it as items (sorting a string sorts its
# characters), one per SLOW_CHARS_PER_OP for the text filters written in Python.
CHARS_PER_OP = 1024
SLOW_CHARS_PER_OP = 4
SLOW_FILTERS = frozenset({"wordwrap", "urlize", "pprint", "wordcount", "striptags", "title", "xmlattr"})
# Filters that look at a value without going through it: one operation, nothing measured.
CHEAP_FILTERS = frozenset({"length", "count", "first", "last", "default", "d", "attr", "random", "safe"})
ITERATING_FILTERS = frozenset({
    "sort", "unique", "map", "select", "reject", "selectattr", "rejectattr", "groupby", "batch", "slice",
    "join", "sum", "min", "max", "list", "dictsort", "items",
})

_TEXT = (str, bytes)
_SEQUENCES = (str, bytes, list, tuple)


def over(what: str) -> ExpressionBudgetError:
    return ExpressionBudgetError(f"over the expression budget: {what}")


def limit_chars(count: int, what: str = "a string") -> None:
    if count > MAX_CHARS:
        raise over(f"{what} of {count:,} characters (at most {MAX_CHARS:,})")


def limit_items(count: int, what: str = "a collection") -> None:
    if count > MAX_ITEMS:
        raise over(f"{what} of {count:,} items (at most {MAX_ITEMS:,})")


def limit_bits(bits: float) -> None:
    if bits > MAX_INT_BITS:
        raise over(f"a number of about {int(bits):,} bits (at most {MAX_INT_BITS:,})")


class Size(NamedTuple):
    """A value's size as ``str()`` or JSON would write it out: every nested item counted each time it
    appears. ``text`` estimates the written length."""

    items: int = 0
    chars: int = 0
    depth: int = 0

    @property
    def text(self) -> int:
        return self.chars + 4 * self.items

    def ops(self, chars_per_op: int = CHARS_PER_OP) -> int:
        """What reading the value costs in operations."""
        return self.items + self.chars // chars_per_op


def measure(*values: Any, what: str = "a value") -> Size:
    """The size of ``values`` together; refuses (``limit_items``/``limit_chars``, naming ``what``) as
    soon as the count goes over, so measuring costs at most ``MAX_ITEMS`` steps whatever it holds."""
    if len(values) == 1 and type(values[0]) in _PLAIN:  # the common case, without the walk
        value = values[0]
        kind = type(value)
        chars = len(value) if kind is str else value.bit_length() // 3 + 1 if kind is int else 8
        if chars > MAX_CHARS:
            limit_chars(chars, what)
        return Size(0, chars, 0)
    items = chars = depth = 0
    stack: list[tuple[Iterable[Any], int]] = [(values, 0)]
    while stack:
        container, level = stack.pop()
        if level > depth:
            depth = level
        for value in container:
            kind = type(value)
            if kind is str:
                chars += len(value)
            elif kind is int:
                chars += value.bit_length() // 3 + 1
            elif kind in _FLAT:
                chars += 8
            elif kind is list or kind is tuple:
                items += len(value)
                stack.append((value, level + 1))
            elif kind is dict:
                items += 2 * len(value)
                stack.append((value.keys(), level + 1))
                stack.append((value.values(), level + 1))
            elif isinstance(value, str | bytes):
                chars += len(value)
            elif (children := _children(value)) is not None:
                items += len(children)
                if not isinstance(children, range):  # a range is counted, never walked
                    stack.append((children, level + 1))
            else:
                chars += 8
            if items > MAX_ITEMS:
                limit_items(items, what)
        if chars > MAX_CHARS:
            limit_chars(chars, what)
    return Size(items, chars, depth)


_FLAT = frozenset({float, bool, type(None)})
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _children(value: Any) -> Any:
    """What a collection holds; None for anything else."""
    if isinstance(value, list | tuple | set | frozenset | range):
        return value
    if isinstance(value, Mapping):
        return [*value.keys(), *value.values()]
    if isinstance(value, Namespace):
        attrs: dict[str, Any] = object.__getattribute__(value, "_Namespace__attrs")
        return [*attrs.keys(), *attrs.values()]
    if isinstance(value, Cycler):
        return value.items
    if isinstance(value, MappingView):
        return _children(getattr(value, "mapping", None))
    return None


def shallow(value: Any) -> int:
    """What building ``value`` allocated, roughly: its length (items are counted where they were made)."""
    try:
        return len(value) if isinstance(value, _SEQUENCES | dict) else 1
    except TypeError:
        return 1


# -- operators: the same functions serve the sandbox (``call_binop``) and the fast path ------------------
def add(left: Any, right: Any) -> Any:
    if isinstance(left, _TEXT) and isinstance(right, _TEXT):
        limit_chars(len(left) + len(right))
    elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
        measure(left, right)
    return left + right


def multiply(left: Any, right: Any) -> Any:
    if isinstance(right, int) and isinstance(left, _SEQUENCES):
        _repeat(left, right)
    elif isinstance(left, int) and isinstance(right, _SEQUENCES):
        _repeat(right, left)
    elif isinstance(left, int) and isinstance(right, int):
        limit_bits(left.bit_length() + right.bit_length())
    return left * right


def _repeat(sequence: Any, times: int) -> None:
    if times <= 1:
        return
    if isinstance(sequence, _TEXT):
        limit_chars(len(sequence) * times)
        return
    size = measure(sequence)
    limit_items(size.items * times, "a list")
    limit_chars(size.chars * times, "a list")


def power(base: Any, exponent: Any) -> Any:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 1 and abs(base) > 1:
        limit_bits(exponent)  # |base| >= 2: at least one bit per unit of exponent (and no float overflow)
        limit_bits(exponent * math.log2(abs(base)))
    return base**exponent


def modulo(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        check_percent(left, right)
    return left % right


# -- formatting -------------------------------------------------------------------------------------------
_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.DOTALL)
_DIGITS = re.compile(r"\d+")


def check_percent(template: str, values: Any) -> None:
    """``template % values``: literal text, widths and precisions, and each conversion writing out
    every value (an upper bound: ``%s`` of a tuple writes one of them)."""
    if "%" not in template:
        return
    widths = conversions = 0
    for width, precision, kind in _PERCENT.findall(template):
        if "*" in (width, precision):
            raise over("a '*' width or precision in a % format")
        widths += _number(width) + _number(precision)
        conversions += kind != "%"
    limit_chars(len(template) + widths + conversions * measure(values).text, "a formatted string")


def check_format(template: str, args: Iterable[Any], kwargs: Mapping[str, Any]) -> None:
    """``template.format(*args, **kwargs)`` the same way; a replacement field inside a format spec
    (``{:>{}}``) is refused, its width being known only while formatting."""
    widths = fields = 0
    for _literal, field, spec, _conversion in string.Formatter().parse(template):
        if field is None:
            continue
        if spec and "{" in spec:
            raise over("a nested replacement field in a format spec")
        fields += 1
        widths += sum(_number(digits) for digits in _DIGITS.findall(spec or ""))
    if fields:
        size = measure(tuple(args), dict(kwargs))
        limit_chars(len(template) + widths + fields * size.text, "a formatted string")


def _number(digits: str) -> int:
    if len(digits) > 9:  # int() of thousands of digits is slow, and any such width is over anyway
        return MAX_CHARS + 1
    return int(digits) if digits else 0


# -- methods and filters that can make far more than they are given ---------------------------------------
def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _pad(text: Any, width: Any = 0, *_: Any) -> None:
    limit_chars(max(len(text), _int(width)))


def _expandtabs(text: Any, tabsize: Any = 8) -> None:
    tab = "\t" if isinstance(text, str) else b"\t"
    limit_chars(len(text) + text.count(tab) * max(_int(tabsize), 0))


def _replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not (isinstance(old, type(text)) and isinstance(new, type(text))):
        return
    found = text.count(old)  # an empty ``old`` matches len(text) + 1 times: count says so too
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    limit_chars(len(text) + found * (len(new) - len(old)))


def _join(separator: Any, items: Any) -> None:
    if isinstance(items, Sized):
        size = measure(items)
        limit_chars(size.text + len(separator) * len(items), "a joined string")


def _split(text: Any, sep: Any = None, maxsplit: Any = -1) -> None:
    if len(text) < MAX_ITEMS:
        return
    pieces = len(text) // 2 + 1 if sep is None else text.count(sep) + 1 if sep else 1
    if isinstance(maxsplit, int) and maxsplit >= 0:
        pieces = min(pieces, maxsplit + 1)
    limit_items(pieces, "a split")


def _translate(text: Any, table: Any) -> None:
    if isinstance(table, Mapping):
        longest = max((len(v) for v in table.values() if isinstance(v, _TEXT)), default=1)
        limit_chars(len(text) * max(longest, 1))


def _to_bytes(number: Any, length: Any = 1, *_: Any, **__: Any) -> None:
    limit_chars(_int(length), "bytes")


MethodCheck = Callable[..., None]
TEXT_METHODS: dict[str, MethodCheck] = {
    "center": _pad, "ljust": _pad, "rjust": _pad, "zfill": _pad, "expandtabs": _expandtabs,
    "replace": _replace, "join": _join, "split": _split, "rsplit": _split, "translate": _translate,
}
INT_METHODS: dict[str, MethodCheck] = {"to_bytes": _to_bytes}


def method_check(owner: Any, name: str) -> MethodCheck | None:
    """The check for ``owner.name(...)`` when that method can make more than it is given."""
    if isinstance(owner, _TEXT):
        return TEXT_METHODS.get(name)
    if isinstance(owner, int):
        return INT_METHODS.get(name)
    return None


def _f_center(value: Any, width: Any = 80) -> None:
    limit_chars(max(len(str(value)), _int(width)))


def _f_indent(s: Any, width: Any = 4, first: Any = False, blank: Any = False) -> None:
    text = str(s)
    step = len(width) if isinstance(width, str) else _int(width)
    limit_chars(len(text) + (text.count("\n") + 1) * step)


def _f_wordwrap(s: Any, width: Any = 79, break_long_words: Any = True, wrapstring: Any = None,
                break_on_hyphens: Any = True) -> None:
    text = str(s)
    lines = len(text) // max(_int(width), 1) + text.count("\n") + 1
    limit_chars(len(text) + lines * (len(wrapstring) if isinstance(wrapstring, str) else 2))


def _f_replace(s: Any, old: Any, new: Any, count: Any = None) -> None:
    _replace(str(s), str(old), str(new), -1 if count is None else count)


def _f_format(value: Any, *args: Any, **kwargs: Any) -> None:
    check_percent(str(value), kwargs or args)


def _f_join(value: Any, d: Any = "", attribute: Any = None) -> None:
    _join(str(d), value)


def _f_count(value: Any, count: Any, fill_with: Any = None) -> None:
    limit_items(_int(count), "batches or slices")


def _f_sum(iterable: Any, attribute: Any = None, start: Any = 0) -> None:
    if not isinstance(start, int | float):
        raise over("sum adds numbers only (adding lists or strings one by one takes quadratic time)")


def _f_urlize(value: Any, trim_url_limit: Any = None, nofollow: Any = False, target: Any = None,
              rel: Any = None, extra_schemes: Any = None) -> None:
    text = str(value)
    extra = len(str(target or "")) + len(str(rel or "")) + 64
    limit_chars(3 * len(text) + (len(text) // 2 + 1) * extra)


def _f_tojson(value: Any, indent: Any = None) -> None:
    step = len(indent) if isinstance(indent, str) else _int(indent)
    size = measure(value)
    limit_chars(size.text + size.items * (size.depth * step + 1), "JSON")


def _f_pprint(value: Any) -> None:
    size = measure(value)
    limit_chars(size.text + size.items * (size.depth + 1), "a pretty-printed value")


def _f_list(value: Any) -> None:
    if isinstance(value, str):
        limit_items(len(value), "a list")


FILTER_CHECKS: dict[str, MethodCheck] = {
    "center": _f_center, "indent": _f_indent, "wordwrap": _f_wordwrap, "replace": _f_replace,
    "format": _f_format, "join": _f_join, "batch": _f_count, "slice": _f_count, "sum": _f_sum,
    "urlize": _f_urlize, "tojson": _f_tojson, "pprint": _f_pprint, "list": _f_list,
}


def run_check(check: MethodCheck, *args: Any, **kwargs: Any) -> None:
    """Run a check; arguments it cannot take are left for the real call to refuse in its own words."""
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        check(*args, **kwargs)
