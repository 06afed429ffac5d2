"""Calls started through the API are paced like any dial, store-wide: two engine instances sharing the
real Redis take ``POST /api/calls`` requests at once, and the platform, whose simulator refuses call
creation past 2 a second (429), sees them at the paced rate and refuses none; every session runs its
flow. Both simulators, real HTTP on 127.0.0.1, virtual time."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from flowengine.providers import PROVIDERS
from flowengine.simulator.faults import Faults

from .conftest import REDIS
from .outbound import outbound, second_instance

CALLS = 6


@pytest.mark.redis
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_calls_started_through_two_instances_keep_the_combined_rate(
    provider: str, redis_prefix: str
) -> None:
    store = f"{REDIS}?prefix={redis_prefix}"
    pacing = {provider: {"rate": 2, "burst": 1, "max_wait": 20}}
    async with outbound(provider, store=store, service_options={"pacing": pacing}) as side, \
            second_instance(side) as other:
        side.stack.simulator.faults = Faults(create_rate=2, create_burst=1, retry_after=1)
        instances = itertools.islice(itertools.cycle((side, other)), CALLS)
        answers = await asyncio.gather(*(
            instance.call(to=f"4477009001{n:02d}", vars={"name": f"Customer {n}"})
            for n, instance in enumerate(instances)))
        sessions = [await side.until_over(body["id"]) for _, body in answers]
        dials = side.dials()
        views = [(await instance.send("GET", "/api/pacing"))[1]["providers"][0] for instance in (side, other)]
    assert [status for status, _ in answers] == [201] * CALLS
    assert [d["status"] for d in dials] == [{"infobip": 201, "sinch": 200}[provider]] * CALLS  # no 429
    times = sorted(d["at"] for d in dials)
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.5 - 1e-6  # 2 a second, both instances
    assert [view["paced"] for view in views] == [CALLS // 2, CALLS // 2]
    assert [s["state"] for s in sessions] == ["done"] * CALLS
