"""Connection limits aiohttp's server lacks: how long a client may take to send a request's head and
its body, and how many connections may be open at once (``server:`` in the config).

aiohttp closes a connection idle for ``keepalive_timeout`` (also one that never sends a request), but a
client trickling a byte of its headers now and then, or of its body, is never cut, and nothing bounds how
many connections are open: enough of them exhaust the process's file descriptors, and then nothing at all
is accepted, ``/healthz`` included. So each connection here is in one phase, with a deadline for the
client's part:

- ``head``: from its opening, or from the first byte of its next request, until a request's line and
  headers are in (``header_timeout``);
- ``body``: until the request's body is in (``body_timeout``), also when the handler answered without
  reading it (``linger``);
- ``busy``: the engine is handling it (no deadline of the client's);
- ``idle``: kept alive between requests (aiohttp's ``keepalive_timeout``).

Deadlines are kept as times, not timers: one periodic sweep of the open connections (every quarter of the
shorter client timeout, at most ``SWEEP_EVERY``, while any connection is open) cuts those past theirs, so
a request costs no timer of its own; a cut comes at most one sweep period after its deadline.
A client past its deadline gets 408 (if no answer has started) and the connection is closed; one whose
request cannot be parsed gets aiohttp's 400, counted rather than logged with a traceback. At
``max_connections`` a new connection closes the one waiting on its client the longest (least recently
active first): whoever holds idle or slow connections loses them to those who send requests, and a new
one is refused (503, ``Retry-After``) only when every connection is busy being handled.
``fit_to_open_files`` keeps the limit under the open-file limit. Cut connections and malformed
requests are counted and logged in one line per ``REPORT_EVERY``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader

from flowengine.config import ServerLimits

try:
    import resource
except ImportError:  # not on Windows: there is no open-file limit to fit under
    resource = None  # type: ignore[assignment]

log = logging.getLogger("flowengine.server.connections")

BACKLOG = 128  # connections the kernel holds before they are accepted (fewer under a low open-file limit)
RESERVED_FDS = 128  # descriptors kept for all else: store, outbound HTTP, logs, the listening socket
REPORT_EVERY = 10.0  # seconds between two log lines about cut connections
TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\nRetry-After: 1\r\n\r\n"
WAITING = frozenset({"head", "body", "linger", "idle"})  # phases that wait on the client
# phases with a deadline of ours (idle ones are aiohttp's keep-alive's), and why a connection past it is cut
DEADLINED = {"head": "slow headers", "body": "slow body", "linger": "slow body"}
SWEEP_EVERY = 1.0  # seconds between two sweeps at most
SWEEP_AT_LEAST = 0.05  # and at least, whatever the timeouts


def fit_to_open_files(wanted: int) -> tuple[int, int]:
    """(connections at most, accept backlog) that fit under the soft open-file limit.

    asyncio accepts up to ``backlog`` connections in one go, and a connection closed to make room gives
    its descriptor back only on a later turn of the loop: for a moment up to three backlogs' worth may be
    open beyond the limit. ``RESERVED_FDS`` stay for everything else the engine opens."""
    if resource is None:
        return wanted, BACKLOG
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted, BACKLOG
    backlog = max(min(BACKLOG, soft // 8), 1)
    fits = max(soft - 3 * backlog - RESERVED_FDS, soft // 8, 1)
    if fits < wanted:
        log.warning("server.max_connections %d lowered to %d to fit the open-file limit %d (ulimit -n)",
                    wanted, fits, soft)
    return min(wanted, fits), backlog


class ConnectionGuard:
    """The open connections of one server, least recently active first."""

    def __init__(self, limits: ServerLimits, max_connections: int) -> None:
        self.limits = limits
        self.max_connections = max_connections
        self._open: OrderedDict[GuardedHandler, None] = OrderedDict()
        self.cut: Counter[str] = Counter()  # why connections were closed, since the server started
        self._unreported: Counter[str] = Counter()
        self._report: asyncio.TimerHandle | None = None
        self._sweep: asyncio.TimerHandle | None = None
        self.sweep_every = max(SWEEP_AT_LEAST, min(SWEEP_EVERY, limits.header_timeout / 4,
                                                   limits.body_timeout / 4))

    @property
    def open(self) -> int:
        return len(self._open)

    def opened(self, connection: GuardedHandler) -> None:
        self._open[connection] = None
        if self._sweep is None:
            self._sweep = asyncio.get_running_loop().call_later(self.sweep_every, self._cut_late)
        if len(self._open) > self.max_connections:
            # the new connection itself is the last resort (it waits for its head too): told to come back
            victim = next(c for c in self._open if c.phase in WAITING)
            victim.cut("over the connection limit", answer=BUSY if victim is connection else None)

    def active(self, connection: GuardedHandler) -> None:
        if connection in self._open:
            self._open.move_to_end(connection)

    def closed(self, connection: GuardedHandler) -> None:
        self._open.pop(connection, None)

    def _cut_late(self) -> None:
        """Cut every connection past its deadline; again in ``sweep_every`` while any is open."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        late = [c for c in self._open if c.due <= now and c.phase in DEADLINED]
        for connection in late:
            connection.cut(DEADLINED[connection.phase])
        self._sweep = loop.call_later(self.sweep_every, self._cut_late) if self._open else None

    def count(self, reason: str) -> None:
        self.cut[reason] += 1
        self._unreported[reason] += 1
        if self._report is None:
            self._report = asyncio.get_running_loop().call_later(REPORT_EVERY, self._log)

    def _log(self) -> None:
        self._report = None
        counts = ", ".join(f"{n} {reason}" for reason, n in self._unreported.most_common())
        log.warning("closed %d connections in the last %.0f s: %s (%d open)",
                    sum(self._unreported.values()), REPORT_EVERY, counts, len(self._open))
        self._unreported.clear()

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        if self._report is not None:
            self._report.cancel()
            self._log()


class GuardedHandler(web.RequestHandler):
    """aiohttp's connection handler, with a deadline on the client's part of each phase (``due``, in
    loop time, which the guard's sweep enforces)."""

    __slots__ = ("_guard", "due", "phase")

    def __init__(self, manager: web.Server, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self.due = float("inf")
        self.phase = "head"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._wait("head", self._guard.limits.header_timeout)
        self._guard.opened(self)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.phase = "closed"
        self._guard.closed(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.phase == "idle" and data:  # the first byte of the next request
            self._wait("head", self._guard.limits.header_timeout)
        super().data_received(data)

    def request_started(self, payload: StreamReader) -> None:
        """The head is in (``GuardedServer``'s request factory): the body's turn, or the engine's."""
        self._guard.active(self)
        if payload.is_eof():
            self.phase = "busy"
        else:
            self._wait("body", self._guard.limits.body_timeout)
            payload.on_eof(self._body_in)

    def _body_in(self) -> None:
        if self.phase == "body":
            self.phase = "busy"
        elif self.phase == "linger":
            self.phase = "idle"

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        answered = await super().finish_response(request, resp, start_time)
        if self.phase == "busy":
            self.phase = "idle"  # aiohttp's keep-alive timer runs from here
            self._guard.active(self)
        elif self.phase == "body":
            self.phase = "linger"  # answered without reading the body: its deadline still holds
        return answered

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp logs a request it cannot parse with a traceback at ERROR, and answers it 400: it is the
        client's fault, so it is counted with the cut connections instead (detail at DEBUG)."""
        if isinstance(kw.get("exc_info"), HttpProcessingError):
            self._guard.count("malformed requests")
            log.debug("malformed request from %s: %r", self.peername, kw["exc_info"])
            return
        super().log_exception(*args, **kw)

    def cut(self, reason: str, answer: bytes | None = TIMED_OUT) -> None:
        """Close now, sending ``answer`` first if no answer of the engine's has started."""
        if answer is not None and self.transport is not None and self.phase in ("head", "body"):
            self.transport.write(answer)
        self.phase = "closed"
        self._guard.closed(self)
        self._guard.count(reason)
        self.force_close()

    def _wait(self, phase: str, timeout: float) -> None:
        self.phase = phase
        self.due = self._loop.time() + timeout


class GuardedServer(web.Server):
    """``web.Server`` making ``GuardedHandler``s and telling each when a request's head is in."""

    def __init__(self, inner: web.Server, guard: ConnectionGuard) -> None:
        # aiohttp keeps the handler settings the runner and the app chose (keep-alive, logging) in _kwargs.
        super().__init__(inner.request_handler, request_factory=self._started,
                         handler_cancellation=inner.handler_cancellation, **inner._kwargs)
        self._factory = inner.request_factory
        self.guard = guard

    def __call__(self) -> GuardedHandler:
        return GuardedHandler(self, loop=self._loop, guard=self.guard, **self._kwargs)

    def _started(self, message: RawRequestMessage, payload: StreamReader, protocol: web.RequestHandler,
                 writer: AbstractStreamWriter, task: asyncio.Task[None]) -> web.BaseRequest:
        if isinstance(protocol, GuardedHandler):
            protocol.request_started(payload)
        return self._factory(message, payload, protocol, writer, task)


class GuardedRunner(web.AppRunner):
    """``web.AppRunner`` serving through ``GuardedServer`` with ``limits``."""

    def __init__(self, app: web.Application, limits: ServerLimits, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=limits.keepalive_timeout, **kwargs)
        self.limits = limits
        self.guard: ConnectionGuard | None = None
        self.backlog = BACKLOG  # for the site: set with the connection limit at setup()

    async def _make_server(self) -> web.Server:
        inner = await super()._make_server()
        max_connections, self.backlog = fit_to_open_files(self.limits.max_connections)
        self.guard = ConnectionGuard(self.limits, max_connections)
        return GuardedServer(inner, self.guard)

    async def _cleanup_server(self) -> None:
        if self.guard is not None:
            self.guard.close()
        await super()._cleanup_server()
