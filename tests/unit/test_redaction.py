"""One redaction helper: URL credentials, query values and fragments, Authorization values and
secret-looking pairs are masked wherever they appear; what says where (scheme, host, port, path, query
names, header schemes) stays."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import pytest

from flowengine.config import parse_config
from flowengine.errors import ConfigError
from flowengine.redaction import MASK, RedactingFormatter, redact, redact_json, redact_url
from flowengine.stores.base import open_store


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("redis://app:s3cret@h:6379/0?prefix=fe:", "redis://app:***@h:6379/0?prefix=***"),
    ("https://tok3n@github.com/x", "https://***@github.com/x"),
    ("https://crm.example.com/a/b?token=abc&x=1#frag", "https://crm.example.com/a/b?token=***&x=***#***"),
    ("https://crm.example.com/a?flag", "https://crm.example.com/a?flag=***"),
    ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ("sqlite:///tmp/sessions.db", "sqlite:///tmp/sessions.db"),
    ("http://127.0.0.1:80\\@evil.example/?t=1", "http://127.0.0.1:***@evil.example/?t=***"),
    ("not a url?secret=1", "not a url?secret=***"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(("text", "shown"), [
    ("invalid store URL 'redis://:pw1@h:6379/x': bad", "invalid store URL 'redis://:***@h:6379/x': bad"),
    ("GET https://x.example/?q=1).", "GET https://x.example/?q=***)."),
    ("{'Authorization': 'App 0123456789abcdef0123'}", "{'Authorization': 'App ***'}"),
    ("authorization=Negotiate abc", "authorization=Negotiate ***"),
    ("sent with Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "sent with Bearer ***"),
    ('api_key=XYZ password: hunter2 token="abc" client_secret=q',
     'api_key=*** password: *** token="***" client_secret=***'),
    ("webhook refused: 401 authorization failed", "webhook refused: 401 authorization failed"),
    ("unknown key: foo; App settings", "unknown key: foo; App settings"),
    ("", ""),
])
def test_redact_text(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_redact_is_idempotent() -> None:
    once = redact("https://u:p@h/?a=1 Authorization: Bearer abcdefghijklmnopqrst password=x")
    assert redact(once) == once and "u:p@" not in once and once.count(MASK) == 4


def test_redact_json_masks_every_string_and_leaves_the_rest() -> None:
    value = {"url": "https://h/?token=t", "n": 3, "list": ["password=x", None, True], "plain": "hello"}
    assert redact_json(value) == {"url": "https://h/?token=***", "n": 3, "list": ["password=***", None, True],
                                  "plain": "hello"}


def test_the_log_formatter_redacts_messages_arguments_and_tracebacks() -> None:
    formatter = RedactingFormatter("%(message)s")
    try:
        raise ValueError("cannot reach redis://:pw9@h:1/0")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "store %s failed", ("redis://:pw9@h/0",),
                                   exc_info=sys.exc_info())
    text = formatter.format(record)
    assert "pw9" not in text and "redis://:***@h:1/0" in text and "Traceback" in text


@pytest.mark.parametrize(("load", "shown"), [
    (lambda: parse_config({"provider": "infobip", "store": "mysql://app:pw9@db/x"}), "mysql://app:***@db/x"),
    (lambda: open_store("redis://:pw9@127.0.0.1:6379/0?lock_wait=soon"), "redis://:***@127.0.0.1:6379/0"),
    (lambda: open_store("sqlite:///x.db?key=pw9"), "sqlite:///x.db?key=***"),
    (lambda: open_store("postgres://u:pw9@h/db"), "postgres://u:***@h/db"),
])
def test_store_and_config_errors_do_not_echo_passwords(load: Callable[[], object], shown: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load()
    assert "pw9" not in str(caught.value) and shown in str(caught.value)
