"""Phone numbers are masked in log lines; ids, times and other digits are left alone."""

from __future__ import annotations

import io
import logging
import random
import re
from collections.abc import Iterator

import pytest

from flowengine.cli._common import log_handler
from flowengine.masking import NUMBER, NumberMask, mask_handlers, mask_number, mask_numbers, number_parts


@pytest.mark.parametrize(("text", "masked"), [
    ("+447911123489", "+4479******89"),
    ("447911123489", "4479******89"),
    ('no flow answers calls to "4592457976"', 'no flow answers calls to "4592****76"'),
    ("from=447700900001 to=+4915112345678.", "from=4477******01 to=+4915*******78."),
    ("POST /calls/1/calls/447911123489/say", "POST /calls/1/calls/4479******89/say"),
    ("1234567", "1234*67"),  # the shortest that counts
])
def test_numbers_are_masked(text: str, masked: str) -> None:
    assert mask_numbers(text) == masked


@pytest.mark.parametrize("text", [
    "123456",  # too short for a number
    "1234567890123456",  # longer than E.164 allows
    "due at 1767225600.25",  # a time
    "call 822aa4b7-05b4-4d83-87c7-1f835ee0b6f6_257",
    "s-0123456789abcdef01234567",  # a session id
    "id 12345678-9012-3456",
    "v1.2345678",
    "conference 0f1e2d3c4b5a69788796",
])
def test_ids_and_times_are_not_numbers(text: str) -> None:
    assert mask_numbers(text) == text


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("flowengine.test-masking")
    log.addHandler(handler)
    log.propagate = False
    yield log, stream
    log.removeHandler(handler)
    log.propagate = True


def test_the_filter_masks_arguments_and_tracebacks(logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = logger
    mask_handlers(log)
    mask_handlers(log)  # once is enough: a second call adds no second filter
    assert sum(isinstance(f, NumberMask) for f in log.handlers[0].filters) == 1
    log.warning("call from %s to %s", "+447911123489", "4592457976")
    try:
        raise ValueError("no route to 447415784323")
    except ValueError:
        log.exception("failed for %s", "447415784323")
    text = stream.getvalue()
    assert "call from +4479******89 to 4592****76" in text
    assert "failed for 4474******23" in text and "ValueError: no route to 4474******23" in text
    for number in ("447911123489", "4592457976", "447415784323"):
        assert number not in text


def test_without_the_filter_numbers_are_logged_in_full(logger: tuple[logging.Logger, io.StringIO]) -> None:
    """``log_numbers: full``: ``setup_logging`` then puts no filter on the handlers."""
    log, stream = logger
    log.warning("call from %s", "+447911123489")
    assert "call from +447911123489" in stream.getvalue()


# The rule as first written: what NUMBER (written for speed) must find, match for match.
PLAIN_RULE = re.compile(r"(?<![\w+-])(?<!\d\.)(\+?)(\d{7,15})(?![\w-])(?!\.\d)")


def test_the_fast_pattern_finds_what_the_plain_rule_finds() -> None:
    """The pattern, and the shortcut for ASCII texts with no number, against the rule as first written."""
    pieces = ["0", "1", "5", "9", "+", "-", ".", "a", "Z", "_", " ", ":", "/", "\n", "\u0663", "\u00e9",
              "1234567", "+4479111234", "s-8308021ed7"]
    rng = random.Random(15)
    texts = ["", "+", "+1234567", "1234567", "a+1234567", "1.1234567", "+-1234567", "12345678901234567"]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 12))) for _ in range(20_000)]
    for text in texts:
        plain = [(m.span(), m[1], m[2]) for m in PLAIN_RULE.finditer(text)]
        fast = [(m.span(), *number_parts(m)) for m in NUMBER.finditer(text)]
        assert fast == plain, text
        assert mask_numbers(text) == PLAIN_RULE.sub(lambda m: m[1] + mask_number(m[2]), text), text


@pytest.mark.parametrize("line_buffered", [True, False])
def test_the_service_handler_writes_each_line_out_whole(line_buffered: bool) -> None:
    """``log_handler`` leaves a line-buffered stream's flush to the stream (it writes out every line as it
    ends); any other stream is flushed after each line. Either way each line is out once logged."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(io.BufferedWriter(raw, buffer_size=1 << 16), encoding="utf-8",
                              line_buffering=line_buffered)
    handler = log_handler(stream)
    log = logging.getLogger("flowengine.test-line-handler")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("call from %s", "+447911123489")
        line = "WARNING flowengine.test-line-handler: call from +4479******89\n"
        assert raw.getvalue().decode().endswith(line)
        log.warning("and another")
        assert raw.getvalue().decode().count("\n") == 2
    finally:
        log.removeHandler(handler)
