"""What Infobip's Calls API can run (read by ``validate --provider infobip`` and ``serve``; the README's
provider table is generated from it).

Pure data: import nothing heavier than the language's platform types. Infobip takes every command over
REST whatever the flow is handling, so no action has a place. Infobip has no hold of its own: ``hold``
and ``resume`` are carried out as a muted, deafened participant hearing music played to its call.
"""

from __future__ import annotations

from flowengine.flow.platform import Constraint, Platform

MAX_CONNECT_TIMEOUT = 60  # seconds a dialled call may ring (``connectTimeout``); Infobip refuses more

_CAPPED = (f"rings at most {MAX_CONNECT_TIMEOUT} s (`connectTimeout`): a longer `timeout` is cut to "
           f"{MAX_CONNECT_TIMEOUT} s")

PLATFORM = Platform(
    name="infobip",
    title="Infobip Calls API",
    cannot={},
    constraints=(
        Constraint("infobip/dial-timeout", "dial", "timeout", _CAPPED, param="timeout",
                   limit=MAX_CONNECT_TIMEOUT),
        Constraint("infobip/conference_dial-timeout", "conference_dial", "timeout", _CAPPED, param="timeout",
                   limit=MAX_CONNECT_TIMEOUT),
    ),
)
PLATFORM.check()

CAPABILITIES: frozenset[str] = PLATFORM.supported
