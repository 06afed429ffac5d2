"""Settings of the Sinch adapter: the application's key and secret, where the API is, how requests and
callbacks authenticate, the defaults SVAML needs (caller id, music on hold) and how a conference
participant's keys are reported (``SINCH_CONFERENCE_DTMF_MAX_DIGITS``, ``SINCH_CONFERENCE_DTMF_TIMEOUT``).

The secret never appears in ``repr``: settings objects end up in logs and tracebacks.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar, cast, get_args

from flowengine.errors import ConfigError
from flowengine.providers.environment import env_reader, seconds_setting
from flowengine.providers.retry import RetryPolicy
from flowengine.runtime.ports import Music

DEFAULT_BASE_URL = "https://calling.api.sinch.com"
DEFAULT_CALLBACK_MAX_SKEW = 300.0
AuthMode = Literal["signed", "basic"]
_MUSIC: tuple[str, ...] = get_args(Music)
N = TypeVar("N", int, float)


def _mode(value: str, what: str) -> AuthMode:
    mode = value.strip().lower()
    if mode not in get_args(AuthMode):
        raise ConfigError(f"{what} must be signed or basic, not {value!r}")
    return cast(AuthMode, mode)


def _number(kind: Callable[[str], N], value: str, name: str, what: str) -> N:
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{name} must be {what}, not {value!r}") from None


@dataclass(frozen=True, slots=True, repr=False)
class SinchSettings:
    application_key: str
    application_secret: str  # base64, as the dashboard shows it
    base_url: str = DEFAULT_BASE_URL
    cli: str | None = None  # caller id for callouts when the flow gives none
    request_auth: AuthMode = "signed"  # how our API requests authenticate
    callback_auth: AuthMode = "signed"  # what callbacks must carry to be accepted
    # Seconds a signed callback's x-timestamp may be from now, either way: older is a replay. Sinch's own
    # tolerance is unconfirmed; 5 minutes is the common window for signed webhooks.
    callback_max_skew: float = DEFAULT_CALLBACK_MAX_SKEW
    conference_moh: Music | None = "music1"  # what a caller alone in a conference hears (None: silence)
    # How Sinch groups a conference participant's keys into one report (conferenceDtmfOptions): one key
    # each suits keypad commands; more wait for the gap, # or the count. Sinch's defaults: 1 and 3 s.
    conference_dtmf_max_digits: int = 1
    conference_dtmf_timeout: float = 3.0  # seconds of silence between keys that end a group
    total_timeout: float = 10.0  # seconds for one HTTP exchange (the command deadline caps it)
    connect_timeout: float = 5.0
    # Seconds a command's answer is awaited; a slower one takes the unknown-outcome path (reconcile).
    command_deadline: float = 3.0
    # Worst-case seconds one command may hold its session (attempts x deadline + backoff, reconcile apart).
    command_budget: float = 15.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not self.application_key or not self.application_secret:
            raise ConfigError("Sinch needs an application key and an application secret")
        try:
            base64.b64decode(self.application_secret, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError("the Sinch application secret must be base64 (see the dashboard)") from None
        base = (self.base_url or DEFAULT_BASE_URL).rstrip("/")
        if "://" not in base:  # a bare host, e.g. calling-euc1.api.sinch.com
            base = "https://" + base
        object.__setattr__(self, "base_url", base)
        object.__setattr__(self, "request_auth", _mode(self.request_auth, "Sinch request auth"))
        object.__setattr__(self, "callback_auth", _mode(self.callback_auth, "Sinch callback auth"))
        if self.conference_moh is not None and self.conference_moh not in _MUSIC:
            raise ConfigError(f"Sinch music on hold must be one of {', '.join(_MUSIC)}")
        if min(self.total_timeout, self.connect_timeout, self.command_deadline, self.command_budget) <= 0:
            raise ConfigError("Sinch timeouts must be positive")
        if not self.callback_max_skew > 0:
            raise ConfigError("the Sinch callback timestamp skew must be positive")
        if self.conference_dtmf_max_digits < 1 or self.conference_dtmf_timeout <= 0:
            raise ConfigError("Sinch conference keys need max digits >= 1 and a positive timeout")

    @property
    def request_deadline(self) -> float:
        """Seconds one request's answer is awaited."""
        return min(self.total_timeout, self.command_deadline)

    def __repr__(self) -> str:
        return (
            f"SinchSettings(application_key={self.application_key!r}, application_secret=<set>, "
            f"base_url={self.base_url!r}, cli={self.cli!r}, request_auth={self.request_auth!r}, "
            f"callback_auth={self.callback_auth!r}, callback_max_skew={self.callback_max_skew}, "
            f"conference_moh={self.conference_moh!r}, "
            f"conference_dtmf_max_digits={self.conference_dtmf_max_digits}, "
            f"conference_dtmf_timeout={self.conference_dtmf_timeout}, total_timeout={self.total_timeout}, "
            f"connect_timeout={self.connect_timeout}, command_deadline={self.command_deadline}, "
            f"command_budget={self.command_budget}, retry={self.retry!r})"
        )

    __str__ = __repr__

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SinchSettings:
        """Read ``SINCH_*`` variables; ConfigError names the missing ones."""
        get = env_reader(environ, ("SINCH_APPLICATION_KEY", "SINCH_APPLICATION_SECRET"))
        moh = get("SINCH_CONFERENCE_MOH") or "music1"
        skew = get("SINCH_CALLBACK_MAX_SKEW")
        max_skew = (_number(float, skew, "SINCH_CALLBACK_MAX_SKEW", "seconds") if skew is not None
                    else DEFAULT_CALLBACK_MAX_SKEW)
        digits = _number(int, get("SINCH_CONFERENCE_DTMF_MAX_DIGITS") or "1",
                         "SINCH_CONFERENCE_DTMF_MAX_DIGITS", "a whole number")
        gap = _number(float, get("SINCH_CONFERENCE_DTMF_TIMEOUT") or "3", "SINCH_CONFERENCE_DTMF_TIMEOUT",
                      "seconds")
        return cls(
            application_key=get("SINCH_APPLICATION_KEY") or "",
            application_secret=get("SINCH_APPLICATION_SECRET") or "",
            base_url=get("SINCH_BASE_URL") or DEFAULT_BASE_URL,
            cli=get("SINCH_CLI"),
            request_auth=_mode(get("SINCH_REQUEST_AUTH") or "signed", "SINCH_REQUEST_AUTH"),
            callback_auth=_mode(get("SINCH_CALLBACK_AUTH") or "signed", "SINCH_CALLBACK_AUTH"),
            callback_max_skew=max_skew,
            conference_moh=None if moh.lower() in ("none", "silence") else cast(Music, moh.lower()),
            conference_dtmf_max_digits=digits,
            conference_dtmf_timeout=gap,
            command_deadline=seconds_setting(get, "SINCH_COMMAND_DEADLINE", 3.0),
            command_budget=seconds_setting(get, "SINCH_COMMAND_BUDGET", 15.0),
        )
