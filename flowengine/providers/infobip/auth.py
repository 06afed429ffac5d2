"""Webhook authentication: Basic and HMAC, as Infobip subscriptions offer them.

Every configured method is enforced (configure the one your subscription uses). With none configured,
every webhook is accepted: the service warns about that at start-up (``settings.webhook_auth_enabled``).

HMAC: Infobip's header name and signing string for Calls webhooks are unconfirmed, so the header and
algorithm are settings. The signature is the HMAC of the raw body, hex (any case) or base64, optionally
prefixed with the algorithm (``sha256=...``, as GitHub-style senders do). Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from flowengine.errors import WebhookAuthError
from flowengine.providers.base import WebhookRequest, lower_headers
from flowengine.providers.infobip.config import InfobipSettings


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
