"""How providers retry a failed request: the policy (plain data, cheap to import for settings) and the
backoff it gives. The loop itself lives in ``providers/http.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from flowengine.errors import ConfigError


class Backoff(Protocol):
    """What the retry loop reads from a provider's retry settings."""

    @property
    def attempts(self) -> int: ...
    @property
    def base_delay(self) -> float: ...
    @property
    def max_delay(self) -> float: ...
    @property
    def max_retry_after(self) -> float: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter for 429, 5xx and connection errors."""

    # Tries in all, the first one included; the command budget (``JsonClient``) bounds the time they take.
    attempts: int = 6
    base_delay: float = 0.25  # seconds before the first retry (before jitter)
    max_delay: float = 4.0  # cap of one backoff step
    max_retry_after: float = 30.0  # cap on a server's Retry-After, so one answer cannot wedge a session

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError("retry attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ConfigError("retry delays must not be negative")


def backoff_delay(policy: Backoff, attempt: int, retry_after: float | None, jitter: float) -> float:
    """Seconds to wait after failed ``attempt`` (0-based): the server's Retry-After (capped) if it gave
    one, else the exponential step with "equal jitter" (``jitter`` in [0, 1]: never less than half)."""
    if retry_after is not None:
        return min(retry_after, policy.max_retry_after)
    step = min(policy.max_delay, policy.base_delay * float(2**attempt))
    return step * (0.5 + 0.5 * jitter)
