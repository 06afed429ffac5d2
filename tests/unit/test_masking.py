"""Phone numbers are masked in log lines; ids, times and other digits are left alone."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from flowengine.masking import NumberMask, mask_handlers, mask_numbers


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
