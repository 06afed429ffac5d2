"""Webhooks as the platform would send them to a ``running_stack`` engine: authenticated with the
credentials ``AUTHENTICATED`` sets up (an HMAC of the body for Infobip, Sinch's signature), so a test's
body reaches the parser rather than stopping at 401."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from flowengine.providers.infobip.auth import sign as infobip_sign
from flowengine.providers.sinch.signing import signed_headers
from flowengine.scenarios.stack import Stack
from flowengine.simulator.sinch.simulator import SinchSimulator

SECRET = "test-hmac-secret"


def authenticated(provider: str) -> dict[str, Any]:
    """``running_stack`` options under which engine and simulator share webhook credentials."""
    if provider == "infobip":
        return {"settings": {"webhook_hmac_secret": SECRET},
                "simulator_options": {"webhook_hmac": ("X-Signature", SECRET)}}
    return {}  # Sinch callbacks are always signed with the application secret


def headers(stack: Stack, path: str, body: bytes, *, spoil: bool = False) -> dict[str, str]:
    """What the platform sends with ``body`` to ``path`` (credentials that fail when ``spoil``)."""
    if stack.provider == "infobip":
        return {"Content-Type": "application/json",
                "X-Signature": infobip_sign(body + (b"!" if spoil else b""), SECRET)}
    simulator = stack.simulator
    assert isinstance(simulator, SinchSimulator)
    stamp = datetime.fromtimestamp(stack.clock.now(), UTC).isoformat().replace("+00:00", "Z")
    return signed_headers(simulator.application_key, simulator.application_secret, method="POST",
                          path=unquote(path) + ("x" if spoil else ""), body=body,
                          content_type="application/json", timestamp=stamp)
