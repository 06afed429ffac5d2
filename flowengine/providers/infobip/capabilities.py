"""The neutral actions Infobip's Calls API can carry out (read by ``flowengine validate --provider``).

Pure data: import nothing heavier than the vocabulary. Infobip has no hold of its own: ``hold`` and
``resume`` are carried out as a muted, deafened participant hearing music played to its call.
"""

from __future__ import annotations

from flowengine.flow.vocabulary import PROVIDER_ACTIONS

CAPABILITIES: frozenset[str] = PROVIDER_ACTIONS
