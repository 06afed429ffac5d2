"""The service configuration: schema, ${VAR} expansion, clear errors, the published schema file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowengine.cli import cli
from flowengine.config import CONFIG_SCHEMA, ServerLimits, load_config, parse_config
from flowengine.errors import ConfigError
from flowengine.server.flows import load_flows

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_loads_with_secrets_from_the_environment() -> None:
    config = load_config(ROOT / "flowengine.example.yaml",
                         environ={"INFOBIP_API_KEY": "k-123", "FLOWENGINE_API_TOKEN": "t" * 24})
    assert config.provider == "infobip"
    assert config.provider_settings["api_key"] == "k-123"
    assert config.provider_settings["base_url"] == "https://api.infobip.com"  # the ${VAR:-default}
    assert config.routes[0].flow == ROOT / "flows" / "two_party_conference.yaml"
    assert config.store == "sqlite:///flowengine.db"
    assert config.api_tokens == ("t" * 24,)


def test_every_problem_is_listed_with_where_it_is() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"provider": "twilio", "listen": {"port": "x"}, "routes": [{"to": 1}]}, environ={})
    # where each problem is, not jsonschema's wording of it (that changes between its releases)
    places = sorted(line.split(": ")[1] for line in str(caught.value).splitlines())
    assert places == ["listen.port", "provider", "routes[0]", "routes[0].to"]


def test_an_unset_variable_is_named() -> None:
    with pytest.raises(ConfigError, match='environment variable "NOPE" is not set'):
        parse_config({"provider": "sinch", "sinch": {"application_key": "${NOPE}"}}, environ={})


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("provider: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_flows_are_checked_against_the_provider_at_start_up(tmp_path: Path) -> None:
    flow = (ROOT / "flows" / "two_party_conference.yaml").read_text()
    deafening = flow.replace(
        "      - resume: {conference: room, call: caller}   # the music stops\n",
        "      - deafen: {conference: room, call: caller}\n",
        1,
    )
    (tmp_path / "f.yaml").write_text(deafening)
    config = parse_config({"provider": "sinch", "default_flow": "f.yaml"}, base=tmp_path, environ={})
    with pytest.raises(ConfigError, match='provider "sinch" cannot perform action "deafen"'):
        load_flows(config)
    flows, router = load_flows(
        parse_config({"provider": "infobip", "default_flow": "f.yaml"}, base=tmp_path, environ={})
    )
    assert list(flows) == ["two-party-conference"] and router.default == "two-party-conference"


def test_published_config_schema_is_the_generated_one() -> None:
    published = json.loads((ROOT / "schemas" / "config.schema.json").read_text())
    assert published == CONFIG_SCHEMA
    printed = CliRunner().invoke(cli, ["schema", "--config"])
    assert printed.exit_code == 0 and json.loads(printed.stdout) == CONFIG_SCHEMA


def test_security_settings_default_to_closed() -> None:
    config = parse_config({"provider": "infobip"}, environ={})
    assert (config.insecure_webhooks, config.api_tokens, config.metrics_public) == (False, (), False)
    assert (config.log_numbers, config.replay_ttl) == ("masked", 3600.0)


def test_log_format_is_text_unless_the_config_says_json() -> None:
    assert parse_config({"provider": "infobip"}, environ={}).log_format == "text"
    assert parse_config({"provider": "infobip", "log_format": "json"}, environ={}).log_format == "json"
    assert "--log-format [text|json]" in CliRunner().invoke(cli, ["serve", "--help"]).stdout


def test_api_tokens_come_from_the_environment_and_stay_out_of_repr() -> None:
    token = "t0ken-from-the-environment"
    config = parse_config({"provider": "infobip", "api_tokens": ["${FE_TOKEN}"], "metrics_public": True,
                           "insecure_webhooks": True, "log_numbers": "full", "replay_ttl": 900},
                          environ={"FE_TOKEN": token})
    assert config.api_tokens == (token,) and token not in repr(config)
    assert (config.metrics_public, config.insecure_webhooks, config.log_numbers, config.replay_ttl) == (
        True, True, "full", 900.0)


@pytest.mark.parametrize("document", [
    {"api_tokens": ["short"]},  # guessable
    {"api_tokens": ["${EMPTY:-}"]},  # an unset variable must not open the API to an empty token
    {"api_tokens": "one-token-not-a-list"},
    {"log_numbers": "some"},
    {"log_format": "logfmt"},
    {"replay_ttl": 0},
    {"insecure_webhooks": "yes"},
])
def test_bad_security_settings_are_refused(document: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        parse_config({"provider": "infobip", **document}, environ={})


def test_intake_and_connection_limits_have_defaults_and_are_checked() -> None:
    defaults = parse_config({"provider": "infobip"}, environ={})
    assert (defaults.max_depth, defaults.max_events) == (32, 10)
    assert defaults.server == ServerLimits(header_timeout=10, body_timeout=15, keepalive_timeout=75,
                                           max_connections=1000)
    set_ = parse_config({"provider": "infobip", "webhook": {"max_depth": 8, "max_events": 1},
                         "server": {"header_timeout": 2.5, "max_connections": 50}}, environ={})
    assert (set_.max_depth, set_.max_events) == (8, 1)
    assert set_.server == ServerLimits(header_timeout=2.5, max_connections=50)
    with pytest.raises(ConfigError) as caught:
        parse_config({"provider": "infobip", "webhook": {"max_depth": 500, "max_events": 0},
                      "server": {"body_timeout": 0, "max_connections": 0, "idle": 5}}, environ={})
    places = sorted(line.split(": ")[1] for line in str(caught.value).splitlines())
    assert places == ["server", "server.body_timeout", "server.max_connections", "webhook.max_depth",
                      "webhook.max_events"]
