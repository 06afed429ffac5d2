"""The verdict on one run, from what the platform saw and what the engine's read API says.

- **Correct end**, per placed call: its session ended (status ``ended``) having gone through exactly the
  states the flow takes for the call's branch, and every call and conference it owns is over on the
  simulator.
- **Doubled**: requests the simulator carried out (2xx) more often than the flow sends them on the path
  the session actually took (the sum of each entered state's requests, ``flows.expected_requests``).
  ``act once`` are those that create or act (answer, conference, join, say, play, dial).
- **Orphans**: calls still up and conferences not finished on the simulator that no active session
  owns (so, once every session ended, any at all).
- **Stuck**: sessions still ``active``.
- **Rescued by a timer**: sessions a flow timer (``after:``) moved on; the seed's branches use none when
  nothing is lost, so each one is a session whose awaited event was lost and that waited for its
  safety net (the caller in silence, or on hold, meanwhile).
Ids are attributed to sessions by the session's own bindings, the conference name the flow gives
(``room-<session id>``) and the participants of a session's conferences.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chaos.flows import ACT_ONCE, Branch, expected_requests
from flowengine.simulator.infobip.model import ENDED_STATES

UNHEARD = "outcome unknown: not sent again"  # the trace's detail of a command settled at most once


@dataclass(frozen=True)
class Placed:
    call_id: str
    branch: Branch


@dataclass
class Observation:
    calls: dict[str, dict[str, Any]]  # the simulator's calls by id (Infobip's Call shape)
    conferences: dict[str, dict[str, Any]]  # by id, with "finished" and every participant
    requests: list[dict[str, Any]]  # the simulator's API request log
    webhooks: list[dict[str, Any]]  # every webhook POST and the engine's answer
    sessions: list[dict[str, Any]]  # GET /api/sessions/{id} of every session
    engine_log: dict[str, int] = field(default_factory=dict)
    relay: dict[str, int] = field(default_factory=dict)


@dataclass
class Figures:
    calls: int = 0
    correct: int = 0
    doubled: int = 0
    doubled_act_once: int = 0
    orphan_calls: int = 0
    orphan_conferences: int = 0
    stuck: int = 0
    webhooks_failed: int = 0  # POSTs the engine did not take (unreachable, 5xx, 404 ...)
    wrong: Counter[str] = field(default_factory=Counter)  # why calls did not end correctly
    doubled_kinds: Counter[str] = field(default_factory=Counter)  # "METHOD path" by role
    evidence: list[str] = field(default_factory=list)  # a few doubled requests as the log has them
    unattributed: int = 0  # 2xx requests no session owns
    rescued: int = 0  # sessions moved on by a flow timer
    timers_fired: Counter[str] = field(default_factory=Counter)  # "after:greeting:30s" ...
    unheard: int = 0  # correct ends on the path the flow takes when the platform failed the greeting


def states_entered(session: Mapping[str, Any]) -> list[str]:
    return [s["to"] for s in session.get("trace", []) if s.get("to") is not None and s["to"] != s.get("from")]


class Owners:
    """Which session owns a platform id, and as which role."""

    def __init__(self, obs: Observation) -> None:
        self.owner: dict[str, tuple[str, str]] = {}  # id -> (session id, role)
        for view in obs.sessions:
            for role, ref in {**view.get("calls", {}), **view.get("conferences", {})}.items():
                self.owner[ref] = (view["id"], role)
        rooms = {f"room-{view['id']}": view["id"] for view in obs.sessions}
        for conf_id, conference in obs.conferences.items():
            sid = rooms.get(conference.get("name", ""))
            if sid is not None:
                self.owner.setdefault(conf_id, (sid, "room"))  # a second room of the same session, too
            sid_role = self.owner.get(conf_id)
            for participant in conference.get("participants", []):
                if sid_role is not None:
                    self.owner.setdefault(participant["callId"], (sid_role[0], "callee"))
        self.rooms = rooms

    def of_request(self, request: Mapping[str, Any]) -> tuple[str | None, str]:
        """(session id, ``METHOD path`` with ids shown as roles) of one logged request."""
        path, sid = request["path"], None
        for part in path.split("/"):
            if part in self.owner:
                sid, role = self.owner[part]
                path = path.replace(part, "{" + role + "}")
        body = request.get("body")
        if sid is None and request["path"] == "/calls/1/conferences" and isinstance(body, dict):
            sid = self.rooms.get(str(body.get("name")))
        return sid, f"{request['method']} {path}"


def judge(obs: Observation, placed: Sequence[Placed]) -> Figures:
    figures = Figures(calls=len(placed))
    owners = Owners(obs)
    by_caller = {view.get("calls", {}).get("caller"): view for view in obs.sessions}
    for call in placed:
        view = by_caller.get(call.call_id)
        why = _wrong_end(obs, view, call.branch)
        if why is not None and view is not None and _greeting_unheard(view) and call.branch.unheard:
            why = _wrong_end(obs, view, replace(call.branch, path=call.branch.unheard))
            figures.unheard += why is None
        figures.correct += why is None
        if why is not None:
            figures.wrong[f"{call.branch.name}: {why}"] += 1
    _count_doubled(obs, owners, figures)
    for view in obs.sessions:
        fired = [s["event"] for s in view.get("trace", []) if s["event"].startswith("after:") and s.get("to")]
        figures.rescued += bool(fired)
        figures.timers_fired.update(fired)
    active = {view["id"] for view in obs.sessions if view.get("status") == "active"}
    figures.stuck = len(active)
    figures.orphan_calls = sum(
        c["state"] not in ENDED_STATES and owners.owner.get(cid, ("", ""))[0] not in active
        for cid, c in obs.calls.items()
    )
    figures.orphan_conferences = sum(
        not c["finished"] and owners.owner.get(cid, ("", ""))[0] not in active
        for cid, c in obs.conferences.items()
    )
    figures.webhooks_failed = sum(w.get("status") is None or w["status"] >= 300 for w in obs.webhooks)
    return figures


def _greeting_unheard(view: Mapping[str, Any]) -> bool:
    """The greeting's say was refused or its answer lost, so the engine did not send it again (at most
    once, its trace says): no say.finished was coming, and the flow's greeting timer moved it on."""
    return any(step.get("to") == "greeting" and ["say", "ok", UNHEARD] in step.get("commands", [])
               for step in view.get("trace", []))


def _wrong_end(obs: Observation, view: Mapping[str, Any] | None, branch: Branch) -> str | None:
    """None if the call ended the way the flow says for its branch, else why not (short, countable)."""
    if view is None:
        return "no session"
    if view.get("status") != "ended":
        return f"session {view.get('status')} in {view.get('state')}"
    path = states_entered(view)
    if tuple(path) != branch.path:
        divergence = next((i for i, (a, b) in enumerate(zip(path, branch.path, strict=False)) if a != b),
                          min(len(path), len(branch.path)))
        return f"went {' > '.join(path[max(0, divergence - 1):])}"
    if any(obs.calls.get(ref, {}).get("state") not in ENDED_STATES for ref in view.get("calls", {}).values()):
        return "a call of the session is still up"
    if any(not obs.conferences.get(ref, {}).get("finished", False)
           for ref in view.get("conferences", {}).values()):
        return "its conference is still open"
    return None


def _count_doubled(obs: Observation, owners: Owners, figures: Figures) -> None:
    carried: dict[str, Counter[str]] = {}
    examples: dict[tuple[str, str], list[str]] = {}
    for request in obs.requests:
        if request["status"] >= 300:
            continue  # refused by the platform: not carried out
        if request["method"] == "GET":
            continue  # a question (reconciliation asking what happened), not a command
        sid, kind = owners.of_request(request)
        if sid is None:
            figures.unattributed += 1
            continue
        carried.setdefault(sid, Counter())[kind] += 1
        examples.setdefault((sid, kind), []).append(
            f"{request['method']} {request['path']} -> {request['status']} at {request['at']:.2f}")
    for view in obs.sessions:
        expected = expected_requests(states_entered(view))
        for kind, count in carried.get(view["id"], Counter()).items():
            extra = count - expected[kind]
            if extra <= 0:
                continue
            figures.doubled += extra
            figures.doubled_act_once += extra if ACT_ONCE.search(kind) else 0
            figures.doubled_kinds[kind] += extra
            if len(figures.evidence) < 6:
                seen = "; ".join(examples[view["id"], kind])
                figures.evidence.append(f"{view['id']} ({view.get('state')}): {kind} x{count}, "
                                        f"flow sends {expected[kind]}: {seen}")
