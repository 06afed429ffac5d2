"""The seed scenario written by hand with aiohttp, as a user would instead of a flow: the yardstick of the
whole-call benchmark. No flowengine imports.

The Infobip article's call ("Connect two calls in a conference with Infobip Calls API"): answer the caller,
put them in a new conference, greet them, hold them with music while the second party is dialled into
the conference; when that party joins, stop the music and announce them; if they do not, stop the music,
apologise and end the conference; a caller who hangs up while waiting cancels the dial; when either party
hangs up once connected, the conference is ended.

It sends exactly the requests the engine sends for ``flows/two_party_conference.yaml`` (same paths, same
JSON bytes, same headers), which ``tests/unit/test_bench_seed_call.py`` checks request by request: the
conference is named after the engine's session id and the dialled call carries the engine's correlation
key (the session id, the number of events the call had seen, the action's place in its state's entry),
though a user would pick their own. State lives in memory, in dicts, and there are no timers (the flow
has timeouts the app does not): the cheapest honest version of the scenario.

``python bench/handwritten_app.py --port P --base-url URL`` serves ``POST /webhooks/infobip`` and
``GET /healthz``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

CALLEE_NUMBER = "447415784323"
CALLER_ID = "4592457976"
HOLD_MUSIC = "a8b4cc89-a2d7-4a4c-adaf-c7d921b9f52a"
GREETING = ("Hello, we are trying to connect another caller to this conference. "
            "Please wait and enjoy the sounds of nature.")
JOINING = "Another caller is joining the call now."
SORRY = "Sorry, the other party was not able to join the call. Goodbye."
WAITING = ("answering", "greeting", "greeted")  # the states before dialling: a hang-up just ends the call
CALLEE_GONE = ("CALL_FAILED", "CALL_FINISHED")


@dataclass
class Room:
    """One caller's conference and where the scenario stands."""

    caller: str
    session: str
    state: str = "answering"
    conference: str = ""
    callee: str = ""
    seen: int = 0  # events heard for this call


class Infobip:
    """The few Calls API requests the scenario needs, over one pooled aiohttp session."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, api_key: str, configuration: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.configuration = configuration
        self.headers = {"Authorization": f"App {api_key}", "Content-Type": "application/json",
                        "Accept": "application/json"}

    async def send(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        async with self.http.request(method, self.base_url + path, data=data, headers=self.headers) as reply:
            reply.raise_for_status()
            return await reply.json()

    async def say(self, call: str, text: str) -> None:
        body = {"text": text, "language": "en", "loopCount": 1}
        await self.send("POST", f"/calls/1/calls/{call}/say", body)

    async def hold(self, room: Room) -> None:
        await self.send("PATCH", f"/calls/1/conferences/{room.conference}/call/{room.caller}",
                        {"muted": True, "deaf": True})
        await self.send("POST", f"/calls/1/calls/{room.caller}/play",
                        {"content": {"type": "FILE", "fileId": HOLD_MUSIC}, "loopCount": 3})

    async def resume(self, room: Room) -> None:
        await self.send("POST", f"/calls/1/calls/{room.caller}/stop-play", {})
        await self.send("PATCH", f"/calls/1/conferences/{room.conference}/call/{room.caller}",
                        {"muted": False, "deaf": False})


class Scenario:
    """The call flow: one method per step, rooms found by call or conference id."""

    def __init__(self, api: Infobip) -> None:
        self.api = api
        self.rooms: dict[str, Room] = {}  # by the caller's, the callee's and the conference's ids

    async def handle(self, event: dict[str, Any]) -> None:
        kind, call = event["type"], event.get("callId") or ""
        if kind == "CALL_RECEIVED":
            return await self.answer(call)
        room = self.rooms.get(call) or self.rooms.get(event.get("conferenceId") or "")
        if room is None:
            return
        room.seen += 1
        if kind == "CONFERENCE_FINISHED":
            self.forget(room)
        elif kind == "CALL_FINISHED" and call == room.caller and room.state in WAITING:
            room.state = "done"
        elif room.state == "greeting" and kind == "PARTICIPANT_JOIN_FAILED":
            room.state = "done"
            await self.api.send("POST", f"/calls/1/calls/{room.caller}/hangup", {})
        elif room.state == "answering" and kind == "CALL_ESTABLISHED":
            await self.open_room(room)
        elif room.state == "greeting" and kind == "PARTICIPANT_JOINED" and call == room.caller:
            room.state = "greeted"
            await self.api.say(room.caller, GREETING)
        elif room.state == "greeted" and kind == "SAY_FINISHED":
            await self.dial(room)
        elif room.state == "dialing":
            await self.while_dialing(room, kind, call)
        elif (room.state, kind) in (("connected", "CALL_FINISHED"), ("sorry", "SAY_FINISHED")):
            await self.close(room)

    async def answer(self, call: str) -> None:
        session = "s-" + hashlib.sha256(f"infobip:{call}".encode()).hexdigest()[:24]
        self.rooms[call] = Room(call, session, seen=1)
        await self.api.send("POST", f"/calls/1/calls/{call}/answer", {})

    async def open_room(self, room: Room) -> None:
        conference = await self.api.send("POST", "/calls/1/conferences", {
            "callsConfigurationId": self.api.configuration, "name": f"room-{room.session}"})
        room.conference, room.state = conference["id"], "greeting"
        self.rooms[room.conference] = room
        await self.api.send("PUT", f"/calls/1/conferences/{room.conference}/call/{room.caller}", {})

    async def dial(self, room: Room) -> None:
        room.state = "dialing"
        await self.api.hold(room)
        dial = {"endpoint": {"type": "PHONE", "phoneNumber": CALLEE_NUMBER}, "connectTimeout": 60,
                "from": CALLER_ID, "customData": {"flowengineKey": f"{room.session}:{room.seen}:1"}}
        path = f"/calls/1/conferences/{room.conference}/call"
        dialled = await self.api.send("POST", path, {"callRequest": dial})
        room.callee = dialled["call"]["id"]
        self.rooms[room.callee] = room

    async def while_dialing(self, room: Room, kind: str, call: str) -> None:
        if kind == "PARTICIPANT_JOINED" and call == room.callee:
            room.state = "connected"
            await self.api.resume(room)
            await self.api.say(room.caller, JOINING)
        elif kind == "PARTICIPANT_JOIN_FAILED" or (kind in CALLEE_GONE and call == room.callee):
            room.state = "sorry"
            await self.api.resume(room)
            await self.api.say(room.caller, SORRY)
        elif kind == "CALL_FINISHED" and call == room.caller:
            room.state = "done"
            await self.api.send("POST", f"/calls/1/calls/{room.callee}/hangup", {})

    async def close(self, room: Room) -> None:
        room.state = "done"
        await self.api.send("POST", f"/calls/1/conferences/{room.conference}/hangup")

    def forget(self, room: Room) -> None:
        for key in (room.caller, room.callee, room.conference):
            self.rooms.pop(key, None)


SCENARIO = web.AppKey("scenario", Scenario)


async def webhook(request: web.Request) -> web.Response:
    await request.app[SCENARIO].handle(json.loads(await request.read()))
    return web.Response()


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def make_app(base_url: str, api_key: str, configuration: str) -> web.Application:
    app = web.Application()

    async def client(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as http:
            app[SCENARIO] = Scenario(Infobip(http, base_url, api_key, configuration))
            yield

    app.cleanup_ctx.append(client)
    app.router.add_post("/webhooks/infobip", webhook)
    app.router.add_get("/healthz", healthz)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The seed scenario, hand-written with aiohttp.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--base-url", required=True, help="the Calls API (the fake platform)")
    parser.add_argument("--api-key", default="bench-api-key")
    parser.add_argument("--configuration", default="flowengine-bench")
    args = parser.parse_args(argv)
    web.run_app(make_app(args.base_url, args.api_key, args.configuration), host=args.host, port=args.port,
                access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
