"""flowengine's benchmarks (not part of the test suite): ``python -m bench [name ...]``.

Each ``bench_<name>.py`` module exposes ``run() -> dict`` of figures; ``__main__`` runs them and shows
each figure against its goal and last baseline (``baselines.json``). See ``README.md``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any


def run_quietly(main: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> dict[str, Any]:
    """``asyncio.run(main())`` with flowengine's logging at ERROR: a benchmark sends thousands of
    requests, and a line per request would measure the logger (a failure still shows in its figures)."""
    logger = logging.getLogger("flowengine")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return asyncio.run(main())
    finally:
        logger.setLevel(level)
