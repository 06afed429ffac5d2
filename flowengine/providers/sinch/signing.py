"""Sinch request signing, used both ways: the adapter signs its API requests and verifies callbacks, the
simulator verifies requests and signs callbacks.

    Content-MD5   = Base64(MD5(body))                        ("" when there is no body)
    StringToSign  = VERB \\n Content-MD5 \\n Content-Type \\n "x-timestamp:" timestamp \\n path
    Signature     = Base64(HMAC-SHA256(Base64Decode(applicationSecret), StringToSign))
    Authorization = "Application " applicationKey ":" Signature     (plus the x-timestamp header)

The content type is signed byte for byte as sent; the path has no host and no query. Sinch may send the
scheme in lower case, and also allows Basic ``applicationKey:applicationSecret``. Pure functions only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


def content_md5(body: bytes) -> str:
    """Base64 of the body's MD5, or "" for an empty body."""
    if not body:
        return ""
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def string_to_sign(method: str, md5: str, content_type: str, timestamp: str, path: str) -> str:
    return f"{method.upper()}\n{md5}\n{content_type}\nx-timestamp:{timestamp}\n{path}"


def sign(application_secret: str, message: str) -> str:
    """Base64 HMAC-SHA256 of ``message`` keyed with the base64-decoded secret."""
    key = base64.b64decode(application_secret)
    return base64.b64encode(hmac.new(key, message.encode(), hashlib.sha256).digest()).decode()


def signed_headers(
    application_key: str,
    application_secret: str,
    *,
    method: str,
    path: str,
    body: bytes,
    content_type: str,
    timestamp: str,
) -> dict[str, str]:
    """The headers of a signed request (Authorization, x-timestamp, Content-Type)."""
    message = string_to_sign(method, content_md5(body), content_type, timestamp, path)
    headers = {
        "Authorization": f"Application {application_key}:{sign(application_secret, message)}",
        "x-timestamp": timestamp,
    }
    if content_type:
        headers["Content-Type"] = content_type
    return headers


def basic_header(application_key: str, application_secret: str) -> str:
    return "Basic " + base64.b64encode(f"{application_key}:{application_secret}".encode()).decode()


@dataclass(frozen=True)
class Credentials:
    """What an Authorization header claims: ``scheme`` is "application" or "basic"; ``proof`` is the
    signature (application) or the secret (basic)."""

    scheme: str
    key: str
    proof: str


def parse_authorization(header: str | None) -> Credentials | None:
    """None when the header is missing or not one of the two schemes (Sinch's 40301)."""
    scheme, _, rest = (header or "").strip().partition(" ")
    rest = rest.strip()
    if scheme.lower() == "application":
        key, sep, signature = rest.partition(":")
        return Credentials("application", key, signature) if sep and key and signature else None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(rest, validate=True).decode()
        except (binascii.Error, ValueError):
            return None
        key, sep, secret = decoded.partition(":")
        return Credentials("basic", key, secret) if sep else None
    return None


def verify(
    headers: Mapping[str, str],
    *,
    application_key: str,
    application_secret: str,
    method: str,
    path: str,
    body: bytes,
    allow_basic: bool = True,
    max_skew: float | None = None,
    now: float | None = None,
) -> bool:
    """True if the request is signed (or Basic-authenticated) with these credentials. ``max_skew``
    seconds bounds the distance between ``x-timestamp`` and ``now``, either way (the adapter always asks
    for it, ``SINCH_CALLBACK_MAX_SKEW``; the simulator, like Sinch as far as is known, does not)."""
    lower = {k.lower(): v for k, v in headers.items()}
    credentials = parse_authorization(lower.get("authorization"))
    if credentials is None:
        return False
    key_ok = hmac.compare_digest(credentials.key.encode(), application_key.encode())
    if credentials.scheme == "basic":
        secret_ok = hmac.compare_digest(credentials.proof.encode(), application_secret.encode())
        return allow_basic and key_ok and secret_ok
    timestamp = lower.get("x-timestamp")
    if timestamp is None or not _fresh(timestamp, max_skew, now):
        return False
    message = string_to_sign(method, content_md5(body), lower.get("content-type", ""), timestamp, path)
    try:
        expected = sign(application_secret, message)
    except (binascii.Error, ValueError):
        return False
    return key_ok and hmac.compare_digest(credentials.proof.encode(), expected.encode())


def _fresh(timestamp: str, max_skew: float | None, now: float | None) -> bool:
    if max_skew is None:
        return True
    try:
        sent = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    return now is not None and abs(now - sent) <= max_skew
