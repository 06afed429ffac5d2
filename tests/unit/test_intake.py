"""The limits every webhook body meets before an adapter reads it (``providers.intake``): nesting measured
on the raw bytes (exactly, and in time linear in the size whatever the bytes), text that is UTF-8 and
can be encoded again, finite numbers, and a cap on events per body."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowengine.errors import WebhookError
from flowengine.providers.intake import (
    DEPTH_CEILING,
    MAX_DEPTH,
    check_depth,
    check_events,
    load_json,
    nesting_depth,
)

# Strings full of what could fool a scan: brackets, quotes, backslashes, escapes.
TRICKY = st.text(alphabet=st.sampled_from(list('[]{}"\\/u0d8 ab')), max_size=12)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | TRICKY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY, inner, max_size=3),
    max_leaves=30,
)


def depth(value: Any) -> int:
    """The reference: how deep arrays and objects nest in a parsed value."""
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(JSON, st.booleans())
def test_nesting_depth_is_exact_for_any_json(value: Any, spaced: bool) -> None:
    text = json.dumps(value, indent=1 if spaced else None, ensure_ascii=False)
    assert nesting_depth(text.encode()) == depth(value)


def test_depth_at_the_limit_passes_one_more_is_refused() -> None:
    at_limit = b'{"a": ' * (MAX_DEPTH - 1) + b"[]" + b"}" * (MAX_DEPTH - 1)
    check_depth(at_limit, MAX_DEPTH)
    assert load_json(at_limit, "body", MAX_DEPTH) is not None
    with pytest.raises(WebhookError, match=f"deeper than {MAX_DEPTH} levels") as refused:
        check_depth(b"[" + at_limit + b"]", MAX_DEPTH)
    assert refused.value.status == 400


def test_a_body_that_passed_a_limit_is_checked_again_against_a_lower_one() -> None:
    """The service's limit, then the parser's ceiling, on the same body: passing one says nothing of a
    lower limit, and a refusal is never remembered as a pass."""
    body = b'{"a": ' * 5 + b"[]" + b"}" * 5
    check_depth(body, DEPTH_CEILING)
    check_depth(body, 6)
    with pytest.raises(WebhookError, match="deeper than 5 levels"):
        check_depth(body, 5)
    with pytest.raises(WebhookError, match="deeper than 5 levels"):
        check_depth(body, 5)
    check_depth(body, DEPTH_CEILING)
    with pytest.raises(WebhookError, match="deeper than 3 levels"):
        check_depth(body, 3)
    assert load_json(body, "body", 6)["a"]["a"]["a"]["a"]["a"] == []


def test_brackets_inside_strings_do_not_count() -> None:
    body = json.dumps({"type": "[" * 5000, "escaped": '\\"[[[[' * 100}).encode()
    assert nesting_depth(body) == 1
    assert load_json(body, "body", 2)["type"] == "[" * 5000


@pytest.mark.parametrize("body", [
    b"[" * 100_000,  # the RecursionError of before: never reaches the parser
    b"[" * 50_000 + b"]" * 50_000,
    b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
], ids=["open", "closed", "objects"])
def test_deep_json_is_refused_before_it_is_parsed(body: bytes) -> None:
    with pytest.raises(WebhookError, match="deeper than"):
        load_json(body, "body")  # the ceiling, with no configured limit
    with pytest.raises(WebhookError, match="deeper than 32"):
        check_depth(body, 32)


@pytest.mark.parametrize("body", [
    b'"\\' * 131_072,  # an unterminated string of escaped quotes: no restart at each quote
    b'"' * 262_144,
    b"[" * 262_144,
    b'["\\"' * 65_536,
    bytes(range(256)) * 1024,
], ids=["escaped-quotes", "quotes", "brackets", "mixed", "all-bytes"])
def test_the_scan_is_linear_on_hostile_bytes(body: bytes) -> None:
    started = time.perf_counter()
    nesting_depth(body)
    assert time.perf_counter() - started < 0.5  # ~10 ms: generous, it is the quadratic case it rules out


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\udc00\\ud800", "x\\uD83D", "\\ud83d\\u0041"])
def test_a_lone_surrogate_escape_is_refused(escape: str) -> None:
    body = ('{"callId": "' + escape + '"}').encode()
    with pytest.raises(WebhookError, match="lone surrogate") as refused:
        load_json(body, "the event")
    assert refused.value.status == 400
    assert str(refused.value).startswith("the event ")


def test_a_surrogate_pair_and_an_escaped_backslash_are_fine() -> None:
    assert load_json(b'{"a": "\\ud83d\\ude00"}', "body") == {"a": "\U0001f600"}
    assert load_json(b'{"a": "\\\\ud800"}', "body") == {"a": "\\ud800"}  # a backslash, then text
    assert load_json(b'["\\ud800"]'.replace(b"\\ud800", b"\\u00e9"), "body") == ["\u00e9"]


@pytest.mark.parametrize("body, reason", [
    (b'{"a": "\xed\xa0\x80"}', "not UTF-8"),  # a surrogate encoded as bytes
    (b"\xff\xfe{}", "not UTF-8"),
    (b'{"a": NaN}', "NaN is not a JSON number"),
    (b'{"a": -Infinity}', "not a JSON number"),
    (b'{"a": 1e999}', "out of range"),
    (b'{"a": ' + b"9" * 5000 + b"}", "not valid JSON"),  # more digits than int() takes
    (b'{"a": ', "not valid JSON"),
    (b"", "not valid JSON"),
], ids=["encoded-surrogate", "utf16", "nan", "infinity", "overflow", "huge-int", "truncated", "empty"])
def test_what_is_not_json_is_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(WebhookError, match=reason) as refused:
        load_json(body, "the body")
    assert refused.value.status == 400


def test_events_over_the_cap_are_refused_with_413() -> None:
    check_events(10, 10)
    with pytest.raises(WebhookError, match="11 events in one webhook body; at most 10") as refused:
        check_events(11, 10)
    assert refused.value.status == 413


def test_the_ceiling_stays_far_below_the_recursion_limit() -> None:
    import sys

    assert MAX_DEPTH <= DEPTH_CEILING <= sys.getrecursionlimit() // 4
