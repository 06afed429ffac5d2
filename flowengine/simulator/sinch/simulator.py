"""``SinchSimulator``: a local Sinch Calling API v1 with scripted remote parties.

Requests to it must be signed (``Application key:signature`` + ``x-timestamp``) or use Basic
``applicationKey:applicationSecret``; the callbacks it sends (ICE, ACE, DiCE, PIE, Notify) are signed the
same way, and the SVAML replies to ICE, ACE and PIE are obeyed.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any

from aiohttp import web

from flowengine.providers.sinch import signing
from flowengine.runtime.clock import Clock
from flowengine.simulator.base import ApiError
from flowengine.simulator.delivery import DeliveryPolicy
from flowengine.simulator.parties import PartyBook, PartyScript
from flowengine.simulator.sinch.model import iso
from flowengine.simulator.sinch.routes import SinchRoutes

# Sinch errorCode by HTTP status, when the handler did not pick a more specific one.
ERROR_CODES = {400: 40003, 401: 40108, 403: 40301, 404: 40400, 405: 40003, 500: 50000, 503: 50000}
DEFAULT_SECRET = base64.b64encode(b"flowengine-simulator").decode()


class SinchSimulator(SinchRoutes):
    """The Sinch Calling API, its callbacks and its remote parties, on one aiohttp app."""

    provider = "sinch"
    creates_call = re.compile(r"POST /calling/v1/callouts$")

    def __init__(
        self,
        clock: Clock,
        *,
        callback_url: str,
        application_key: str = "flowengine-sim",
        application_secret: str = DEFAULT_SECRET,
        parties: PartyBook | None = None,
        api_base_url: str = "http://127.0.0.1",
        inbound_ring_timeout: float = 60.0,
        callout_ring_timeout: float = 60.0,
        park_max_duration: float = 600.0,
        allow_basic: bool = True,
        event_delay: float = 0.05,
        seed: int = 0,
        delivery: DeliveryPolicy | None = None,
    ) -> None:
        try:
            base64.b64decode(application_secret, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("Sinch application secrets are base64; this one is not") from None
        self.application_key = application_key
        self.application_secret = application_secret
        super().__init__(
            clock,
            webhook_url=callback_url,
            parties=parties,
            signer=self._sign,
            event_delay=event_delay,
            seed=seed,
            delivery=delivery,
        )
        self.api_base_url = api_base_url
        self.inbound_ring_timeout = inbound_ring_timeout
        self.callout_ring_timeout = callout_ring_timeout
        self.park_max_duration = park_max_duration
        self.allow_basic = allow_basic

    async def place_inbound_call(self, from_: str, to: str, script: PartyScript | None = None) -> str:
        """A party calls ``to``: ICE goes to the callback URL and its SVAML reply is obeyed."""
        return self.receive(from_, to, script or self.parties.script_for(from_)).id

    def snapshot(self) -> dict[str, Any]:
        now = self.clock.now()
        return {
            "calls": {call_id: call.to_json(now) for call_id, call in self.calls.items()},
            "conferences": {conf_id: conf.to_json(now) for conf_id, conf in self.conferences.items()},
        }

    def render_error(self, error: ApiError) -> web.Response:
        body = {
            "status": error.status,
            "errorCode": error.code or ERROR_CODES.get(error.status, 50000),
            "message": error.message,
            "reference": str(uuid.uuid4()),  # random: errors must not shift the deterministic ids
        }
        return web.json_response(body, status=error.status)

    def authenticate(self, request: web.Request, raw: bytes) -> None:
        credentials = signing.parse_authorization(request.headers.get("Authorization"))
        if credentials is None or (credentials.scheme == "basic" and not self.allow_basic):
            raise ApiError(403, "Invalid authorization scheme.", code=40301)
        ok = signing.verify(
            request.headers,
            application_key=self.application_key,
            application_secret=self.application_secret,
            method=request.method,
            path=request.rel_url.raw_path,
            body=raw,
            allow_basic=self.allow_basic,
        )
        if not ok:
            raise ApiError(401, "Invalid credentials or signature.", code=40108)

    def _sign(self, path: str, raw: bytes) -> dict[str, str]:
        return signing.signed_headers(
            self.application_key,
            self.application_secret,
            method="POST",
            path=path,
            body=raw,
            content_type="application/json",
            timestamp=iso(self.clock.now()) or "",
        )
