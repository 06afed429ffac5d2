"""schemathesis against the served ``/openapi.json`` of a real app on 127.0.0.1 (a bounded run; ``make fuzz``
sends many more): no answer 5xx, and every answer's status, content type and body as described."""

from __future__ import annotations

from pathlib import Path

import pytest
from apifuzz.harness import Plan, fuzz, served

from flowengine.providers import PROVIDERS

# Positive and negative data, every operation; the coverage phase (thousands of boundary webhooks) and the
# stateful one are left to `make fuzz`.
QUICK = Plan(max_examples=25, phases=("examples", "fuzzing"))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_schemathesis_finds_no_server_error_and_nothing_undescribed(provider: str, tmp_path: Path) -> None:
    with served(provider, tmp_path) as target:
        tally = fuzz(target, QUICK)
    assert tally.errors == []
    assert tally.sent >= 200 and tally.classes["2xx"] > 0 and tally.classes["4xx"] > 0, tally.summary()
    assert tally.classes["5xx"] == 0 and tally.server_errors() == [], tally.summary()
    assert tally.failures == {}
    # The two webhook URLs are one handler; which of them the few malformed bodies of a bounded run land
    # on is chance (hypothesis also draws on constants from the code under test, so any change moves it):
    # any refusal the route answers counts.
    webhooks = (f"POST /webhooks/{provider}", f"POST /webhooks/{provider}/{{kind}}")
    assert all(tally.statuses[(webhook, 200)] > 0 for webhook in webhooks), tally.summary()
    refusals = (400, 401, 404, 413)
    refused = sum(tally.statuses[(webhook, status)] for webhook in webhooks for status in refusals)
    assert refused > 0, tally.summary()


def test_a_server_error_does_not_go_unnoticed(tmp_path: Path) -> None:
    # A store that cannot be opened: the read API and /readyz answer 503, which the run must report.
    with served("infobip", tmp_path, store=f"sqlite:///{tmp_path / 'missing' / 'x.db'}") as target:
        tally = fuzz(target, Plan(max_examples=5, phases=("fuzzing",)))
    assert tally.statuses[("GET /api/sessions", 503)] > 0 and tally.classes["5xx"] > 0
    assert {"GET /api/sessions", "GET /readyz"} <= {error.split(":")[0] for error in tally.server_errors()}
