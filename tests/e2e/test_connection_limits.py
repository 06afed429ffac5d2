"""The service's connection limits (``server:``, ``server.connections``) against clients on real sockets:
slow headers, slow bodies and idle connections are cut within their timeouts while the service keeps
answering; at ``max_connections`` new connections take the place of those waiting longest; and a
``flowengine serve`` process with a low open-file limit still answers ``/healthz`` with more idle
sockets open against it than it has descriptors, without a "Too many open files" in its log."""

from __future__ import annotations

import asyncio
import logging
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest
import yaml

from flowengine.config import ServerLimits, ServiceConfig
from flowengine.providers.infobip.auth import sign
from flowengine.server.app import create_app
from flowengine.server.serving import serving

from .conftest import FLOW

T = TypeVar("T")
HOST = "127.0.0.1"
GUARD = 15.0  # seconds of wall time before a wait gives up
LATE = 1.5  # seconds a cut may come after its deadline on a busy machine (2 cores, other suites running)
EARLY = 0.3  # and seem to come before it: the client's clock starts when the answer reaches it
# keep-alive well apart from the others, so a connection cut by the wrong timer shows
SHORT = ServerLimits(header_timeout=0.6, body_timeout=0.6, keepalive_timeout=2.5, max_connections=1000)
INFOBIP = {"base_url": "http://127.0.0.1:9", "api_key": "test-key", "calls_configuration_id": "test",
           "webhook_hmac_secret": "test-secret"}


@asynccontextmanager
async def engine(limits: ServerLimits, **settings: object) -> AsyncIterator[tuple[str, int]]:
    config = ServiceConfig(provider="infobip", port=0, store="memory://", default_flow=FLOW,
                           provider_settings={**INFOBIP, **settings})
    async with serving(create_app(config, timer_poll=None), limits=limits) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


@dataclass
class Cut:
    after: float  # seconds from the moment the client's part became due until the server closed
    answer: bytes  # what the server sent before closing


async def client(address: tuple[str, int], opening: bytes, trickle: bytes, *,
                 until_answer: bool = False, after: float = 0.0) -> Cut:
    """Connect (``after`` seconds from now), send ``opening``, then ``trickle`` every 0.1 s until the
    server closes the connection. The clock starts once ``opening`` is sent, or with ``until_answer``
    once an answer has come back."""
    await asyncio.sleep(after)  # many at once would wait in the kernel's accept queue, off the clock
    reader, writer = await asyncio.open_connection(*address)
    loop = asyncio.get_running_loop()
    writer.write(opening)
    started, answer = loop.time(), b""
    try:
        async with asyncio.timeout(GUARD):
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(4096), 0.1)
                except TimeoutError:
                    if trickle:
                        writer.write(trickle)
                    continue
                except ConnectionResetError:  # cut while a trickled byte was on its way: RST, not FIN
                    chunk = b""
                if not chunk:
                    return Cut(loop.time() - started, answer)
                if until_answer and not answer:
                    started = loop.time()
                answer += chunk
    finally:
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()


async def healthz(address: tuple[str, int]) -> int:
    async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
                http.get(f"http://{address[0]}:{address[1]}/healthz") as response):
        return response.status


async def alongside(address: tuple[str, int], clients: Callable[[], Awaitable[T]]) -> T:
    """``clients()``, while /healthz is asked every 0.1 s: each answer must be 200."""
    answers: list[int] = []
    stop = asyncio.Event()

    async def ask() -> None:  # stopped between two requests: a cancelled one could leave its socket open
        while not stop.is_set():
            answers.append(await healthz(address))
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)

    asking = asyncio.create_task(ask())
    try:
        done = await clients()
    finally:
        stop.set()
        await asking
    assert answers and set(answers) == {200}
    return done


def within(cuts: list[Cut], deadline: float) -> list[float]:
    """The cuts' delays that fall outside ``[deadline - EARLY, deadline + LATE]``."""
    return [cut.after for cut in cuts if not deadline - EARLY <= cut.after <= deadline + LATE]


N = 100  # connections of each kind
SPREAD = 0.005  # seconds between two of them connecting


def assert_timed_out(cuts: list[Cut]) -> None:
    """Each cut came with 408, but for the few whose next trickled byte crossed the close (the kernel
    then resets the connection, and may drop the answer with it)."""
    answers = Counter(cut.answer.split(b"\r\n")[0] for cut in cuts)
    assert set(answers) <= {b"HTTP/1.1 408 Request Timeout", b""}
    assert answers[b"HTTP/1.1 408 Request Timeout"] >= len(cuts) * 0.8


async def test_slow_headers_are_cut_after_header_timeout() -> None:
    head = b"POST /webhooks/infobip HTTP/1.1\r\nHost: x\r\n"
    async with engine(SHORT) as address:
        cuts = await alongside(address, lambda: asyncio.gather(
            *(client(address, head, b"X-Slow: 1\r\n", after=i * SPREAD) for i in range(N))))
    assert within(cuts, SHORT.header_timeout) == []
    assert_timed_out(cuts)


async def test_slow_bodies_are_cut_after_body_timeout() -> None:
    head = b"POST /webhooks/infobip HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"
    async with engine(SHORT) as address:
        cuts = await alongside(address, lambda: asyncio.gather(
            *(client(address, head, b" ", after=i * SPREAD) for i in range(N))))
    assert within(cuts, SHORT.body_timeout) == []
    assert_timed_out(cuts)


async def test_a_body_left_unread_is_also_bound_by_body_timeout() -> None:
    # /healthz answers without reading the body; aiohttp would keep reading it for 10 s
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"
    async with engine(SHORT) as address:
        (cut,) = await client(address, head, b" "),
    assert within([cut], SHORT.body_timeout) == []
    assert cut.answer.startswith(b"HTTP/1.1 200 OK")


async def test_idle_connections_are_cut_before_and_between_requests() -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    async with engine(SHORT) as address:
        never, after = await alongside(address, lambda: asyncio.gather(
            asyncio.gather(*(client(address, b"", b"", after=i * SPREAD) for i in range(N))),
            asyncio.gather(*(client(address, request, b"", until_answer=True, after=i * SPREAD)
                             for i in range(N))),
        ))
    assert within(never, SHORT.header_timeout) == []  # never sent a byte: cut as a slow head
    assert within(after, SHORT.keepalive_timeout) == []  # kept alive after its answer, then cut
    assert {cut.answer.split(b"\r\n")[0] for cut in after} == {b"HTTP/1.1 200 OK"}


MALFORMED = [
    b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",
    b"POST /webhooks/infobip HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST /webhooks/infobip HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
]


async def test_malformed_requests_get_400_and_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with engine(SHORT) as address:
        cuts = [await client(address, raw, b"") for raw in MALFORMED]
    assert [cut.answer.split(b"\r\n")[0] for cut in cuts] == [b"HTTP/1.0 400 Bad Request"] * len(MALFORMED)
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
    (summary,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("closed ")]
    assert summary.startswith(f"closed {len(MALFORMED)} connections in the last 10 s: 4 malformed requests")


async def test_at_max_connections_new_connections_replace_the_longest_waiting() -> None:
    limits = ServerLimits(header_timeout=30, body_timeout=30, keepalive_timeout=30, max_connections=20)
    async with engine(limits) as address:
        idle = [await asyncio.open_connection(*address) for _ in range(60)]
        assert await healthz(address) == 200
        await asyncio.sleep(0.2)  # the last evictions reach the clients
        closed = [reader.at_eof() or await _closed(reader) for reader, _ in idle]
        for _, writer in idle:
            writer.close()
    # 60 idle + 1 asking: 20 stay open, the oldest go first (the newest 19 idle ones and /healthz's stay)
    assert closed == [True] * 41 + [False] * 19


async def test_when_every_connection_is_busy_a_new_one_is_told_to_come_back() -> None:
    # An answer for a call nobody owns keeps its webhook busy for orphans.IN_FLIGHT (2 s) of real time
    # (the engine looks once more before it hangs up a call it does not know), then the hang-up's tries
    # at a platform that is not there, for at most the command budget.
    limits = ServerLimits(header_timeout=30, body_timeout=30, keepalive_timeout=30, max_connections=3)
    body = b'{"type": "CALL_ESTABLISHED", "callId": "nobody-owns-it"}'
    hook = (f"POST /webhooks/infobip HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\nX-Signature: {sign(body, INFOBIP['webhook_hmac_secret'])}\r\n"
            "\r\n").encode() + body
    async with engine(limits, command_budget=0.5) as address:
        busy = [asyncio.create_task(client(address, hook, b"")) for _ in range(3)]
        await asyncio.sleep(0.5)  # all three are being handled
        refused = await client(address, b"", b"")
        assert not any(task.done() for task in busy)
        handled = await asyncio.gather(*busy)
    assert refused.answer.startswith(b"HTTP/1.1 503 Service Unavailable") and refused.after < LATE
    assert {cut.answer.split(b"\r\n")[0] for cut in handled} == {b"HTTP/1.1 200 OK"}


async def _closed(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), 0.05) == b""
    except TimeoutError:
        return False


# -- a serve process under file-descriptor pressure ---------------------------------------------------
FD_LIMIT = 256
IDLE = 600  # idle sockets: more than the process has descriptors
BATCH = 30  # the serve process's accept backlog is 32 under this limit


def test_healthz_answers_with_more_idle_sockets_than_file_descriptors(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump({
        "provider": "infobip", "listen": {"host": HOST, "port": port}, "store": "memory://",
        "default_flow": str(FLOW), "infobip": INFOBIP,
        "server": {"header_timeout": 60, "keepalive_timeout": 60},  # nothing is cut for being slow here
    }))
    log = tmp_path / "serve.log"

    def low_fd_limit() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, hard))

    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "flowengine", "serve", "-c", str(config)],
                                   stdout=out, stderr=subprocess.STDOUT, preexec_fn=low_fd_limit)
    try:
        answers, closed, took = asyncio.run(_pressure((HOST, port)))
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(GUARD) == 0
    text = log.read_text()
    print(f"\n{IDLE} idle sockets against {FD_LIMIT} descriptors: /healthz {answers} in {took:.2f} s; "
          f"{closed} idle sockets closed by the server")
    assert answers == [200] * 5
    assert closed >= IDLE - FD_LIMIT
    assert "Too many open files" not in text and "out of system resource" not in text
    lowered_to = rf"server.max_connections 1000 lowered to (\d+) to fit the open-file limit {FD_LIMIT}"
    (lowered,) = re.findall(lowered_to, text)
    assert int(lowered) <= FD_LIMIT // 2
    assert "over the connection limit" in text  # the cut connections, counted in one line


async def _pressure(address: tuple[str, int]) -> tuple[list[int], int, float]:
    deadline = time.monotonic() + GUARD
    while True:  # until it listens
        try:
            assert await healthz(address) == 200
            break
        except aiohttp.ClientConnectionError:
            assert time.monotonic() < deadline, "serve did not start"
            await asyncio.sleep(0.1)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for _ in range(IDLE // BATCH):  # no more at once than its accept backlog: none wait in the kernel
        idle.extend(await asyncio.gather(*(asyncio.open_connection(*address) for _ in range(BATCH))))
        await asyncio.sleep(0.02)
    try:
        started = time.monotonic()
        answers = [await healthz(address) for _ in range(5)]
        took = time.monotonic() - started
        await asyncio.sleep(0.2)
        closed = sum([reader.at_eof() or await _closed(reader) for reader, _ in idle])
    finally:
        for _, writer in idle:
            writer.close()
    return answers, closed, took
