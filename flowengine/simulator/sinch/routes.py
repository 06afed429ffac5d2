"""The Sinch Calling API v1 routes under ``/calling/v1``."""

from __future__ import annotations

from aiohttp import web

from flowengine.simulator.base import ApiError, json_body, json_object
from flowengine.simulator.sinch.callouts import ILLEGAL, INVALID, MISSING, SinchCallouts, check_callout
from flowengine.simulator.sinch.svaml import MOH_CLASSES, Svaml, SvamlError, one_of, parse_svaml

CALL = "/calling/v1/calls/id/{callId}"
CONFERENCE = "/calling/v1/conferences/id/{conferenceId}"
COMMANDS = frozenset({"mute", "unmute", "onhold", "resume"})
LEGS = frozenset({"caller", "callee", "both"})


class SinchRoutes(SinchCallouts):
    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/calling/v1/callouts", self._callout)
        router.add_get(CALL, self._get_call)
        router.add_patch(CALL, self._update_call)
        router.add_patch(CALL + "/leg/{leg}", self._manage_leg)
        router.add_get(CONFERENCE, self._get_conference)
        router.add_delete(CONFERENCE, self._kick_all)
        router.add_patch(CONFERENCE + "/{callId}", self._manage_participant)
        router.add_delete(CONFERENCE + "/{callId}", self._kick_participant)

    async def _callout(self, request: web.Request) -> web.Response:
        call = self.callout(check_callout(await json_body(request)))
        return web.json_response({"callId": call.id})

    async def _get_call(self, request: web.Request) -> web.Response:
        call = self.known_call(request.match_info["callId"])
        return web.json_response(call.to_json(self.clock.now()))

    async def _update_call(self, request: web.Request) -> web.Response:
        """PATCH with SVAML (hangup, continue, park): replaces what the call is doing."""
        body = await json_object(request)
        call = self.ongoing_call(request.match_info["callId"])
        self.replace_activity(call, _svaml(body, "update"))
        return web.Response(status=200)

    async def _manage_leg(self, request: web.Request) -> web.Response:
        """PATCH …/leg/{caller|callee|both}: say / playFiles on a leg, alongside what the call does."""
        leg = request.match_info["leg"]
        if leg not in LEGS:
            raise ApiError(400, "Illegal parameter callLeg: must be caller, callee or both", code=ILLEGAL)
        svaml = _svaml(await json_object(request), "leg")
        call = self.ongoing_call(request.match_info["callId"])

        async def play() -> None:
            for step in svaml.instructions:
                await self.instruction(call, step)

        call.start(self.clock, play())
        return web.Response(status=200)

    async def _get_conference(self, request: web.Request) -> web.Response:
        conference = self.conference(request.match_info["conferenceId"])
        return web.json_response(conference.to_json(self.clock.now()))

    async def _kick_all(self, request: web.Request) -> web.Response:
        conference = self.conference(request.match_info["conferenceId"])
        self.kick(conference, list(conference.members))
        return web.Response(status=204)

    async def _manage_participant(self, request: web.Request) -> web.Response:
        body = await json_object(request)
        command, moh = body.get("command"), body.get("moh")
        if command is None:
            raise ApiError(400, "Missing parameter: command", code=MISSING)
        if not one_of(command, COMMANDS):
            raise ApiError(
                400, "Illegal parameter command: must be mute, unmute, onhold or resume", code=ILLEGAL
            )
        if moh is not None and (command != "onhold" or not one_of(moh, MOH_CLASSES)):
            raise ApiError(
                400, "Illegal parameter moh: ring, music1, music2 or music3, with onhold only", code=ILLEGAL
            )
        conference = self.conference(request.match_info["conferenceId"])
        self.manage_participant(conference, request.match_info["callId"], command, moh)
        return web.Response(status=200)

    async def _kick_participant(self, request: web.Request) -> web.Response:
        conference = self.conference(request.match_info["conferenceId"])
        self.kick(conference, [request.match_info["callId"]])
        return web.Response(status=200)


def _svaml(body: object, event: str) -> Svaml:
    try:
        return parse_svaml(body, event)
    except SvamlError as exc:
        raise ApiError(400, f"Invalid SVAML: {exc}", code=INVALID) from None
