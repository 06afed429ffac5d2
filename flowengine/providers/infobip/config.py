"""Settings of the Infobip adapter: where the API is, how to authenticate both ways, how to retry.

Secrets (the API key, the webhook password and HMAC secret) never appear in ``repr``: settings objects
end up in logs and tracebacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flowengine.errors import ConfigError
from flowengine.providers.environment import env_reader, seconds_setting
from flowengine.providers.retry import RetryPolicy
from flowengine.runtime.ports import Media

# The header carrying the HMAC signature of Calls webhooks is unconfirmed in Infobip's public docs, so it
# is configurable; ``X-Signature`` is the name Infobip's HMAC-secured callbacks are commonly seen with.
DEFAULT_HMAC_HEADER = "X-Signature"
DEFAULT_HMAC_ALGORITHM = "sha256"
# Seconds an event's own ``timestamp`` may be from now (either way) for its webhook to be taken: older is a
# replay (or a redelivery so late that reconciliation has the say). Infobip's retry timing is unconfirmed.
DEFAULT_WEBHOOK_MAX_SKEW = 300.0
# Infobip names its algorithms HMAC_SHA_256 and so on; hashlib wants sha256.
_HMAC_ALGORITHMS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")


def normalise_algorithm(name: str) -> str:
    """``HMAC_SHA_256``, ``hmac-sha256``, ``SHA256`` -> ``sha256``; ConfigError if unknown."""
    key = name.lower().replace("hmac", "").replace("_", "").replace("-", "")
    if key not in _HMAC_ALGORITHMS:
        raise ConfigError(f"unknown HMAC algorithm {name!r} (use one of {', '.join(_HMAC_ALGORITHMS)})")
    return key



@dataclass(frozen=True, slots=True, repr=False)
class InfobipSettings:
    base_url: str
    api_key: str
    calls_configuration_id: str
    webhook_user: str | None = None
    webhook_password: str | None = None
    hmac_secret: str | None = None
    hmac_header: str = DEFAULT_HMAC_HEADER
    hmac_algorithm: str = DEFAULT_HMAC_ALGORITHM
    webhook_max_skew: float = DEFAULT_WEBHOOK_MAX_SKEW
    sip_trunk_id: str | None = None  # needed to dial SIP endpoints
    hold_music: str | None = None  # file id or URL played on hold when the flow names none
    total_timeout: float = 10.0  # seconds for one HTTP exchange (the command deadline caps it)
    connect_timeout: float = 5.0
    # Seconds a command's answer is awaited; a slower one takes the unknown-outcome path (reconcile).
    command_deadline: float = 3.0
    # Worst-case seconds one command may hold its session (attempts x deadline + backoff, reconcile apart).
    command_budget: float = 15.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not self.base_url or not self.api_key or not self.calls_configuration_id:
            raise ConfigError("Infobip needs a base URL, an API key and a calls configuration id")
        base = self.base_url.rstrip("/")
        if "://" not in base:  # the portal shows the bare host, e.g. xxxxx.api.infobip.com
            base = "https://" + base
        object.__setattr__(self, "base_url", base)
        if (self.webhook_user is None) != (self.webhook_password is None):
            raise ConfigError("Infobip webhook Basic auth needs both a user and a password")
        object.__setattr__(self, "hmac_algorithm", normalise_algorithm(self.hmac_algorithm))
        if not self.hmac_header:
            raise ConfigError("the Infobip webhook HMAC header name must not be empty")
        if min(self.total_timeout, self.connect_timeout, self.command_deadline, self.command_budget) <= 0:
            raise ConfigError("Infobip timeouts must be positive")
        if not self.webhook_max_skew > 0:
            raise ConfigError("INFOBIP_WEBHOOK_MAX_SKEW (the webhook timestamp window) must be positive")

    def hold_media(self) -> Media | None:
        if not self.hold_music:
            return None
        if self.hold_music.startswith(("http://", "https://")):
            return Media(url=self.hold_music)
        return Media(file_id=self.hold_music)

    @property
    def request_deadline(self) -> float:
        """Seconds one request's answer is awaited."""
        return min(self.total_timeout, self.command_deadline)

    @property
    def basic_auth_enabled(self) -> bool:
        return self.webhook_user is not None

    @property
    def hmac_enabled(self) -> bool:
        return bool(self.hmac_secret)

    @property
    def webhook_auth_enabled(self) -> bool:
        """False means every webhook is accepted: ``serve`` refuses that unless ``insecure_webhooks``."""
        return self.basic_auth_enabled or self.hmac_enabled

    def __repr__(self) -> str:
        def mark(secret: str | None) -> str:
            return "<set>" if secret else "<unset>"

        return (
            f"InfobipSettings(base_url={self.base_url!r}, api_key={mark(self.api_key)}, "
            f"calls_configuration_id={self.calls_configuration_id!r}, webhook_user={self.webhook_user!r}, "
            f"webhook_password={mark(self.webhook_password)}, hmac_secret={mark(self.hmac_secret)}, "
            f"hmac_header={self.hmac_header!r}, hmac_algorithm={self.hmac_algorithm!r}, "
            f"webhook_max_skew={self.webhook_max_skew}, "
            f"sip_trunk_id={self.sip_trunk_id!r}, total_timeout={self.total_timeout}, "
            f"connect_timeout={self.connect_timeout}, command_deadline={self.command_deadline}, "
            f"command_budget={self.command_budget}, retry={self.retry!r})"
        )

    __str__ = __repr__

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> InfobipSettings:
        """Read ``INFOBIP_*`` variables; ConfigError names the missing ones."""
        get = env_reader(environ, ("INFOBIP_BASE_URL", "INFOBIP_API_KEY", "INFOBIP_CALLS_CONFIGURATION_ID"))
        return cls(
            base_url=get("INFOBIP_BASE_URL") or "",
            api_key=get("INFOBIP_API_KEY") or "",
            calls_configuration_id=get("INFOBIP_CALLS_CONFIGURATION_ID") or "",
            webhook_user=get("INFOBIP_WEBHOOK_USER"),
            webhook_password=get("INFOBIP_WEBHOOK_PASSWORD"),
            hmac_secret=get("INFOBIP_WEBHOOK_HMAC_SECRET"),
            hmac_header=get("INFOBIP_WEBHOOK_HMAC_HEADER") or DEFAULT_HMAC_HEADER,
            hmac_algorithm=get("INFOBIP_WEBHOOK_HMAC_ALGORITHM") or DEFAULT_HMAC_ALGORITHM,
            webhook_max_skew=seconds_setting(get, "INFOBIP_WEBHOOK_MAX_SKEW", DEFAULT_WEBHOOK_MAX_SKEW),
            sip_trunk_id=get("INFOBIP_SIP_TRUNK_ID"),
            hold_music=get("INFOBIP_HOLD_MUSIC"),
            command_deadline=seconds_setting(get, "INFOBIP_COMMAND_DEADLINE", 3.0),
            command_budget=seconds_setting(get, "INFOBIP_COMMAND_BUDGET", 15.0),
        )
