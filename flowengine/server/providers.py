"""Build the configured provider adapter. Config keys overlay the provider's environment variables
(``base_url`` -> ``INFOBIP_BASE_URL``), so one settings reader serves both sources."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flowengine.errors import ConfigError
from flowengine.providers.base import Adapter
from flowengine.runtime.clock import Clock

# How to authenticate each platform's webhooks: what `serve` says when they are not.
WEBHOOK_AUTH_HELP = {
    "infobip": (
        "set INFOBIP_WEBHOOK_USER and INFOBIP_WEBHOOK_PASSWORD (Basic, as set in the subscription's "
        "security) and/or INFOBIP_WEBHOOK_HMAC_SECRET (HMAC of the body; header INFOBIP_WEBHOOK_HMAC_HEADER, "
        "default X-Signature), or webhook_user/webhook_password/webhook_hmac_secret under `infobip:` in "
        "the config"
    ),
    "sinch": (
        "set SINCH_APPLICATION_KEY and SINCH_APPLICATION_SECRET (callbacks are signed with them; "
        "SINCH_CALLBACK_AUTH=signed, or basic), or application_key/application_secret under `sinch:` in "
        "the config"
    ),
}


def provider_environ(
    provider: str, settings: Mapping[str, Any], environ: Mapping[str, str]
) -> dict[str, str]:
    prefix = provider.upper() + "_"
    overlay = {prefix + key.upper(): str(value) for key, value in settings.items() if value not in ("", None)}
    return {**environ, **overlay}


def build_adapter(
    provider: str, settings: Mapping[str, Any], clock: Clock, environ: Mapping[str, str] | None = None
) -> Adapter:
    env = provider_environ(provider, settings, os.environ if environ is None else environ)
    if provider == "infobip":
        from flowengine.providers.infobip.adapter import InfobipAdapter
        from flowengine.providers.infobip.config import InfobipSettings

        return InfobipAdapter(InfobipSettings.from_env(env), clock=clock)
    if provider == "sinch":
        from flowengine.providers.sinch.adapter import SinchAdapter
        from flowengine.providers.sinch.config import SinchSettings

        return SinchAdapter(SinchSettings.from_env(env), clock=clock)
    raise ConfigError(f'unknown provider "{provider}" (expected "infobip" or "sinch")')
