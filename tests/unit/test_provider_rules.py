"""The capability tables' checks (``flow/rules/provider.py``): where Sinch takes an action is followed
along every path into its state, through ``always``, flow-level handlers and the events that follow at
once from an action in the same reply; parameters and timeouts; what is not known until run time is not
judged. Infobip takes everything over REST: the same flows pass there."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowengine.config import parse_config
from flowengine.errors import ConfigError
from flowengine.flow.loader import load_flow
from flowengine.flow.platform import Constraint, Platform
from flowengine.providers import PROVIDERS, platform
from flowengine.providers.capability_doc import readme_provider_table
from flowengine.server.flows import load_flows

SINCH, INFOBIP = platform("sinch"), platform("infobip")
HEAD = "flow: t\ninitial: answering\nstates:\n"
ANSWERING = """  answering:
    entry: [{answer: {call: caller}}]
    on: {call.answered: opening}
    after: {10s: done}
"""
DONE = "  done: {type: final}\n"


def check(states: str, table: Platform = SINCH, head: str = HEAD) -> list[tuple[str, str]]:
    result = load_flow(head + states + DONE, platform=table)
    return [(d.rule, d.message) for d in result.diagnostics]


def rules(states: str, table: Platform = SINCH, head: str = HEAD) -> list[str]:
    return [rule for rule, _ in check(states, table, head)]


def test_a_join_in_the_ices_reply_passes_and_after_a_timer_does_not() -> None:
    opening = """  opening:
    entry: [{conference_create: {as: room}}, {conference_join: {conference: room, call: caller}}]
    on: {participant.joined: done}
    after: {5s: opening}
"""
    found = check(ANSWERING + opening)
    assert [rule for rule, _ in found] == ["provider-place"]
    assert 'the "5s" timer in state "opening"' in found[0][1] and "call.answered" not in found[0][1]
    assert rules(ANSWERING + opening, INFOBIP) == []


def test_always_keeps_the_event_that_led_into_its_state() -> None:
    relay = """  opening:
    always: [{target: joining}]
  joining:
    entry: [{conference_create: {as: room}}, {conference_join: {conference: room, call: caller}}]
    on: {participant.joined: done}
    after: {5s: done}
"""
    assert rules(ANSWERING + relay) == []  # call.answered (in the ICE's reply) -> always -> joining
    late = relay.replace("  opening:\n    always:",
                         "  opening:\n    after: {1s: relay}\n  relay:\n    always:")
    found = check(ANSWERING + late)
    assert [r for r, _ in found] == ["provider-place"] and 'the "1s" timer in state "opening"' in found[0][1]


def test_an_event_that_follows_at_once_carries_the_reply_its_action_ran_in() -> None:
    """conference.created is derived at once from conference_create, within the same callback."""
    created = """  opening:
    entry: [{conference_create: {as: room}}]
    on: {conference.created: joining}
    after: {5s: done}
  joining:
    entry: [{conference_join: {conference: room, call: caller}}]
    on: {participant.joined: done}
    after: {5s: done}
"""
    assert rules(ANSWERING + created) == []
    on_a_timer = created.replace("on: {call.answered: opening}", "on: {call.answered: waiting}")
    waiting = "  waiting:\n    after: {2s: opening}\n"
    found = check(ANSWERING.replace("call.answered: opening", "call.answered: waiting") + waiting + created)
    assert [r for r, _ in found] == ["provider-place"], on_a_timer
    assert '"conference.created" in state "opening"' in found[0][1]


def test_a_flow_level_handler_is_followed_in_every_state_it_covers() -> None:
    head = HEAD.replace("states:\n", "on:\n  participant.joined: rejoin\nstates:\n")
    states = ANSWERING + """  opening:
    entry: [{conference_create: {as: room}}, {conference_join: {conference: room, call: caller}}]
    after: {5s: done}
  rejoin:
    entry: [{conference_join: {conference: room, call: caller}}]
    after: {5s: done}
"""
    found = check(states, head=head)
    # participant.joined after a conference_join is the adapter's later follow-up: no reply to put it in.
    assert [r for r, _ in found] == ["provider-place"] and '"participant.joined" in state' in found[0][1]


def test_keys_are_a_menus_pie_unless_a_conference_may_be_listening() -> None:
    menu = """  opening:
    entry: [{capture_dtmf: {call: caller, max_digits: 1, timeout: 5s}}]
    on: {dtmf.captured: joining}
    after: {10s: done}
  joining:
    entry: [{conference_create: {as: room}}, {conference_join: {conference: room, call: caller}}]
    on: {participant.joined: done}
    after: {5s: done}
"""
    assert rules(ANSWERING + menu) == []
    # Once the caller may be in a conference, keys come from its key detection, which takes no reply.
    looping = menu.replace("on: {participant.joined: done}", "on: {participant.joined: opening}")
    assert rules(ANSWERING + looping) == ["provider-place"]


def test_the_session_starts_in_the_reply_to_the_callers_ice_only() -> None:
    other = """  answering:
    entry: [{answer: {call: caller}}, {answer: {call: agent}}]
    on: {call.answered: done}
    after: {10s: done}
"""
    found = check(other)
    assert [r for r, _ in found] == ["provider-place", "role"]
    assert '"call.received", which starts the session (about call "caller")' in found[0][1]


def test_a_reply_is_closed_by_its_one_action_unless_that_action_may_be_skipped() -> None:
    opening = """  opening:
    entry:
      - conference_create: {as: room}
      - capture_dtmf: {call: caller, max_digits: 1, timeout: 5s}
      - conference_join: {conference: room, call: caller}
    on: {participant.joined: done, dtmf.captured: done}
    after: {10s: done}
"""
    found = check(ANSWERING + opening)
    assert [r for r, _ in found] == ["provider-place"] and '"capture_dtmf" before it' in found[0][1]
    guarded = opening.replace("timeout: 5s}\n", "timeout: 5s, if: \"vars.ask\"}\n")
    assert guarded != opening
    head = "flow: t\nvars: {ask: false}\ninitial: answering\nstates:\n"
    assert rules(ANSWERING + guarded, head=head) == []  # the menu may not run: the reply may still be open


def test_templated_values_are_judged_at_run_time_not_here() -> None:
    states = """  answering:
    entry: [{dial: {to: "{{ vars.agent }}", connect: caller, as: agent}}]
    on: {call.answered: done, call.failed: asking}
    after: {10s: done}
  asking:
    entry: [{capture_dtmf: {call: caller, max_digits: 2, timeout: 5s, terminator: "{{ vars.end }}"}}]
    on: {dtmf.captured: done}
    after: {10s: done}
"""
    head = "flow: t\nvars: {end: '*', agent: {sip: a@b}}\ninitial: answering\nstates:\n"
    assert rules(states, head=head) == [] and rules(states, INFOBIP, head=head) == []
    literal = states.replace('"{{ vars.end }}"', '"*"').replace('"{{ vars.agent }}"', "{sip: a@b}")
    assert rules(literal, head=head) == ["provider-param", "provider-param"]


def test_serve_refuses_a_flow_its_platform_cannot_run(tmp_path: Path) -> None:
    flow = tmp_path / "f.yaml"
    flow.write_text(HEAD + """  answering:
    entry: [{say: {call: caller, text: Hello}}]
    on: {say.finished: joining}
    after: {10s: done}
  joining:
    entry: [{answer: {call: caller}}, {conference_create: {as: room}},
            {conference_join: {conference: room, call: caller}}]
    on: {participant.joined: done}
    after: {10s: done}
""" + DONE)
    refused = r'provider "sinch" runs "answer" only in the reply.*provider-place'
    with pytest.raises(ConfigError, match=refused):
        load_flows(parse_config({"provider": "sinch", "default_flow": "f.yaml"}, base=tmp_path, environ={}))
    flows, _ = load_flows(parse_config({"provider": "infobip", "default_flow": "f.yaml"}, base=tmp_path,
                                       environ={}))
    assert list(flows) == ["t"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_table_names_real_actions_and_parameters(provider: str) -> None:
    table = platform(provider)
    table.check()
    assert len(set(table.row_ids())) == len(table.row_ids())
    bad = Platform("x", "x", {}, (Constraint("x/a", "record", "param", "t", param="nope"),))
    with pytest.raises(ValueError, match="x/a"):
        bad.check()


def test_readme_provider_table_is_the_generated_one() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert readme_provider_table() in readme, "stale README provider table: paste readme_provider_table()"
    for provider in PROVIDERS:  # every row shows, in the platform's own words
        for row in platform(provider).constraints:
            assert row.text in readme, row.id
