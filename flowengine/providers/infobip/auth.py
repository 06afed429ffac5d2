"""Webhook authentication: Basic and HMAC, as Infobip subscriptions offer them.

Every configured method is enforced (configure the one your subscription uses). With none configured,
every webhook would be accepted: ``serve`` refuses to start so unless told ``insecure_webhooks``.

Freshness: an event's own ``timestamp`` more than ``webhook_max_skew`` seconds from now (either way) is
refused like a bad signature, so a captured body cannot be replayed once the service-wide memory of
events seen (``replay_ttl``, at least twice the window) has let it go. Events without a timestamp rely
on that memory alone.

HMAC: Infobip's header name and signing string for Calls webhooks are unconfirmed, so the header and
algorithm are settings. The signature is the HMAC of the raw body, hex (any case) or base64, optionally
prefixed with the algorithm (``sha256=...``, as GitHub-style senders do). Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable

from flowengine.errors import WebhookAuthError
from flowengine.providers.base import WebhookRequest, lower_headers
from flowengine.providers.infobip.config import InfobipSettings
from flowengine.runtime.events import Event


def sign(body: bytes, secret: str, algorithm: str = "sha256") -> str:
    """The hex signature a sender computes; also what tests and the simulator use."""
    return hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).hexdigest()


def _check_basic(header: str | None, user: str, password: str) -> None:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "basic" or not token:
        raise WebhookAuthError("missing Basic credentials")
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookAuthError("malformed Basic credentials") from exc
    given_user, sep, given_password = decoded.partition(b":")
    # Both compared even when the first differs, so timing says nothing about which one was wrong.
    user_ok = hmac.compare_digest(given_user, user.encode())
    password_ok = hmac.compare_digest(given_password, password.encode())
    if not (sep and user_ok and password_ok):
        raise WebhookAuthError("wrong Basic credentials")


def _check_hmac(header: str | None, body: bytes, secret: str, algorithm: str) -> None:
    if not header:
        raise WebhookAuthError("missing HMAC signature")
    given = header.strip()
    prefix, sep, rest = given.partition("=")
    if sep and prefix.lower().replace("-", "").replace("_", "") in (algorithm, "hmac" + algorithm):
        given = rest
    digest = hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).digest()
    as_hex = hmac.compare_digest(given.lower().encode(), digest.hex().encode())
    as_b64 = hmac.compare_digest(given.encode(), base64.b64encode(digest))
    if not (as_hex or as_b64):
        raise WebhookAuthError("wrong HMAC signature")


def verify(request: WebhookRequest, settings: InfobipSettings) -> None:
    """Raise ``WebhookAuthError`` unless the request passes every configured check."""
    headers = lower_headers(request.headers)
    if settings.webhook_user is not None and settings.webhook_password is not None:
        _check_basic(headers.get("authorization"), settings.webhook_user, settings.webhook_password)
    if settings.hmac_secret:
        _check_hmac(headers.get(settings.hmac_header.lower()), request.body, settings.hmac_secret,
                    settings.hmac_algorithm)


def check_fresh(events: Iterable[Event], now: float, max_skew: float) -> None:
    """Raise ``WebhookAuthError`` if an event's timestamp is more than ``max_skew`` seconds from ``now``."""
    for event in events:
        if event.at is not None and not abs(now - event.at) <= max_skew:
            raise WebhookAuthError(
                f"stale {event.name} event: its timestamp is {now - event.at:+.0f} s from now "
                f"(accepted: within {max_skew:g} s)"
            )
