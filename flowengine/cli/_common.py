"""What several subcommands share: exit codes, colour decisions, logging set-up."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import IO, Any, TypeVar

import click

from flowengine.logformat import formatter
from flowengine.masking import NumberMask, mask_handlers

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_FATAL = 0, 1, 2, 3
F = TypeVar("F", bound=Callable[..., Any])
HttpAllow = tuple[str | dict[str, Any], ...]


def http_allow_options(command: F) -> F:
    """``--http-allow`` and ``--http-allow-private``: which hosts a scenario's http actions may reach for
    real when no mock of the scenario answers them (none by default: offline)."""
    command = click.option(
        "--http-allow-private", is_flag=True,
        help="Let the --http-allow hosts be loopback or private addresses (a test server on this machine).",
    )(command)
    return click.option(
        "--http-allow", "http_allow", multiple=True, metavar="HOST[:PORT]", callback=_checked_allow,
        help="A host the flow's http actions may reach for real when no mock of the scenario matches "
        "(repeatable; as the service's http_allow: host, host:port, *.domain).",
    )(command)


def _checked_allow(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    from flowengine.errors import ConfigError
    from flowengine.server.allow_list import AllowList

    try:
        AllowList(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def http_allow_entries(hosts: tuple[str, ...], private: bool) -> HttpAllow:
    """The service's ``http_allow`` entries for the command line's hosts."""
    if not private:
        return tuple(hosts)
    from flowengine.server.allow_list import parse_entry

    entries: list[str | dict[str, Any]] = []
    for index, host in enumerate(hosts):
        entry = parse_entry(host, index)
        entries.append({"host": entry.pattern, "ports": sorted(entry.ports), "private": True})
    return tuple(entries)


def use_color(choice: str, stream: IO[str] | None = None) -> bool:
    """``auto`` colours only a terminal, and never when NO_COLOR is set."""
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    stream = stream if stream is not None else sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def setup_logging(level: str, *, numbers: str = "masked", log_format: str = "text") -> None:
    """Log to stderr as text or JSON lines (``logformat``); every line goes through ``redact`` (tracebacks
    too), so no secret is echoed, and phone numbers in it are masked unless ``numbers`` is ``full``."""
    handler = log_handler(sys.stderr, numbers=numbers, log_format=log_format)
    # Neither format writes where a line was logged from, nor the process or thread: not looking them up
    # for every record (the logging HOWTO's "Optimization") saves ~5 % of a transition's log line.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
    if numbers != "full":
        mask_handlers()
    # transitions logs every callback it runs at INFO: per event, not worth a service log line.
    logging.getLogger("transitions").setLevel(max(logging.WARNING, logging.getLogger().level))


def log_handler(stream: IO[str], *, numbers: str = "masked", log_format: str = "text") -> logging.Handler:
    """The service's log handler on ``stream``: ``log_format``, numbers masked unless ``full``."""
    handler = LineHandler(stream)
    handler.setFormatter(formatter(log_format, mask=numbers != "full"))
    if numbers != "full":
        handler.addFilter(NumberMask())
    return handler


class LineHandler(logging.StreamHandler[IO[str]]):
    """A ``StreamHandler`` that does not flush a line-buffered stream after each line: such a stream
    (``sys.stderr`` since Python 3.9) has already written out every line ending in a newline, and each
    line does, so the flush found nothing to do and cost ~7 % of a log line. Any other stream is flushed
    after each line as before."""

    def flush(self) -> None:
        if not getattr(self.stream, "line_buffering", False):
            super().flush()
