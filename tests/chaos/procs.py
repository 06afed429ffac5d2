"""One child process of the harness: started with its output in its own log file, ready once its health
route answers, killed with SIGKILL (the crash under test) or stopped with SIGTERM, restarted with the same
command line (same port, same store)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

LOOPBACK = "127.0.0.1"
READY_TIMEOUT = 20.0  # seconds a process may take to answer its health route
STOP_TIMEOUT = 5.0  # seconds SIGTERM gets before SIGKILL
# Provider settings the service would otherwise take from this shell's environment: the children must
# talk to the simulator only, never to a real platform whose credentials happen to be exported.
_SCRUBBED_PREFIXES = ("INFOBIP_", "SINCH_")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now (the child binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ProcessFailed(RuntimeError):
    """A child exited or never became ready; the message carries the tail of its log."""


@dataclass
class Proc:
    """A child process by its command line; ``health`` is the URL that answers 200 once it serves."""

    name: str
    argv: list[str]
    health: str
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: list[float] = field(default_factory=list)  # monotonic instants of each SIGKILL

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    async def start(self, timeout: float = READY_TIMEOUT) -> float:
        """Start (or restart) and wait until ready; returns the seconds that took."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        began = time.monotonic()
        self.starts += 1
        with self.log_path.open("ab") as log:  # a restart appends: one log tells the whole story
            log.write(f"--- start {self.starts}: {' '.join(self.argv)}\n".encode())
            log.flush()
            # Its own session: a Ctrl-C at the terminal reaches the harness, which stops it in order.
            self.popen = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, env=child_env(), start_new_session=True
            )
        await self._until_ready(began + timeout)
        return time.monotonic() - began

    async def _until_ready(self, deadline: float) -> None:
        timeout = aiohttp.ClientTimeout(total=1.0)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                if not self.running:
                    raise ProcessFailed(f"{self.name} exited during start-up:\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(self.health) as response:
                        if response.status == 200:
                            return
                if time.monotonic() > deadline:
                    self.kill()
                    raise ProcessFailed(f"{self.name} not ready at {self.health}:\n{self.log_tail()}")
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, no goodbye: what the chaos runs inflict. Waits until the process is gone."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.kills.append(time.monotonic())
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()
        self.popen = None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_TIMEOUT``: the clean end of a run."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.send_signal(signal.SIGKILL)
                self.popen.wait()
        self.popen = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_count(self, needle: str) -> int:
        """How many log lines contain ``needle`` (e.g. "Traceback", "resuming an interrupted plan")."""
        try:
            return sum(needle in line for line in self.log_path.read_text(errors="replace").splitlines())
        except OSError:
            return 0
