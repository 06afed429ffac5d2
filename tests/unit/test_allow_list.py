"""``http_allow`` entries: strings keep working, ports are part of an entry (a bare host: 80 and 443),
objects say which ports and whether private addresses may be reached; addresses are judged by what
they are, IPv4-mapped IPv6 included."""

from __future__ import annotations

from typing import Any

import pytest

from flowengine.config import parse_config
from flowengine.errors import ConfigError
from flowengine.server.allow_list import AllowEntry, AllowList, address_refused, parse_entry


@pytest.mark.parametrize(("entry", "parsed"), [
    ("api.example.com", AllowEntry("api.example.com", frozenset({80, 443}))),
    ("API.Example.com.", AllowEntry("api.example.com", frozenset({80, 443}))),
    ("api.example.com:8080", AllowEntry("api.example.com", frozenset({8080}))),
    ("*.example.com", AllowEntry("*.example.com", frozenset({80, 443}))),
    ("[2001:db8::1]:8443", AllowEntry("2001:db8::1", frozenset({8443}))),
    ("2001:db8::1", AllowEntry("2001:db8::1", frozenset({80, 443}))),
    ("münchen.example", AllowEntry("xn--mnchen-3ya.example", frozenset({80, 443}))),
    ({"host": "127.0.0.1", "ports": [8081, 8082], "private": True},
     AllowEntry("127.0.0.1", frozenset({8081, 8082}), private=True)),
    ({"host": "[::1]"}, AllowEntry("::1", frozenset({80, 443}))),
])
def test_entries_parse(entry: Any, parsed: AllowEntry) -> None:
    assert parse_entry(entry) == parsed


@pytest.mark.parametrize("entry", [
    "api.example.com:0", "api.example.com:http", "host:99999", "[::1]x", "a/b", "user@host", "",
    {"host": "h", "ports": []}, {"host": "h", "ports": [0]}, {"host": "h", "private": "yes", "x": 1},
    {"ports": [80]}, 42,
])
def test_bad_entries_are_config_errors(entry: Any) -> None:
    with pytest.raises(ConfigError, match=r"http_allow\[0\]"):
        parse_entry(entry)


def test_matching_takes_ports_and_the_private_flag_into_account() -> None:
    allow = AllowList(["api.example.com", "*.crm.example.com:8443",
                       {"host": "api.example.com", "ports": [9000], "private": True}])
    assert allow.match("api.example.com", 443) == AllowEntry("api.example.com")
    assert allow.match("API.example.com.", 80) is not None
    assert allow.match("api.example.com", 22) is None and allow.hosts_allowed("api.example.com")
    assert allow.match("api.example.com", 9000) == AllowEntry("api.example.com", frozenset({9000}), True)
    assert allow.match("eu.crm.example.com", 8443) is not None
    assert allow.match("crm.example.com", 8443) is None and not allow.hosts_allowed("evil.io")


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
    ("10.1.2.3", "private or reserved"), ("192.168.0.10", "private or reserved"),
    ("172.16.5.4", "private or reserved"), ("100.64.0.1", "private or reserved"),
    ("fd00::1", "private or reserved"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"),
])
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    why = address_refused(address, private_ok=False)
    assert why is not None and kind in why
    if kind not in ("unspecified", "multicast"):
        assert address_refused(address, private_ok=True) is None
    else:  # never, whatever the entry says
        assert address_refused(address, private_ok=True) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111", "8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert address_refused(address, private_ok=False) is None


def test_the_config_takes_strings_and_objects_and_names_a_bad_entry() -> None:
    config = parse_config({"provider": "infobip", "http_allow": [
        "crm.example.com", {"host": "127.0.0.1", "ports": [8081], "private": True}],
        "http_timeout": 2.5, "http_max_bytes": 1000})
    assert config.http_allow[0] == "crm.example.com" and config.http_allow[1]["private"] is True
    assert (config.http_timeout, config.http_max_bytes) == (2.5, 1000)
    defaults = parse_config({"provider": "infobip"})
    assert (defaults.http_timeout, defaults.http_max_bytes) == (10.0, 1_048_576)
    with pytest.raises(ConfigError, match=r"http_allow\[1\]: port '0'"):
        parse_config({"provider": "infobip", "http_allow": ["ok.example.com", "bad.example.com:0"]})
    with pytest.raises(ConfigError, match="http_allow"):
        parse_config({"provider": "infobip", "http_allow": [{"host": "h", "secret": True}]})
