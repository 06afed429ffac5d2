"""Reading a provider's settings from environment variables (shared by both providers' settings)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

from flowengine.errors import ConfigError

Getter = Callable[[str], str | None]


def env_reader(environ: Mapping[str, str] | None, required: Sequence[str]) -> Getter:
    """A lookup that treats blank values as unset; ``ConfigError`` names every required one missing."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    missing = [name for name in required if get(name) is None]
    if missing:
        raise ConfigError(f"missing environment variables: {', '.join(missing)}")
    return get


def seconds_setting(get: Getter, name: str, default: float) -> float:
    """A positive number of seconds from ``name``, else ``default``; ConfigError if it is not a number."""
    value = get(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be seconds, not {value!r}") from None
