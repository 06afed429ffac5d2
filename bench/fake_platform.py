"""A minimal fake Infobip for whole-call load, written for speed: it answers the app's API requests with
pre-encoded answers and lets each call's next webhooks out as the app's requests allow.

Each call replays the recorded seed call (``seed_call.py``): its 17 webhooks, pre-encoded with the call's
own ids before a measurement starts, go out one at a time in order (as the platform delivers a call's
webhooks), different calls concurrently; webhook ``i`` waits until the app has sent ``after[i]`` of the
call's 11 requests. Every request is checked against the recording byte for byte (method, path, body,
the API key), so a call ends correctly only if the app sent exactly the seed call's requests and answered
every webhook 200; a call that got anything else, or did not finish in time, is counted as failed.

HTTP/1.1 is spoken directly on asyncio protocols (keep-alive, Content-Length bodies only: what aiohttp
sends and answers here), because an aiohttp server and client would cost about what the app under test
costs, and the load source must not be the limit. Its own CPU share is reported with every measurement.

As a process (``python bench/fake_platform.py --port P``) it prints ``{"ready": url}`` and then takes one
JSON command per line on stdin, answering each with one JSON line:
``{"cmd": "target", "url": webhook URL, "pid": app pid}``, ``{"cmd": "saturate", "calls": N,
"concurrency": C}``, ``{"cmd": "rate", "per_s": R, "seconds": S}``, ``{"cmd": "park", "calls": N}`` (run N
calls up to the caller's hang-up and hold them there) and ``{"cmd": "release"}`` (let them end).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

if __package__ in (None, ""):  # started by path: make ``bench`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.seed_call import (
    API_KEY,
    API_URL,
    CONFIG_ID,
    CONFIGURATION,
    TIMESTAMP,
    CallIds,
    Conversation,
    iso_now,
)

MAX_SECONDS = 120.0  # any one command, whatever it asks
PARK_AT = 12  # the caller's CALL_FINISHED: a parked call waits, connected, before it
CLK_TCK = os.sysconf("SC_CLK_TCK")
_REASONS = {200: b"OK", 201: b"Created", 400: b"Bad Request"}


def _answer(status: int, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status} {_REASONS[status].decode()}\r\nContent-Type: application/json\r\n"
    return head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body


_REFUSED = _answer(400, b'{"requestError":{"serviceException":{"text":"not the seed call\'s request"}}}')


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass(eq=False)
class Call:
    """One call's pre-encoded conversation and how far it has got."""

    ids: CallIds
    expected: list[tuple[bytes, bytes, bytes]]  # (method, path, body) of each request, in order
    answers: list[bytes]  # the full HTTP answer to each
    hooks: list[bytes]  # the full HTTP request of each webhook
    after: list[int]
    done: Callable[[Call], None]
    cursor: int = 0  # requests received
    next_hook: int = 0
    in_flight: bool = False
    hold_at: int = 99  # no webhook from this index on until released
    error: str | None = None
    finished: bool = False

    def fail(self, reason: str) -> None:
        if self.error is None:
            self.error = reason
        self.end()

    def end(self) -> None:
        if not self.finished:
            self.finished = True
            self.done(self)


class Platform:
    """The fake platform's state: calls by the ids their requests name, and the webhook sender."""

    def __init__(self, conversation: Conversation, *, keep_requests: bool = False) -> None:
        self.conversation = conversation
        self.by_path: dict[bytes, Call] = {}
        self.by_body: dict[bytes, Call] = {}  # the conference create names no id in its path
        self.latencies: list[float] = []  # seconds from a webhook sent to its answer read
        self.requests: list[tuple[CallIds, bytes, bytes, bytes, bytes]] = []  # kept when keep_requests
        self.keep_requests = keep_requests
        self.api_url = ""
        self.target: tuple[str, int, bytes] | None = None  # host, port, request line and headers
        self.idle: list[HookConnection] = []
        self.waiting: deque[Call] = deque()
        self.connections = 0
        self.max_connections = 256
        self.nonce = int(time.time() * 1000) & 0xFFFFFFFF
        self.seq = 0
        self.on_hold: Callable[[Call], None] | None = None  # a call has reached its ``hold_at``
        self._auth = f"Authorization: App {API_KEY}\r\n".encode()

    # -- the conversation, pre-encoded ------------------------------------------------------------
    def prepare(self, count: int, done: Callable[[Call], None]) -> list[Call]:
        assert self.target is not None, "no target app"
        _, _, head = self.target
        stamp, conversation = iso_now(), self.conversation
        shared = [(CONFIG_ID, CONFIGURATION), (API_URL, self.api_url), (TIMESTAMP, stamp)]

        def fill(ids: CallIds, text: str) -> bytes:
            for placeholder, value in shared:
                text = text.replace(placeholder, value)
            return ids.fill(text).encode()

        calls = []
        for _ in range(count):
            self.seq += 1
            ids = CallIds.make(self.nonce, self.seq)
            expected = [(r["method"].encode(), fill(ids, r["path"]), fill(ids, r["body"]))
                        for r in conversation.requests]
            answers = [_answer(r["status"], fill(ids, r["answer"])) for r in conversation.requests]
            hooks = [head + b"%d\r\n\r\n" % len(body) + body
                     for body in (fill(ids, w["body"]) for w in conversation.webhooks)]
            call = Call(ids, expected, answers, hooks, [w["after"] for w in conversation.webhooks], done)
            for _, path, body in expected:
                if path == b"/calls/1/conferences":
                    self.by_body[body] = call
                else:
                    self.by_path[path] = call
            calls.append(call)
        return calls

    def forget(self, calls: list[Call]) -> None:
        for call in calls:
            for _, path, body in call.expected:
                self.by_path.pop(path, None)
                self.by_body.pop(body, None)

    # -- the API side -----------------------------------------------------------------------------
    def on_request(self, head: bytes, method: bytes, path: bytes, body: bytes) -> bytes:
        call = self.by_path.get(path) or self.by_body.get(body)
        if call is None:
            return _REFUSED
        if self.keep_requests:
            self.requests.append((call.ids, method, path, head, body))
        if call.cursor >= len(call.expected) or call.expected[call.cursor] != (method, path, body):
            call.fail(f"request {call.cursor + 1}: {method.decode()} {path.decode()} {body[:200]!r}")
            return _REFUSED
        if self._auth not in head:
            call.fail(f"request {call.cursor + 1} without the API key")
            return _REFUSED
        answer = call.answers[call.cursor]
        call.cursor += 1
        self.pump(call)
        return answer

    # -- the webhook side -------------------------------------------------------------------------
    def pump(self, call: Call) -> None:
        """Send the call's next webhook if it is due and none of its own is in flight."""
        i = call.next_hook
        if call.in_flight or call.finished or i >= len(call.hooks) or i >= call.hold_at:
            return
        if call.after[i] > call.cursor:
            return
        if not self.idle:
            if self.connections < self.max_connections:
                self.connections += 1
                asyncio.get_running_loop().create_task(self._connect(call))
            else:
                self.waiting.append(call)
            call.in_flight = True
            return
        call.in_flight = True
        self.idle.pop().send(call)

    async def _connect(self, call: Call) -> None:
        assert self.target is not None
        host, port, _ = self.target
        try:
            _, connection = await asyncio.get_running_loop().create_connection(
                lambda: HookConnection(self), host, port)
        except OSError as exc:
            self.connections -= 1
            call.in_flight = False
            call.fail(f"app unreachable: {exc}")
            return
        connection.send(call)

    def answered(self, connection: HookConnection, call: Call, status: int, seconds: float) -> None:
        self.latencies.append(seconds)
        call.in_flight = False
        if self.waiting:
            waiting = self.waiting.popleft()
            connection.send(waiting)
        else:
            self.idle.append(connection)
        if status != 200:
            call.fail(f"webhook {call.next_hook + 1} answered {status}")
            return
        call.next_hook += 1
        if call.next_hook == len(call.hooks) and call.cursor == len(call.expected):
            call.end()
        elif call.next_hook == call.hold_at and self.on_hold is not None:
            self.on_hold(call)
        else:
            self.pump(call)

    def lost(self, connection: HookConnection, call: Call | None) -> None:
        self.connections -= 1
        if connection in self.idle:
            self.idle.remove(connection)
        if call is not None:
            call.in_flight = False
            call.fail("the app closed a webhook connection")

    def close_connections(self) -> None:
        for connection in self.idle:
            connection.transport.close()
        self.idle.clear()


class ApiProtocol(asyncio.Protocol):
    """The platform's API: one keep-alive connection from the app."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(buffer[:end])
            length = _content_length(head)
            if length < 0:  # no Content-Length: only bodiless requests are ours (chunked is not)
                length = 0
            total = end + 4 + length
            if len(buffer) < total:
                return
            body = bytes(buffer[end + 4:total])
            del buffer[:total]
            method, path, _ = head[:head.find(b"\r\n")].split(b" ", 2)
            assert self.transport is not None
            self.transport.write(self.platform.on_request(head, method, path, body))


class HookConnection(asyncio.Protocol):
    """One keep-alive connection to the app's webhook URL, one webhook at a time."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.buffer = bytearray()
        self.call: Call | None = None
        self.sent = 0.0
        self.transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, call: Call) -> None:
        self.call = call
        self.sent = time.perf_counter()
        self.transport.write(call.hooks[call.next_hook])

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end])
        length = max(0, _content_length(head))
        if len(buffer) < end + 4 + length:
            return
        del buffer[:end + 4 + length]
        call, self.call = self.call, None
        if call is not None:
            self.platform.answered(self, call, int(head[9:12]), time.perf_counter() - self.sent)

    def connection_lost(self, exc: Exception | None) -> None:
        call, self.call = self.call, None
        self.platform.lost(self, call)


def _content_length(head: bytes) -> int:
    at = head.find(b"Content-Length: ")
    if at < 0:
        at = head.lower().find(b"content-length: ")
        if at < 0:
            return -1
    at += 16
    stop = head.find(b"\r\n", at)
    return int(head[at:] if stop < 0 else head[at:stop])


# -- measurements -------------------------------------------------------------------------------------
@dataclass
class Run:
    """What one measurement saw."""

    calls: list[Call]
    pid: int | None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    left: int = 0
    cpu: tuple[float, float] = (0.0, 0.0)  # (app, this process) at the start
    wall: float = 0.0

    def start_clocks(self) -> None:
        self.cpu = (cpu_seconds(self.pid) if self.pid else 0.0, time.process_time())
        self.wall = time.perf_counter()

    def figures(self, platform: Platform) -> dict[str, Any]:
        wall = time.perf_counter() - self.wall
        app_cpu = (cpu_seconds(self.pid) - self.cpu[0]) if self.pid else 0.0
        own_cpu = time.process_time() - self.cpu[1]
        failed = [call for call in self.calls if call.error is not None or not call.finished]
        ok = len(self.calls) - len(failed)
        latencies = sorted(platform.latencies)
        return {
            "calls": len(self.calls), "ok": ok, "failed": len(failed),
            "failures": [call.error or f"unfinished at webhook {call.next_hook + 1}, request {call.cursor}"
                         for call in failed[:3]],
            "seconds": wall, "calls_per_s": ok / wall if wall else 0.0,
            "app_cpu_s": app_cpu, "app_cpu_ms_per_call": app_cpu / ok * 1000 if ok else 0.0,
            "app_core_share": app_cpu / wall if wall else 0.0,
            "source_cpu_s": own_cpu, "source_core_share": own_cpu / wall if wall else 0.0,
            "webhooks": len(latencies), **percentiles(latencies),
        }


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50/p99/max in ms of an ascending list."""
    if not seconds:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    def at(q: float) -> float:
        return seconds[min(len(seconds) - 1, max(0, round(len(seconds) * q) - 1))] * 1000
    return {"p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": seconds[-1] * 1000}


class Driver:
    """Runs the measurements a command asks for against the current target."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.pid: int | None = None
        self.parked: list[Run] = []  # held calls, a run per ``park``, until ``release``

    def target(self, url: str, pid: int | None) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        head = (f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Content-Type: application/json\r\nContent-Length: ").encode()
        self.platform.close_connections()
        self.platform.target = (host, port, head)
        self.pid = pid

    async def saturate(self, calls: int, concurrency: int) -> dict[str, Any]:
        """``calls`` calls, ``concurrency`` at a time: the app's rate at its limit."""
        queue: deque[Call] = deque()

        def ended(_: Call) -> None:
            run.left -= 1
            if queue:
                self._start(queue.popleft())
            elif run.left == 0:
                run.ended.set()

        run = Run(self.platform.prepare(calls, ended), self.pid)
        run.left = len(run.calls)
        queue.extend(run.calls)

        def begin() -> None:
            for _ in range(min(concurrency, len(queue))):
                self._start(queue.popleft())

        return await self._measure(run, begin)

    async def rate(self, per_s: float, seconds: float) -> dict[str, Any]:
        """A new call every 1/``per_s`` seconds for ``seconds``: latency at a given load."""
        def ended(_: Call) -> None:
            run.left -= 1
            if run.left == 0:
                run.ended.set()

        run = Run(self.platform.prepare(max(1, round(per_s * seconds)), ended), self.pid)
        run.left = len(run.calls)
        loop = asyncio.get_running_loop()

        def schedule() -> None:
            start = loop.time()
            for i, call in enumerate(run.calls):
                loop.call_at(start + i / per_s, self._start, call)

        return await self._measure(run, schedule)

    async def park(self, calls: int, concurrency: int) -> dict[str, Any]:
        """``calls`` calls taken to ``connected``, ``concurrency`` at a time, and held there (idle
        sessions); ``release`` lets them end."""
        queue: deque[Call] = deque()
        parked = asyncio.Event()
        count = 0

        def ended(call: Call) -> None:
            run.left -= 1
            if run.left == 0:
                run.ended.set()
            if call.next_hook < PARK_AT:  # failed before it was held
                held(call)

        def held(_: Call) -> None:
            nonlocal count
            count += 1
            if queue:
                self._start(queue.popleft())
            elif count == calls:
                parked.set()

        run = Run(self.platform.prepare(calls, ended), self.pid)
        run.left = len(run.calls)
        for call in run.calls:
            call.hold_at = PARK_AT
        queue.extend(run.calls)
        self.platform.on_hold = held
        try:
            for _ in range(min(concurrency, calls)):
                self._start(queue.popleft())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(parked.wait(), MAX_SECONDS)
        finally:
            self.platform.on_hold = None
        self.parked.append(run)
        return {"parked": sum(c.next_hook == PARK_AT and not c.finished for c in run.calls), "calls": calls}

    async def release(self) -> dict[str, Any]:
        """Every parked call let go to its end, a run at a time: how many ended as recorded."""
        runs, self.parked = self.parked, []
        total: dict[str, Any] = {"calls": 0, "ok": 0, "failed": 0, "failures": []}
        for run in runs:
            def go(run: Run = run) -> None:
                for call in run.calls:
                    call.hold_at = 99
                    self.platform.pump(call)
            figures = await self._measure(run, go)
            for key in ("calls", "ok", "failed", "failures"):
                total[key] += figures[key]
        return total

    def _start(self, call: Call) -> None:
        self.platform.pump(call)

    async def _measure(self, run: Run, begin: Callable[[], Any]) -> dict[str, Any]:
        self.platform.latencies.clear()
        run.start_clocks()
        begin()
        with contextlib.suppress(TimeoutError):  # the unfinished calls are counted as failed
            await asyncio.wait_for(run.ended.wait(), MAX_SECONDS)
        figures = run.figures(self.platform)
        self.platform.forget(run.calls)
        return figures


async def serve(port: int, keep_requests: bool = False) -> tuple[Platform, asyncio.Server]:
    platform = Platform(Conversation.load(), keep_requests=keep_requests)
    server = await asyncio.get_running_loop().create_server(lambda: ApiProtocol(platform), "127.0.0.1", port)
    sockname = server.sockets[0].getsockname()
    platform.api_url = f"http://127.0.0.1:{sockname[1]}"
    return platform, server


async def _main(port: int) -> None:
    platform, server = await serve(port)
    driver = Driver(platform)
    print(json.dumps({"ready": platform.api_url}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line)
        kind = command.pop("cmd")
        if kind == "target":
            driver.target(command["url"], command.get("pid"))
            answer: dict[str, Any] = {"ok": True}
        elif kind in ("saturate", "rate", "park", "release"):
            answer = await getattr(driver, kind)(**command)
        else:
            answer = {"error": f"unknown command {kind!r}"}
        print(json.dumps(answer), flush=True)
    server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A fast fake Infobip replaying the seed call.")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(_main(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
