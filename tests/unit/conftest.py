"""Fixtures shared by the unit tests (a module's own fixture of the same name takes precedence)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from flowengine.runtime.clock import VirtualClock


@pytest.fixture
async def clock() -> AsyncIterator[VirtualClock]:
    """Virtual time that jumps ahead whenever nothing is in flight."""
    virtual = VirtualClock()
    virtual.start()
    yield virtual
    await virtual.stop()
