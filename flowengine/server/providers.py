"""Build the configured provider adapter. Config keys overlay the provider's environment variables
(``base_url`` -> ``INFOBIP_BASE_URL``), so one settings reader serves both sources."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flowengine.errors import ConfigError
from flowengine.providers.base import Adapter
from flowengine.runtime.clock import Clock


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
