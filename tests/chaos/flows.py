"""The seed flow's branches as the chaos runs play them, and what the flow sends in each state.

Every call of a run dials the same callee number in the seed flow, so a run mixing branches needs a
callee number per branch: each branch gets a copy of ``flows/two_party_conference.yaml`` that differs in
exactly two lines, its ``flow:`` name and ``vars.callee``, answering its own called number (a config
route). States, actions and timers are the seed's own.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEED_FLOW = Path(__file__).resolve().parents[2] / "flows" / "two_party_conference.yaml"
SEED_NAME, SEED_CALLEE = "two-party-conference", "447415784323"
OPENED = ["answering", "opening_room", "greeting", "dialing"]


@dataclass(frozen=True)
class Branch:
    """One way the seed scenario can go: the scripts of both parties and the states the flow says the
    session goes through for them (the correct end)."""

    name: str
    callee: Mapping[str, Any]  # the dialled party's script
    path: tuple[str, ...]  # states entered, in order, when the flow runs as written
    caller: Mapping[str, Any] = field(default_factory=dict)  # the inbound caller's script
    seconds: float = 20.0  # about how long the branch takes undisturbed (wall clock)
    # The states entered when the platform failed the greeting (its say's outcome unknown, so not sent
    # again): the flow waits for its 30 s greeting timer, and a caller who hangs up before that does so
    # in the greeting. Empty: the branch's path is the same then.
    unheard: tuple[str, ...] = ()


# The greeting takes ~8.5 s to say on the simulator (0.07 s a character), so the dial goes out at ~9 s.
BRANCHES: dict[str, Branch] = {
    b.name: b
    for b in (
        Branch("answers", {"answer_after": "2s", "hangup_after": "4s"}, (*OPENED, "connected", "closing")),
        Branch("busy", {"busy": True}, (*OPENED, "callee_unavailable", "closing"), seconds=15),
        # Declines after ringing 2 s: like busy, but the platform says so only 2 s after the dial.
        Branch("rejects", {"reject": True, "answer_after": "2s"}, (*OPENED, "callee_unavailable", "closing"),
               seconds=18),
        # The platform's connect timeout (the flow's dial `timeout: 60s`) runs in wall-clock time.
        Branch("no-answer", {"answer_after": None}, (*OPENED, "callee_unavailable", "closing"), seconds=75),
        # The caller gives up 14 s after being answered, while the callee (answering at 40 s) rings.
        Branch("caller-hangs-up", {"answer_after": "40s"}, (*OPENED, "abandoned"),
               caller={"hangup_after": "14s"}, seconds=15, unheard=(*OPENED[:3], "done")),
    )
}


# The branches the large runs mix (the four: answers, no answer, busy, caller hangs up).
MIX = ("answers", "busy", "no-answer", "caller-hangs-up")


def callee_number(index: int) -> str:
    return f"4474157843{index:02d}"


def called_number(index: int) -> str:
    return f"45924579{index:02d}"


def branch_flow(branch: Branch, index: int, directory: Path) -> Path:
    """Write the seed flow's copy for ``branch`` (its own name and callee number) and return its path."""
    text = SEED_FLOW.read_text()
    text, names = re.subn(rf"^flow: {SEED_NAME}$", f"flow: {SEED_NAME}-{branch.name}", text, flags=re.M)
    text, callees = re.subn(
        rf'^(\s+callee: )"{SEED_CALLEE}"', rf'\g<1>"{callee_number(index)}"', text, flags=re.M
    )
    if (names, callees) != (1, 1):  # the seed changed shape: the copy would not be the seed any more
        raise RuntimeError(f"{SEED_FLOW}: expected one flow name and one vars.callee line")
    path = directory / f"{SEED_NAME}-{branch.name}.yaml"
    path.write_text(text)
    return path


# What the seed flow sends in each state it enters (Infobip wire, ids by role), as tests/e2e/conftest.py
# lists it: the expected request multiset of a session is the sum over the states it entered.
_ENTRY_REQUESTS: dict[str, list[str]] = {
    "answering": ["POST /calls/1/calls/{caller}/answer"],
    "opening_room": ["POST /calls/1/conferences", "PUT /calls/1/conferences/{room}/call/{caller}"],
    "greeting": ["POST /calls/1/calls/{caller}/say"],
    "dialing": [
        "PATCH /calls/1/conferences/{room}/call/{caller}",  # hold: muted and deaf in the room ...
        "POST /calls/1/calls/{caller}/play",  # ... hearing the music on their own call
        "POST /calls/1/conferences/{room}/call",  # the callee dialled into the room
    ],
    "connected": [
        "POST /calls/1/calls/{caller}/stop-play",
        "PATCH /calls/1/conferences/{room}/call/{caller}",
        "POST /calls/1/calls/{caller}/say",
    ],
    "abandoned": ["POST /calls/1/calls/{callee}/hangup"],
    "giving_up": ["POST /calls/1/calls/{caller}/hangup"],
    "closing": ["POST /calls/1/conferences/{room}/hangup"],
    "done": [],
    # An aborted session hangs up whatever it still holds, each at most once.
    "failed": [
        "POST /calls/1/calls/{caller}/hangup",
        "POST /calls/1/calls/{callee}/hangup",
        "POST /calls/1/conferences/{room}/hangup",
    ],
}
_ENTRY_REQUESTS["callee_unavailable"] = _ENTRY_REQUESTS["connected"]

# Requests that create something or act once: carried out twice, someone hears or gets something twice.
ACT_ONCE = re.compile(
    r"/answer$|^POST /calls/1/conferences$|/say$|/play$|^POST \S+/conferences/\{room\}/call$|^PUT "
)


def expected_requests(states_entered: Iterable[str]) -> Counter[str]:
    """The requests the flow sends for this path, one each per entry; an unknown state sends nothing
    the judge can know of (reported as unexpected requests instead)."""
    expected: Counter[str] = Counter()
    for state in states_entered:
        expected.update(_ENTRY_REQUESTS.get(state, []))
    return expected
