"""``conferenceDtmfOptions`` (connectConf, conferenceCallout): what a conference participant's keys do.

Sinch's "Using DTMF in conferences" page: ``ignore`` (the default) does nothing with them, ``forward`` plays
them to the other participants, ``detect`` reports them to the app as a PIE whose ``menuResult`` has the
``conferenceId`` as ``menuId``, type ``sequence`` and the digits as ``value``; the PIE's ``callid`` is the
participant's call. ``maxDigits`` (default 1) keys make one report; with more than one, ``#`` or
``timeoutMills`` (default 3000) of silence between keys also ends it.

Not modelled: Sinch takes the participant out of the conference while it collects, and back in once the
PIE is sent. Keys pressed before the join wait in the party's type-ahead and are reported after it.
Unconfirmed, and chosen here: a ``#`` that ends an empty group reports nothing; the options are not
validated beyond their types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowengine.runtime.clock import Clock
from flowengine.simulator.legs import DtmfBuffer

MODES = ("ignore", "forward", "detect")
DEFAULT_MAX_DIGITS = 1
DEFAULT_TIMEOUT_MILLS = 3000
# How long one wait for a first key lasts before it simply starts over (keeps virtual time finite).
IDLE_WAIT = 3600.0


@dataclass(frozen=True)
class ConferenceDtmf:
    mode: str = "ignore"
    max_digits: int = DEFAULT_MAX_DIGITS
    timeout: float = DEFAULT_TIMEOUT_MILLS / 1000  # seconds allowed between two keys

    @property
    def detect(self) -> bool:
        return self.mode == "detect"


def _positive_int(options: dict[str, Any], key: str, default: int) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a positive integer")
    return value


def read_options(value: Any) -> ConferenceDtmf | None:
    """The options of a request, None when absent; ValueError says what is wrong with them."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("must be an object with mode, maxDigits and timeoutMills")
    mode = value.get("mode", "ignore")
    if mode not in MODES:
        raise ValueError("mode must be ignore, forward or detect")
    return ConferenceDtmf(
        mode=str(mode),
        max_digits=_positive_int(value, "maxDigits", DEFAULT_MAX_DIGITS),
        timeout=_positive_int(value, "timeoutMills", DEFAULT_TIMEOUT_MILLS) / 1000,
    )


def menu_result(conference_id: str, digits: str) -> dict[str, Any]:
    """The PIE ``menuResult`` of detected keys."""
    return {"menuId": conference_id, "type": "sequence", "value": digits, "inputMethod": "dtmf"}


async def next_keys(clock: Clock, dtmf: DtmfBuffer, options: ConferenceDtmf) -> str:
    """One group of keys as detection reports it; "" when nothing (or only ``#``) was keyed yet."""
    terminator = "#" if options.max_digits > 1 else None  # with maxDigits 1, # is a key like any other
    first = await dtmf.collect(clock, max_digits=1, timeout=IDLE_WAIT, terminator=terminator)
    digits = first.digits
    while digits and len(digits) < options.max_digits:
        more = await dtmf.collect(clock, max_digits=1, timeout=options.timeout, terminator=terminator)
        if not more.digits:
            break  # silence for timeoutMills, or #
        digits += more.digits
    return digits
