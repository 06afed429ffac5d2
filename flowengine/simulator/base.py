"""What both platform simulators share: the aiohttp app and its middleware (clock, request log, fault
injection, authentication, platform-shaped errors), ordered webhooks, and the ``/_simulator/`` control API
that lets another process drive a standalone simulator.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import random
import re
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from aiohttp import web

from flowengine.runtime.clock import Clock
from flowengine.simulator.delivery import (
    PLATFORM_LANE,
    DeliveredEvent,
    DeliveryPolicy,
    HeaderSigner,
    WebhookSender,
)
from flowengine.simulator.faults import Faults as Faults  # re-exported: tests and tools import it here
from flowengine.simulator.legs import Leg
from flowengine.simulator.parties import PartyBook, PartyScript

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_simulator/"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """A platform error answer; each simulator renders it in its platform's error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        fields: Mapping[str, list[str]] | None = None,
        code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = dict(fields or {})
        self.code = code


@dataclass(frozen=True)
class RecordedRequest:
    """One API request the simulator received and the status it answered."""

    method: str
    path: str
    body: Any
    status: int
    at: float
    fault: str | None = None  # injected: throttle, error (not carried out); lost, slow (carried out)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def json_body(request: web.Request) -> Any:
    """The request's JSON body (``{}`` when empty); malformed JSON is a platform 400. (aiohttp caches
    the body, so reading it again after the middleware did is free.)"""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "Request body is not valid JSON.") from None


async def json_object(request: web.Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object.")
    return body


def _recorded_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class Simulator(abc.ABC):
    """Base of the platform simulators. Subclasses add the platform's routes, authentication, error body
    and call logic; this class owns the app, the logs and the control API."""

    provider: ClassVar[str]
    # "METHOD /path" of the requests that create a call, which the platform's rate limit counts.
    creates_call: ClassVar[re.Pattern[str] | None] = None

    def __init__(
        self,
        clock: Clock,
        *,
        webhook_url: str,
        parties: PartyBook | None = None,
        signer: HeaderSigner | None = None,
        event_delay: float = 0.05,
        seed: int = 0,
        delivery: DeliveryPolicy | None = None,
    ) -> None:
        self.clock = clock
        self.parties = parties if parties is not None else PartyBook()
        self.faults = Faults()
        # Where the app reaches this simulator (events carry it as apiBaseUrl / callResourceUrl).
        self.api_base_url = "http://127.0.0.1"
        self.requests: list[RecordedRequest] = []
        self.webhooks = WebhookSender(clock, webhook_url, signer=signer, delay=event_delay, policy=delivery)
        self._ids = random.Random(seed)
        self._app: web.Application | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # -- what each platform provides ------------------------------------------------------------
    @abc.abstractmethod
    def render_error(self, error: ApiError) -> web.Response:
        """The platform's error answer."""

    @abc.abstractmethod
    def authenticate(self, request: web.Request, raw: bytes) -> None:
        """Raise ``ApiError(401, ...)`` unless the request carries valid credentials."""

    @abc.abstractmethod
    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Register the platform's API routes."""

    @abc.abstractmethod
    async def place_inbound_call(self, from_: str, to: str, script: PartyScript | None = None) -> str:
        """A remote party calls ``to``; returns the new call id."""

    @abc.abstractmethod
    def legs(self) -> Iterable[Leg]:
        """Every call leg the simulator holds."""

    def live_calls(self) -> list[str]:
        """Ids of the calls still ringing or up."""
        return [leg.id for leg in self.legs() if not leg.ended]

    @abc.abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """``{"calls": {...}, "conferences": {...}}`` in the platform's wire shapes."""

    @abc.abstractmethod
    def clear_state(self) -> None:
        """Forget every call and conference."""

    # -- shared ---------------------------------------------------------------------------------
    @property
    def app(self) -> web.Application:
        if self._app is None:
            self._app = self._build_app()
        return self._app

    @property
    def events(self) -> list[DeliveredEvent]:
        return self.webhooks.events

    @property
    def webhook_url(self) -> str:
        return self.webhooks.url

    @webhook_url.setter
    def webhook_url(self, url: str) -> None:
        # Set once the application is listening: it and the simulator each need the other's address.
        self.webhooks.url = url

    def new_id(self) -> str:
        """Deterministic per seed, shaped like the platforms' UUIDs."""
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def emit(self, body: dict[str, Any], *, redeliver: bool = True) -> asyncio.Future[DeliveredEvent]:
        return self.webhooks.send(body, lane=self.lane_of(body), redeliver=redeliver)

    def lane_of(self, body: dict[str, Any]) -> str:
        """The delivery lane (``lanes.py``) of a webhook: each platform names the call or conference
        it is about; one lane for everything otherwise."""
        return PLATFORM_LANE

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Background work not tied to one leg (conference media); cancelled on reset and close."""
        task = self.clock.spawn(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def reset(self) -> None:
        for leg in list(self.legs()):
            leg.stop_tasks()
        for task in list(self._background):
            task.cancel()
        self.clear_state()
        self.webhooks.clear()
        self.requests.clear()

    async def close(self) -> None:
        tasks = [task for leg in self.legs() for task in leg.tasks] + list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.webhooks.close()

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        self._add_control_routes(app.router)
        self.add_routes(app.router)

        async def on_cleanup(_: web.Application) -> None:
            await self.close()

        app.on_cleanup.append(on_cleanup)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        with self.clock.busy():
            if request.path.startswith(CONTROL_PREFIX):
                return await handler(request)
            raw = await request.read()
            faults = self.faults
            before = faults.before(request.method, request.path)
            pattern = self.creates_call
            if before is None and pattern is not None and pattern.match(f"{request.method} {request.path}"):
                before = "throttle" if faults.over_create_rate(self.clock.now()) else None
            response = await self._respond(request, raw, handler, before)
            after = faults.after(request.method, request.path) if before is None else None
            self.requests.append(
                RecordedRequest(request.method, request.path, _recorded_body(raw), response.status,
                                self.clock.now(), before or after)
            )
            if after == "slow":
                await asyncio.sleep(faults.slow_seconds)
            elif after == "lost":
                return self._lose(request, response, faults)
            return response

    def _lose(self, request: web.Request, response: web.StreamResponse, faults: Faults) -> web.StreamResponse:
        """Carried out, and the answer lost on the way: the connection drops, or a 500 comes instead."""
        if faults.lost_as == 500:
            return self.render_error(ApiError(500, "Injected fault: internal error."))
        if request.transport is not None:
            request.transport.close()
        return response

    async def _respond(
        self, request: web.Request, raw: bytes, handler: Handler, fault: str | None
    ) -> web.StreamResponse:
        try:
            if self.faults.latency > 0:
                await asyncio.sleep(self.faults.latency)
            if fault == "error":
                raise ApiError(self.faults.error_status, "Injected fault: service unavailable.")
            if fault == "throttle":
                throttled = self.render_error(ApiError(429, "Injected fault: too many requests."))
                throttled.headers["Retry-After"] = f"{self.faults.retry_after:g}"
                return throttled
            self.authenticate(request, raw)
            return await handler(request)
        except ApiError as error:
            return self.render_error(error)
        except web.HTTPException as exc:
            message = "Resource not found." if exc.status == 404 else exc.reason
            return self.render_error(ApiError(exc.status, message))
        except Exception:  # a simulator bug must still answer in the platform's shape
            log.exception("simulator error on %s %s", request.method, request.path)
            return self.render_error(ApiError(500, "Internal error."))

    # -- control API (no auth, no faults: it is the test harness, not the platform) --------------
    def _add_control_routes(self, router: web.UrlDispatcher) -> None:
        p = CONTROL_PREFIX
        router.add_get(p + "health", self._ctl_health)
        router.add_post(p + "calls", self._ctl_place_call)
        router.add_get(p + "calls", self._ctl_calls)
        router.add_get(p + "conferences", self._ctl_conferences)
        router.add_get(p + "requests", self._ctl_requests)
        router.add_get(p + "events", self._ctl_events)
        router.add_get(p + "parties", self._ctl_parties)
        router.add_put(p + "parties", self._ctl_replace_parties)
        router.add_put(p + "parties/{number}", self._ctl_set_party)
        router.add_delete(p + "parties/{number}", self._ctl_remove_party)
        router.add_get(p + "faults", self._ctl_faults)
        router.add_put(p + "faults", self._ctl_set_faults)
        router.add_get(p + "delivery", self._ctl_delivery)
        router.add_put(p + "delivery", self._ctl_set_delivery)
        router.add_post(p + "reset", self._ctl_reset)

    async def _ctl_health(self, _: web.Request) -> web.Response:
        return web.json_response({"provider": self.provider, "now": self.clock.now()})

    async def _ctl_place_call(self, request: web.Request) -> web.Response:
        body = await _control_json(request)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("from"), str)
            or not isinstance(body.get("to"), str)
        ):
            return _control_error('expected {"from": "...", "to": "...", "script": {...}?}')
        try:
            script = PartyScript.from_dict(body["script"]) if body.get("script") is not None else None
        except ValueError as exc:
            return _control_error(str(exc))
        call_id = await self.place_inbound_call(body["from"], body["to"], script)
        return web.json_response({"callId": call_id}, status=201)

    async def _ctl_calls(self, _: web.Request) -> web.Response:
        return web.json_response(self.snapshot()["calls"])

    async def _ctl_conferences(self, _: web.Request) -> web.Response:
        return web.json_response(self.snapshot()["conferences"])

    async def _ctl_requests(self, _: web.Request) -> web.Response:
        return web.json_response([r.to_dict() for r in self.requests])

    async def _ctl_events(self, _: web.Request) -> web.Response:
        return web.json_response(list(self.events))

    async def _ctl_parties(self, _: web.Request) -> web.Response:
        return web.json_response(self.parties.to_dict())

    async def _ctl_replace_parties(self, request: web.Request) -> web.Response:
        try:
            book = PartyBook.from_dict(await _control_json(request))
        except ValueError as exc:
            return _control_error(str(exc))
        self.parties = book
        return web.json_response(book.to_dict())

    async def _ctl_set_party(self, request: web.Request) -> web.Response:
        try:
            script = PartyScript.from_dict(await _control_json(request))
        except ValueError as exc:
            return _control_error(str(exc))
        number = request.match_info["number"]
        if number == "default":
            self.parties.default = script
        else:
            self.parties.set(number, script)
        return web.json_response(script.to_dict())

    async def _ctl_remove_party(self, request: web.Request) -> web.Response:
        if not self.parties.remove(request.match_info["number"]):
            return _control_error("no script for that number", status=404)
        return web.Response(status=204)

    async def _ctl_faults(self, _: web.Request) -> web.Response:
        return web.json_response(self.faults.to_dict())

    async def _ctl_set_faults(self, request: web.Request) -> web.Response:
        try:
            self.faults = Faults.from_dict(await _control_json(request))
        except ValueError as exc:
            return _control_error(str(exc))
        return web.json_response(self.faults.to_dict())

    async def _ctl_delivery(self, _: web.Request) -> web.Response:
        return web.json_response(self.webhooks.policy.to_dict())

    async def _ctl_set_delivery(self, request: web.Request) -> web.Response:
        try:
            self.webhooks.policy = DeliveryPolicy.from_dict(await _control_json(request))
        except ValueError as exc:
            return _control_error(str(exc))
        return web.json_response(self.webhooks.policy.to_dict())

    async def _ctl_reset(self, _: web.Request) -> web.Response:
        self.reset()
        return web.Response(status=204)


async def _control_json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"{}")
    except ValueError:
        return None


def _control_error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)
