"""Sinch settings: environment, defaults, validation, secrets kept out of repr; capabilities as data."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flowengine.errors import ConfigError
from flowengine.flow.vocabulary import ACTIONS
from flowengine.providers.sinch import CAPABILITIES, SinchSettings

SECRET = "BeIukql3pTKJ8RGL5zo0DA=="


def test_from_env_reads_every_variable_and_defaults_the_rest() -> None:
    settings = SinchSettings.from_env(
        {
            "SINCH_APPLICATION_KEY": "app-key",
            "SINCH_APPLICATION_SECRET": SECRET,
            "SINCH_CLI": "+4592457976",
            "SINCH_CALLBACK_AUTH": "Basic",
            "SINCH_REQUEST_AUTH": "basic",
            "SINCH_CONFERENCE_MOH": "ring",
            "SINCH_CALLBACK_MAX_SKEW": "600",
        }
    )
    assert (settings.application_key, settings.application_secret, settings.base_url) == (
        "app-key",
        SECRET,
        "https://calling.api.sinch.com",
    )
    assert (settings.cli, settings.callback_auth, settings.request_auth) == ("+4592457976", "basic", "basic")
    assert (settings.conference_moh, settings.callback_max_skew) == ("ring", 600.0)
    minimal = SinchSettings.from_env(
        {
            "SINCH_APPLICATION_KEY": "k",
            "SINCH_APPLICATION_SECRET": SECRET,
            "SINCH_BASE_URL": "calling-euc1.api.sinch.com/",
        }
    )
    assert minimal.base_url == "https://calling-euc1.api.sinch.com"
    assert (minimal.callback_auth, minimal.request_auth, minimal.conference_moh) == (
        "signed",
        "signed",
        "music1",
    )
    silent = SinchSettings.from_env(
        {"SINCH_APPLICATION_KEY": "k", "SINCH_APPLICATION_SECRET": SECRET, "SINCH_CONFERENCE_MOH": "none"}
    )
    assert silent.conference_moh is None


def test_missing_variables_are_named() -> None:
    with pytest.raises(ConfigError, match="SINCH_APPLICATION_KEY, SINCH_APPLICATION_SECRET"):
        SinchSettings.from_env({"SINCH_APPLICATION_KEY": "  "})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"application_secret": "not base64!"}, "base64"),
        ({"callback_auth": "hmac"}, "signed or basic"),
        ({"request_auth": "oauth"}, "signed or basic"),
        ({"conference_moh": "jazz"}, "music on hold"),
        ({"total_timeout": 0}, "positive"),
        ({"callback_max_skew": -1}, "positive"),
        ({"conference_dtmf_max_digits": 0}, "conference keys"),
        ({"conference_dtmf_timeout": 0}, "conference keys"),
    ],
)
def test_invalid_settings_are_refused(overrides: dict[str, object], message: str) -> None:
    kwargs: dict[str, object] = {"application_key": "k", "application_secret": SECRET, **overrides}
    with pytest.raises(ConfigError, match=message):
        SinchSettings(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SINCH_CALLBACK_MAX_SKEW", "soon"),
        ("SINCH_CONFERENCE_DTMF_MAX_DIGITS", "1.5"),
        ("SINCH_CONFERENCE_DTMF_TIMEOUT", "3s"),
    ],
)
def test_bad_number_variables(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        SinchSettings.from_env(
            {"SINCH_APPLICATION_KEY": "k", "SINCH_APPLICATION_SECRET": SECRET, name: value}
        )


def test_conference_key_grouping_defaults_to_one_key_and_can_be_set() -> None:
    env = {"SINCH_APPLICATION_KEY": "k", "SINCH_APPLICATION_SECRET": SECRET}
    default = SinchSettings.from_env(env)
    assert (default.conference_dtmf_max_digits, default.conference_dtmf_timeout) == (1, 3.0)
    grouped = SinchSettings.from_env(
        {**env, "SINCH_CONFERENCE_DTMF_MAX_DIGITS": "4", "SINCH_CONFERENCE_DTMF_TIMEOUT": "2.5"}
    )
    assert (grouped.conference_dtmf_max_digits, grouped.conference_dtmf_timeout) == (4, 2.5)


def test_repr_hides_the_secret() -> None:
    settings = SinchSettings(application_key="app-key", application_secret=SECRET)
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert "application_secret=<set>" in repr(settings) and "app-key" in repr(settings)


def test_capabilities_are_neutral_actions_and_leave_out_what_sinch_cannot_do() -> None:
    assert set(CAPABILITIES) <= set(ACTIONS)
    missing = {name for name, spec in ACTIONS.items() if not spec.pure and name != "http"} - CAPABILITIES
    assert missing == {
        "stop_play",
        "deafen",
        "undeafen",
        "conference_say",
        "conference_play",
        "conference_stop_play",
        "conference_record",
        "conference_stop_record",
    }


def test_the_package_does_not_import_aiohttp_until_the_adapter_is_asked_for() -> None:
    code = (
        "import sys, flowengine.providers.sinch as s; assert s.CAPABILITIES; "
        "assert 'aiohttp' not in sys.modules; s.SinchAdapter; assert 'aiohttp' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
