"""Infobip settings: environment, validation, and secrets kept out of repr."""

from __future__ import annotations

import pytest

from flowengine.errors import ConfigError
from flowengine.providers.infobip.adapter import InfobipAdapter
from flowengine.providers.infobip.client import InfobipClient
from flowengine.providers.infobip.config import InfobipSettings, RetryPolicy

ENV = {
    "INFOBIP_BASE_URL": "https://abc123.api.infobip.com/",
    "INFOBIP_API_KEY": "api-key-SECRET-1",
    "INFOBIP_CALLS_CONFIGURATION_ID": "cfg-1",
    "INFOBIP_WEBHOOK_USER": "hooks",
    "INFOBIP_WEBHOOK_PASSWORD": "password-SECRET-2",
    "INFOBIP_WEBHOOK_HMAC_SECRET": "hmac-SECRET-3",
    "INFOBIP_WEBHOOK_HMAC_HEADER": "X-Hub-Signature",
}


def test_from_env_reads_everything() -> None:
    settings = InfobipSettings.from_env(ENV)
    assert settings.base_url == "https://abc123.api.infobip.com"
    assert (settings.api_key, settings.calls_configuration_id) == ("api-key-SECRET-1", "cfg-1")
    assert (settings.webhook_user, settings.webhook_password) == ("hooks", "password-SECRET-2")
    assert (settings.hmac_secret, settings.hmac_header, settings.hmac_algorithm) == (
        "hmac-SECRET-3", "X-Hub-Signature", "sha256")
    assert settings.basic_auth_enabled and settings.hmac_enabled


def test_from_env_defaults() -> None:
    required = {k: ENV[k] for k in ("INFOBIP_BASE_URL", "INFOBIP_API_KEY", "INFOBIP_CALLS_CONFIGURATION_ID")}
    settings = InfobipSettings.from_env(required)
    assert settings.hmac_header == "X-Signature"
    assert not settings.webhook_auth_enabled


def test_from_env_names_what_is_missing() -> None:
    with pytest.raises(ConfigError, match="INFOBIP_API_KEY, INFOBIP_CALLS_CONFIGURATION_ID"):
        InfobipSettings.from_env({"INFOBIP_BASE_URL": "x.api.infobip.com", "INFOBIP_API_KEY": "  "})


def test_repr_never_shows_secrets() -> None:
    settings = InfobipSettings.from_env(ENV)
    texts = (repr(settings), str(settings), repr(InfobipAdapter(settings)), repr(InfobipClient(settings)))
    for text in texts:
        for secret in ("api-key-SECRET-1", "password-SECRET-2", "hmac-SECRET-3"):
            assert secret not in text
    assert "api_key=<set>" in repr(settings)
    assert "cfg-1" in repr(settings)


def test_bare_host_gets_https() -> None:
    settings = InfobipSettings(base_url="abc.api.infobip.com", api_key="k", calls_configuration_id="c")
    assert settings.base_url == "https://abc.api.infobip.com"
    local = InfobipSettings(base_url="http://127.0.0.1:8080/", api_key="k", calls_configuration_id="c")
    assert local.base_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize("overrides", [
    {"webhook_user": "u"},
    {"webhook_password": "p"},
    {"hmac_algorithm": "crc32"},
    {"hmac_header": ""},
    {"total_timeout": 0},
    {"api_key": ""},
])
def test_invalid_settings(overrides: dict[str, object]) -> None:
    values: dict[str, object] = {"base_url": "b", "api_key": "k", "calls_configuration_id": "c", **overrides}
    with pytest.raises(ConfigError):
        InfobipSettings(**values)  # type: ignore[arg-type]


def test_retry_policy_is_validated() -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(attempts=0)
    with pytest.raises(ConfigError):
        RetryPolicy(base_delay=-1)
