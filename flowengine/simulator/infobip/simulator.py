"""``InfobipSimulator``: a local Infobip Calls API with scripted remote parties.

sim = InfobipSimulator(clock, webhook_url="http://127.0.0.1:8080/webhooks/infobip", api_key="secret")
# serve sim.app on 127.0.0.1, then:
call_id = await sim.place_inbound_call(from_="447415784323", to="4592457976")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from flowengine.runtime.clock import Clock
from flowengine.simulator.base import ApiError
from flowengine.simulator.delivery import DeliveryPolicy
from flowengine.simulator.infobip.routes import InfobipRoutes
from flowengine.simulator.parties import PartyBook, PartyScript

# serviceException.messageId by HTTP status.
MESSAGE_IDS = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    429: "TOO_MANY_REQUESTS",
    500: "GENERAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


class InfobipSimulator(InfobipRoutes):
    """The Infobip Calls API, its events and its remote parties, on one aiohttp app.

    ``webhook_headers`` are added to every event POST (e.g. Basic auth for the subscription's security);
    ``webhook_hmac=(header, secret)`` adds a hex HMAC-SHA256 of the raw body (Infobip's exact HMAC header
    is unconfirmed, so both are configurable). ``basic_auth=(user, password)`` also admits Basic requests.
    """

    provider = "infobip"
    creates_call = re.compile(r"POST /calls/1/(calls|calls/[^/]+/connect|conferences/[^/]+/call|dialogs)$")

    def __init__(
        self,
        clock: Clock,
        *,
        webhook_url: str,
        api_key: str = "secret",
        parties: PartyBook | None = None,
        webhook_headers: Mapping[str, str] | None = None,
        webhook_hmac: tuple[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
        calls_configuration_id: str = "flowengine-sim",
        api_base_url: str = "http://127.0.0.1",
        inbound_ring_timeout: float = 60.0,
        missing_files: Iterable[str] = (),
        event_delay: float = 0.05,
        seed: int = 0,
        delivery: DeliveryPolicy | None = None,
    ) -> None:
        self.webhook_headers = dict(webhook_headers or {})
        self.webhook_hmac = webhook_hmac
        super().__init__(
            clock,
            webhook_url=webhook_url,
            parties=parties,
            signer=self._sign,
            event_delay=event_delay,
            seed=seed,
            delivery=delivery,
        )
        self.api_key = api_key
        self.basic_auth = basic_auth
        self.calls_configuration_id = calls_configuration_id
        self.api_base_url = api_base_url
        self.inbound_ring_timeout = inbound_ring_timeout
        self.missing_files = set(missing_files)
        self.configurations: dict[str, str] = {calls_configuration_id: calls_configuration_id}

    async def place_inbound_call(
        self,
        from_: str,
        to: str,
        script: PartyScript | None = None,
        *,
        calls_configuration_id: str | None = None,
    ) -> str:
        """A party calls ``to``: CALL_RECEIVED goes to the webhook; returns the call id."""
        configuration = calls_configuration_id or self.calls_configuration_id
        call = self.receive(from_, to, script or self.parties.script_for(from_), configuration)
        return call.id

    def snapshot(self) -> dict[str, Any]:
        """Every call and conference the simulator knows, ended ones included, in Infobip's JSON shapes."""
        return {
            "calls": {call_id: call.to_json() for call_id, call in self.calls.items()},
            "conferences": {
                conf_id: {
                    **conf.to_json(),
                    "finished": conf.finished,
                    "participants": [p.to_json() for p in conf.participants.values()],
                }
                for conf_id, conf in self.conferences.items()
            },
        }

    def render_error(self, error: ApiError) -> web.Response:
        exception: dict[str, Any] = {
            "messageId": MESSAGE_IDS.get(error.status, "GENERAL_ERROR"),
            "text": error.message,
        }
        if error.fields:
            exception["validationErrors"] = error.fields
        return web.json_response({"requestError": {"serviceException": exception}}, status=error.status)

    def authenticate(self, request: web.Request, raw: bytes) -> None:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme == "App" and hmac.compare_digest(credentials.strip().encode(), self.api_key.encode()):
            return
        if scheme == "Basic" and self.basic_auth is not None and self._basic_ok(credentials.strip()):
            return
        raise ApiError(401, "Invalid login details")

    def _basic_ok(self, credentials: str) -> bool:
        assert self.basic_auth is not None
        try:
            decoded = base64.b64decode(credentials, validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = ":".join(self.basic_auth).encode()
        return hmac.compare_digest(decoded, expected)

    def _sign(self, _path: str, raw: bytes) -> dict[str, str]:
        headers = dict(self.webhook_headers)
        if self.webhook_hmac is not None:
            header, secret = self.webhook_hmac
            headers[header] = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        return headers
