"""The neutral actions Sinch's Calling API v1 can carry out (read by ``flowengine validate --provider``).

Pure data: import nothing heavier than the vocabulary. Left out, because v1 has no API for them:
``deafen``/``undeafen`` (participants can be muted or held, not deafened), ``conference_say``,
``conference_play`` and ``conference_stop_play`` (prompts play on a call's leg, never to a whole
conference), ``conference_record`` and ``conference_stop_record`` (``startRecording`` is an SVAML
instruction about one call; v1 has no conference recording), and ``stop_play`` (a prompt on a leg
cannot be stopped; a conference's music on hold stops by itself when a second participant joins).

Some supported actions exist only inside the SVAML reply to a callback about that same call: ``answer``
(ICE), ``conference_join`` (ICE, ACE, PIE) and ``dial`` with ``connect`` (ICE). Elsewhere they fail at
run time with a ``ProviderError`` that says so. ``capture_dtmf`` is a menu in such a reply; elsewhere it
relies on the key detection every conference join asks for (so it hears only calls in a conference,
with the join's digit count and no timeout report).
"""

from __future__ import annotations

from flowengine.flow.vocabulary import PROVIDER_ACTIONS

UNSUPPORTED: frozenset[str] = frozenset({
    "deafen", "undeafen", "conference_say", "conference_play", "conference_stop_play", "stop_play",
    "conference_record", "conference_stop_record",
})
CAPABILITIES: frozenset[str] = PROVIDER_ACTIONS - UNSUPPORTED
