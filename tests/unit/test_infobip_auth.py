"""Webhook security (Basic, HMAC) and the adapter's webhook intake."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from flowengine.errors import ConfigError, WebhookAuthError, WebhookError
from flowengine.providers.base import WebhookRequest
from flowengine.providers.infobip.adapter import InfobipAdapter
from flowengine.providers.infobip.auth import sign, verify
from flowengine.providers.infobip.config import InfobipSettings
from flowengine.testing import ManualClock

BODY = json.dumps({"type": "CALL_ESTABLISHED", "callId": "call-1", "timestamp": "2024-05-02T10:15:30Z",
                   "properties": {"call": {"id": "call-1"}}}).encode()
SECRET = "s3cr3t-hmac"
BODY_TIME = datetime(2024, 5, 2, 10, 15, 30, tzinfo=UTC).timestamp()  # BODY's timestamp


def settings(**overrides: object) -> InfobipSettings:
    values: dict[str, object] = {"base_url": "abc.api.infobip.com", "api_key": "KEY",
                                 "calls_configuration_id": "cfg"}
    values.update(overrides)
    return InfobipSettings(**values)  # type: ignore[arg-type]


def request(headers: dict[str, str], body: bytes = BODY) -> WebhookRequest:
    return WebhookRequest(method="POST", path="/webhooks/infobip", headers=headers, body=body)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


BASIC = settings(webhook_user="infobip", webhook_password="pa:ss word")
HMAC = settings(hmac_secret=SECRET)


def test_no_auth_configured_accepts_everything() -> None:
    verify(request({}), settings())
    assert not settings().webhook_auth_enabled


def test_basic_auth_passes_with_the_right_credentials() -> None:
    verify(request({"Authorization": basic("infobip", "pa:ss word")}), BASIC)
    verify(request({"authorization": basic("infobip", "pa:ss word")}), BASIC)  # header names are case-blind
    assert BASIC.webhook_auth_enabled


@pytest.mark.parametrize("header", [
    None, "", "Basic", "Bearer abc", basic("infobip", "wrong"), basic("other", "pa:ss word"),
    "Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"no-colon").decode(),
])
def test_basic_auth_fails(header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    with pytest.raises(WebhookAuthError) as caught:
        verify(request(headers), BASIC)
    assert caught.value.status == 401


def test_hmac_passes_hex_prefixed_and_base64() -> None:
    digest = hmac.new(SECRET.encode(), BODY, hashlib.sha256).digest()
    hexed = digest.hex()
    as_b64 = base64.b64encode(digest).decode()
    signatures = (hexed, hexed.upper(), "sha256=" + hexed, "SHA256=" + hexed, as_b64)
    for signature in signatures:
        verify(request({"X-Signature": signature}), HMAC)
    assert sign(BODY, SECRET) == digest.hex()


@pytest.mark.parametrize(("headers", "body"), [
    ({}, BODY),  # missing header
    ({"X-Signature": ""}, BODY),
    ({"X-Signature": sign(BODY, "wrong-secret")}, BODY),  # wrong secret
    ({"X-Signature": sign(BODY, SECRET)}, BODY.replace(b"call-1", b"call-2")),  # tampered body
    ({"X-Signature": "sha1=" + sign(BODY, SECRET)}, BODY),  # wrong prefix
    ({"X-Other": sign(BODY, SECRET)}, BODY),  # wrong header
])
def test_hmac_fails(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(WebhookAuthError):
        verify(request(headers, body), HMAC)


def test_hmac_header_and_algorithm_are_configurable() -> None:
    custom = settings(hmac_secret=SECRET, hmac_header="X-Infobip-Signature", hmac_algorithm="HMAC_SHA_512")
    assert custom.hmac_algorithm == "sha512"
    verify(request({"x-infobip-signature": sign(BODY, SECRET, "sha512")}), custom)
    with pytest.raises(WebhookAuthError):
        verify(request({"X-Infobip-Signature": sign(BODY, SECRET)}), custom)  # sha256 is not sha512


def test_both_methods_configured_means_both_are_enforced() -> None:
    both = settings(webhook_user="u", webhook_password="p", hmac_secret=SECRET)
    verify(request({"Authorization": basic("u", "p"), "X-Signature": sign(BODY, SECRET)}), both)
    with pytest.raises(WebhookAuthError):
        verify(request({"Authorization": basic("u", "p")}), both)
    with pytest.raises(WebhookAuthError):
        verify(request({"X-Signature": sign(BODY, SECRET)}), both)


async def test_adapter_checks_auth_before_parsing() -> None:
    adapter = InfobipAdapter(HMAC, clock=ManualClock(BODY_TIME))
    with pytest.raises(WebhookAuthError):
        adapter.parse_webhook(request({}, b"not json at all"))
    with pytest.raises(WebhookError) as caught:
        adapter.parse_webhook(request({"X-Signature": sign(b"{oops", SECRET)}, b"{oops"))
    assert caught.value.status == 400
    [event] = adapter.parse_webhook(request({"X-Signature": sign(BODY, SECRET)}))
    assert (event.name, event.call_id) == ("call.answered", "call-1")
    channel = adapter.channel(event)
    assert channel.reply().status == 200 and channel.reply().body == b""
    assert channel.follow_ups() == []
    await adapter.close()


# -- freshness: an event's own timestamp -------------------------------------------------------------
def signed(body: bytes = BODY) -> WebhookRequest:
    return request({"X-Signature": sign(body, SECRET)}, body)


@pytest.mark.parametrize("late", [-300.0, 0.0, 120.0, 300.0])
def test_a_signed_event_within_five_minutes_of_its_timestamp_passes(late: float) -> None:
    [event] = InfobipAdapter(HMAC, clock=ManualClock(BODY_TIME + late)).parse_webhook(signed())
    assert event.at == BODY_TIME


@pytest.mark.parametrize("late", [-301.0, 301.0, 86_400.0, 2 * 365 * 86_400.0])
def test_a_well_signed_but_stale_event_is_refused(late: float) -> None:
    """A captured body keeps its signature for ever; its timestamp is what ages it."""
    with pytest.raises(WebhookAuthError) as caught:
        InfobipAdapter(HMAC, clock=ManualClock(BODY_TIME + late)).parse_webhook(signed())
    assert caught.value.status == 401 and "stale" in str(caught.value)


def test_one_stale_event_in_a_list_refuses_the_body() -> None:
    fresh = json.loads(BODY)
    stale = {**fresh, "callId": "call-2", "timestamp": "2024-05-02T09:00:00Z"}
    both = signed(json.dumps([fresh, stale]).encode())
    with pytest.raises(WebhookAuthError):
        InfobipAdapter(HMAC, clock=ManualClock(BODY_TIME)).parse_webhook(both)


def test_an_event_without_a_timestamp_relies_on_the_replay_memory() -> None:
    undated = json.dumps({"type": "CALL_ESTABLISHED", "callId": "call-1", "properties": {}}).encode()
    [event] = InfobipAdapter(HMAC, clock=ManualClock(BODY_TIME + 86_400)).parse_webhook(signed(undated))
    assert event.at is None


def test_the_window_is_a_setting() -> None:
    wide_settings = settings(hmac_secret=SECRET, webhook_max_skew=7200)
    wide = InfobipAdapter(wide_settings, clock=ManualClock(BODY_TIME + 3600))
    assert wide.parse_webhook(signed()) and wide.replay_window == 7200
    assert InfobipSettings.from_env({"INFOBIP_BASE_URL": "x", "INFOBIP_API_KEY": "k",
                                     "INFOBIP_CALLS_CONFIGURATION_ID": "c",
                                     "INFOBIP_WEBHOOK_MAX_SKEW": "60"}).webhook_max_skew == 60
    assert settings().webhook_max_skew == 300
    with pytest.raises(ConfigError):
        settings(webhook_max_skew=0)
