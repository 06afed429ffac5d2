"""The command table: one row per provider action on each platform, the idempotent set, reconciles that
can be carried out, the README in step; the executor's correlation key; errors that carry their kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowengine.errors import ProviderError
from flowengine.flow.build import build_flow
from flowengine.providers import PROVIDERS, capabilities
from flowengine.providers.infobip.reconcile import FINDERS
from flowengine.providers.table import platform_table, readme_tables
from flowengine.testing import PROVIDER_ACTIONS, RecordingProvider, drive, event

ROOT = Path(__file__).resolve().parents[2]
IDEMPOTENT = {"mute", "unmute", "deafen", "undeafen", "hold", "resume", "stop_play", "hangup", "kick",
              "conference_hangup", "conference_stop_play", "conference_info", "stop_record"}
ACT_ONCE = {"dial", "conference_dial", "say", "play", "record", "send_dtmf", "capture_dtmf",
            "conference_say", "conference_play"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_action_has_one_spec(provider: str) -> None:
    table = platform_table(provider)
    assert set(table) == PROVIDER_ACTIONS
    supported = {action for action, spec in table.items() if spec.reconcile != "unsupported"}
    assert supported == capabilities(provider)  # the table and the capability list agree


@pytest.mark.parametrize("provider", PROVIDERS)
def test_idempotent_commands_are_resent_and_the_others_never_blindly(provider: str) -> None:
    table = platform_table(provider)
    for action, spec in table.items():
        if spec.reconcile == "unsupported":
            continue
        if action in IDEMPOTENT:
            assert spec.idempotent and spec.reconcile == "resend", action
        if action in ACT_ONCE:
            assert not spec.idempotent, action
            assert spec.reconcile in ("query", "awaited", "at_most_once", "in_reply"), action
        if spec.reconcile == "resend":
            assert spec.idempotent, action  # only idempotent commands are ever sent again blindly


def test_infobip_creates_are_reconciled_by_asking_and_each_query_exists() -> None:
    table = platform_table("infobip")
    queried = {action for action, spec in table.items() if spec.reconcile == "query"}
    assert queried == {"answer", "dial", "conference_create", "conference_join", "conference_dial"}
    assert set(FINDERS) == queried
    assert all(table[a].keyed for a in ("dial", "conference_dial", "conference_create"))


def test_sinch_callouts_wait_for_their_callbacks_rather_than_ring_twice() -> None:
    table = platform_table("sinch")
    assert table["dial"].reconcile == table["conference_dial"].reconcile == "awaited"
    assert table["conference_create"].reconcile == "local" and table["conference_create"].keyed


def test_already_so_answers_match_status_and_text() -> None:
    infobip = platform_table("infobip")
    answered = ProviderError("Call c-1 cannot be answered in state ESTABLISHED.", status=400)
    assert infobip["answer"].already(answered)
    assert not infobip["answer"].already(ProviderError("Bad request", status=400))
    joined = ProviderError("Call c-1 is already in conference f-1.", status=400)
    assert infobip["conference_join"].already(joined)
    assert infobip["hangup"].already(ProviderError("Call with ID c-1 not found.", status=404))
    assert not infobip["hangup"].already(ProviderError("Infobip answered HTTP 503", status=503))


@pytest.mark.parametrize("provider", ["infobip", "sinch"])
def test_a_participant_update_on_someone_gone_is_moot_not_a_failure(provider: str) -> None:
    """A resumed hold after the caller hung up must not fail the session: nothing is left to hold."""
    table = platform_table(provider)
    gone = ProviderError("Call c-1 not found.", status=404)
    for action in ("mute", "unmute", "hold", "resume"):
        assert table[action].already(gone), action
        assert not table[action].already(ProviderError("Bad request", status=400)), action


def test_readme_command_tables_are_the_generated_ones() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme_tables() in readme, "README's command tables are stale: paste readme_tables()"


def test_provider_error_tells_its_kind() -> None:
    refused = ProviderError("bad", status=400)
    throttled = ProviderError("slow down", retryable=True, status=429, retry_after=7.0)
    unknown = ProviderError("no answer", retryable=True, outcome_unknown=True)
    assert (refused.safe_to_resend, throttled.safe_to_resend, unknown.safe_to_resend) == (False, True, False)
    assert (throttled.retry_after, unknown.outcome_unknown) == (7.0, True)


async def test_the_executor_gives_each_command_its_key_and_resumes_after_an_unknown_outcome() -> None:
    flow = build_flow({"flow": "t", "version": 1, "initial": "start", "states": {
        "start": {"entry": [{"answer": {"call": "caller"}},
                            {"conference_create": {"name": "r", "as": "room"}}]},
    }})
    provider = RecordingProvider()
    provider.fail("conference_create", times=1, retryable=True, outcome_unknown=True)
    driver = await drive(flow, [event("call.received", call_id="c-1")], provider=provider)
    seq = driver.session.seq
    keys = [(c.action, c.key, c.resumed) for c in provider.commands]
    session_id = driver.session.id
    assert keys == [("answer", f"{session_id}:{seq}:0", False),
                    ("conference_create", f"{session_id}:{seq}:1", False),
                    ("conference_create", f"{session_id}:{seq}:1", True)]  # the retry asks first
