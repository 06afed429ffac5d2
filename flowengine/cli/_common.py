"""What several subcommands share: exit codes, colour decisions, logging set-up."""

from __future__ import annotations

import logging
import os
import sys
from typing import IO

from flowengine.masking import mask_handlers
from flowengine.redaction import RedactingFormatter

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_FATAL = 0, 1, 2, 3


def use_color(choice: str, stream: IO[str] | None = None) -> bool:
    """``auto`` colours only a terminal, and never when NO_COLOR is set."""
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    stream = stream if stream is not None else sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def setup_logging(level: str, *, numbers: str = "masked") -> None:
    """Log to stderr; every line goes through ``redact`` (tracebacks too), so no secret is echoed, and
    phone numbers in it are masked unless ``numbers`` is ``full``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
    if numbers != "full":
        mask_handlers()
    # transitions logs every callback it runs at INFO: per event, not worth a service log line.
    logging.getLogger("transitions").setLevel(max(logging.WARNING, logging.getLogger().level))
