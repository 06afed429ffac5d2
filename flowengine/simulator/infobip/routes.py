"""The Infobip Calls API routes: paths, methods and status codes as the platform has them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from flowengine.simulator.base import ApiError, json_body
from flowengine.simulator.infobip.conferences import ConferenceOps
from flowengine.simulator.infobip.validation import (
    Checker,
    Dial,
    check_capture,
    check_conference,
    check_dial,
    check_hangup,
    check_media_update,
    check_object,
    check_play,
    check_say,
    check_send_dtmf,
)

CALL = "/calls/1/calls/{callId}"
CONFERENCE = "/calls/1/conferences/{conferenceId}"
ROLES = frozenset({"DEFAULT", "ADVISOR", "MONITOR", "LISTENER", "AUDITOR"})


def _action() -> web.Response:
    """``CallsActionResponse``: the platform accepted the action and will report with events."""
    return web.json_response({"status": "PENDING"})


class InfobipRoutes(ConferenceOps):
    """HTTP handlers; the call and conference logic lives in the mixins below this class."""

    configurations: dict[str, str]

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/calls/1/configurations", self._create_configuration)
        router.add_post("/calls/1/calls", self._create_call)
        router.add_get("/calls/1/calls", self._list_calls)
        router.add_get("/calls/1/calls/history", self._call_history)
        router.add_post("/calls/1/connect", self._connect_calls)
        router.add_get(CALL, self._get_call)
        for verb, handler in {
            "answer": self._answer,
            "hangup": self._hangup,
            "say": self._say,
            "play": self._play,
            "stop-play": self._stop_play,
            "start-recording": self._start_recording,
            "stop-recording": self._stop_recording,
            "capture/dtmf": self._capture_dtmf,
            "send-dtmf": self._send_dtmf,
            "connect": self._connect_new_call,
        }.items():
            router.add_post(f"{CALL}/{verb}", handler)
        router.add_post("/calls/1/conferences", self._create_conference)
        router.add_get("/calls/1/conferences", self._list_conferences)
        router.add_get(CONFERENCE, self._get_conference)
        router.add_patch(CONFERENCE, self._update_all)
        router.add_post(CONFERENCE + "/call", self._add_new_call)
        router.add_put(CONFERENCE + "/call/{callId}", self._add_existing_call)
        router.add_patch(CONFERENCE + "/call/{callId}", self._update_participant)
        router.add_delete(CONFERENCE + "/call/{callId}", self._remove_participant)
        router.add_post(CONFERENCE + "/hangup", self._hangup_conference)
        router.add_post(CONFERENCE + "/say", self._conference_say)
        router.add_post(CONFERENCE + "/play", self._conference_play)
        router.add_post(CONFERENCE + "/stop-play", self._conference_stop_play)
        router.add_post(CONFERENCE + "/start-recording", self._conference_start_recording)
        router.add_post(CONFERENCE + "/stop-recording", self._conference_stop_recording)

    # -- configurations and calls ---------------------------------------------------------------
    async def _create_configuration(self, request: web.Request) -> web.Response:
        check = Checker(check_object(await json_body(request)))
        config_id = check.string("id", max_len=128)
        name = check.string("name", max_len=128)
        check.done()
        config_id = config_id or self.new_id()
        self.configurations[config_id] = name or config_id
        return web.json_response({"id": config_id, "name": self.configurations[config_id]}, status=201)

    async def _create_call(self, request: web.Request) -> web.Response:
        check = Checker(check_object(await json_body(request)))
        dial = check_dial(check, needs_configuration=True)
        check.done()
        assert dial is not None and dial.calls_configuration_id is not None
        call = self.dial(dial, dial.calls_configuration_id)
        return web.json_response(call.to_json(), status=201)

    async def _list_calls(self, request: web.Request) -> web.Response:
        """GET /calls/1/calls: the calls still up (``CallPage``), filtered as the API allows."""
        query = request.query
        calls = [c for c in self.calls.values() if not c.ended and _call_matches(
            query, c.direction, c.state, c.to, c.from_, [c.conference_id] if c.conference_id else [])]
        return _page(query, [call.to_json() for call in calls])

    async def _call_history(self, request: web.Request) -> web.Response:
        """GET /calls/1/calls/history: the calls that have ended (``CallLogPage``)."""
        query = request.query
        calls = [c for c in self.calls.values() if c.ended and _call_matches(
            query, c.direction, c.state, c.to, c.from_, c.conference_ids)]
        return _page(query, [call.log_json() for call in calls])

    async def _list_conferences(self, request: web.Request) -> web.Response:
        """GET /calls/1/conferences: the live conferences (``CallsConferencePage``), by name or call."""
        query = request.query
        found = [
            conference for conference in self.conferences.values()
            if not conference.finished and query.get("name", conference.name) == conference.name
            and ("callId" not in query or query["callId"] in conference.participants)
        ]
        return _page(query, [conference.to_json() for conference in found])

    async def _get_call(self, request: web.Request) -> web.Response:
        return web.json_response(self.live_call(request.match_info["callId"]).to_json())

    async def _answer(self, request: web.Request) -> web.Response:
        check = Checker(check_object(await json_body(request)))
        custom = check.string_map("customData")
        check.obj("recording")
        check.done()
        call = self.live_call(request.match_info["callId"])
        self.answer(call, custom)
        if "recording" in check.body:
            self.start_recording(call)
        return _action()

    async def _hangup(self, request: web.Request) -> web.Response:
        code = check_hangup(await json_body(request))
        call = self.live_call(request.match_info["callId"])
        self.hangup(call, code)
        return web.json_response(call.to_json())

    async def _say(self, request: web.Request) -> web.Response:
        media = check_say(await json_body(request))
        self.start_media(self.established_call(request.match_info["callId"]), media)
        return _action()

    async def _play(self, request: web.Request) -> web.Response:
        media = check_play(await json_body(request))
        self.start_media(self.established_call(request.match_info["callId"]), media)
        return _action()

    async def _stop_play(self, request: web.Request) -> web.Response:
        check_object(await json_body(request))
        self.stop_media(self.live_call(request.match_info["callId"]))
        return _action()

    async def _start_recording(self, request: web.Request) -> web.Response:
        check_object(await json_body(request))
        self.start_recording(self.established_call(request.match_info["callId"]))
        return _action()

    async def _stop_recording(self, request: web.Request) -> web.Response:
        call = self.live_call(request.match_info["callId"])
        if not call.recording:
            raise ApiError(400, f"Call {call.id} is not being recorded.")
        self.stop_recording(call)
        return _action()

    async def _capture_dtmf(self, request: web.Request) -> web.Response:
        capture = check_capture(await json_body(request))
        self.capture_dtmf(self.established_call(request.match_info["callId"]), capture)
        return _action()

    async def _send_dtmf(self, request: web.Request) -> web.Response:
        check_send_dtmf(await json_body(request))
        self.established_call(request.match_info["callId"])
        return _action()

    async def _connect_calls(self, request: web.Request) -> web.Response:
        body = check_object(await json_body(request))
        ids = body.get("callIds")
        if not isinstance(ids, list) or len(ids) < 2 or not all(isinstance(i, str) for i in ids):
            raise ApiError(400, "Bad request", fields={"callIds": ["size must be at least 2"]})
        name, _, max_duration = _conference_options(body)
        conference = self.connect([self.live_call(i) for i in ids], name, max_duration)
        return web.json_response(conference.to_json())

    async def _connect_new_call(self, request: web.Request) -> web.Response:
        body = check_object(await json_body(request))
        dial = _nested_dial(body)
        name, _, max_duration = _conference_options(body)
        parent = self.established_call(request.match_info["callId"])
        conference = self.connect([parent], name, max_duration)
        call = self.dial_into(conference, dial)
        call.parent_call_id = parent.id
        return web.json_response({"conference": conference.to_json(), "call": call.to_json()})

    # -- conferences ----------------------------------------------------------------------------
    async def _create_conference(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        name, configuration, max_duration = check_conference(body, needs_configuration=True)
        assert configuration is not None
        conference = self.create_conference(name, configuration, max_duration, body.get("platform"))
        return web.json_response(conference.to_json(), status=201)

    async def _get_conference(self, request: web.Request) -> web.Response:
        return web.json_response(self.live_conference(request.match_info["conferenceId"]).to_json())

    async def _update_all(self, request: web.Request) -> web.Response:
        flags = check_media_update(await json_body(request), with_role=False)
        self.update_participants(self.live_conference(request.match_info["conferenceId"]), flags, None)
        return _action()

    async def _add_new_call(self, request: web.Request) -> web.Response:
        body = check_object(await json_body(request))
        dial = _nested_dial(body)
        conference = self.live_conference(request.match_info["conferenceId"])
        call = self.dial_into(conference, dial, _role(body))
        return web.json_response({"conference": conference.to_json(), "call": call.to_json()})

    async def _add_existing_call(self, request: web.Request) -> web.Response:
        body = check_object(await json_body(request))
        conference = self.live_conference(request.match_info["conferenceId"])
        self.join(conference, self.live_call(request.match_info["callId"]), _role(body))
        return web.json_response(conference.to_json())

    async def _update_participant(self, request: web.Request) -> web.Response:
        flags = check_media_update(await json_body(request), with_role=True)
        conference = self.live_conference(request.match_info["conferenceId"])
        self.update_participants(conference, flags, request.match_info["callId"])
        return _action()

    async def _remove_participant(self, request: web.Request) -> web.Response:
        conference = self.live_conference(request.match_info["conferenceId"])
        self.remove(conference, request.match_info["callId"])
        return _action()

    async def _hangup_conference(self, request: web.Request) -> web.Response:
        conference = self.live_conference(request.match_info["conferenceId"])
        self.hangup_conference(conference)
        return web.json_response(conference.to_json())

    async def _conference_say(self, request: web.Request) -> web.Response:
        media = check_say(await json_body(request))
        self.start_media(self.live_conference(request.match_info["conferenceId"]), media)
        return _action()

    async def _conference_play(self, request: web.Request) -> web.Response:
        media = check_play(await json_body(request))
        self.start_media(self.live_conference(request.match_info["conferenceId"]), media)
        return _action()

    async def _conference_stop_play(self, request: web.Request) -> web.Response:
        self.stop_conference_media(self.live_conference(request.match_info["conferenceId"]))
        return _action()

    async def _conference_start_recording(self, request: web.Request) -> web.Response:
        check = Checker(check_object(await json_body(request)))
        check.choice("recordingType", {"AUDIO", "AUDIO_AND_VIDEO"})
        check.done()
        self.start_conference_recording(self.live_conference(request.match_info["conferenceId"]))
        return _action()

    async def _conference_stop_recording(self, request: web.Request) -> web.Response:
        conference = self.live_conference(request.match_info["conferenceId"])
        if not conference.recording:
            raise ApiError(400, f"Conference {conference.id} is not being recorded.")
        self.stop_conference_recording(conference)
        return _action()


def _call_matches(
    query: Mapping[str, str], direction: str, state: str, to: str, from_: str, conferences: list[str]
) -> bool:
    wanted = {"direction": direction, "status": state, "to": to, "from": from_}
    if any(name in query and query[name] != value for name, value in wanted.items()):
        return False
    return "conferenceId" not in query or query["conferenceId"] in conferences


def _page(query: Mapping[str, str], items: list[dict[str, Any]]) -> web.Response:
    """One page as Infobip pages lists: ``page`` from 0, ``size`` 1 to 100 (default 20)."""
    try:
        page, size = int(query.get("page", "0")), int(query.get("size", "20"))
    except ValueError:
        raise ApiError(400, "Bad request", fields={"page": ["must be a number"]}) from None
    if page < 0 or not 1 <= size <= 100:
        raise ApiError(400, "Bad request", fields={"size": ["must be between 1 and 100"]})
    paging = {"page": page, "size": size, "totalPages": -(-len(items) // size), "totalResults": len(items)}
    return web.json_response({"results": items[page * size:(page + 1) * size], "paging": paging})


def _nested_dial(body: dict[str, Any]) -> Dial:
    """The ``callRequest`` of CallsAddNewCallRequest / CallsConnectWithNewCallRequest."""
    check = Checker(body)
    dial = None
    if check.obj("callRequest", required=True) is not None:
        dial = check_dial(check.nested("callRequest"), needs_configuration=False)
    check.boolean("connectOnEarlyMedia")
    check.done()
    assert dial is not None  # done() raised otherwise
    return dial


def _conference_options(body: dict[str, Any]) -> tuple[str | None, str | None, int]:
    request = body.get("conferenceRequest")
    if request is None:
        return None, None, 28800
    return check_conference(request, needs_configuration=False)


def _role(body: dict[str, Any]) -> str:
    role = body.get("role")
    kind = role.get("type") if isinstance(role, dict) else None
    return kind if isinstance(kind, str) and kind in ROLES else "DEFAULT"
