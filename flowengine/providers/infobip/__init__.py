"""Infobip Calls API: webhooks -> neutral events (``webhooks``, ``auth``), neutral actions -> REST
(``commands``, ``client``), tied together by ``InfobipAdapter``.

The adapter is imported lazily: ``flowengine validate --provider infobip`` only needs ``CAPABILITIES``
and should not pay for aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowengine.providers.infobip.capabilities import CAPABILITIES
from flowengine.providers.infobip.config import InfobipSettings
from flowengine.providers.retry import RetryPolicy

if TYPE_CHECKING:
    from flowengine.providers.infobip.adapter import InfobipAdapter, InfobipChannel

__all__ = ["CAPABILITIES", "InfobipAdapter", "InfobipChannel", "InfobipSettings", "RetryPolicy"]


def __getattr__(name: str) -> Any:
    if name in ("InfobipAdapter", "InfobipChannel"):
        from flowengine.providers.infobip import adapter

        return getattr(adapter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
