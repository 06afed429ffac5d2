"""Sinch Calling API v1: callbacks -> neutral events (``callbacks``, ``signing``), neutral actions ->
SVAML replies and REST (``svaml``, ``commands``, ``client``), tied together by ``SinchAdapter``.

The adapter is imported lazily: ``flowengine validate --provider sinch`` only needs ``CAPABILITIES``
and should not pay for aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowengine.providers.sinch.capabilities import CAPABILITIES
from flowengine.providers.sinch.config import SinchSettings

if TYPE_CHECKING:
    from flowengine.providers.sinch.adapter import SinchAdapter, SinchChannel

__all__ = ["CAPABILITIES", "SinchAdapter", "SinchChannel", "SinchSettings"]


def __getattr__(name: str) -> Any:
    if name in ("SinchAdapter", "SinchChannel"):
        from flowengine.providers.sinch import adapter

        return getattr(adapter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
