"""Scripted remote parties: who answers, who is busy, who hangs up when, who presses what.

Both simulators look the dialled number up in a ``PartyBook`` and follow its ``PartyScript``. The script is
plain data (frozen, loadable from a YAML mapping) and ``plan_dial`` turns it into a timeline, so the
platform code only has to play that timeline out on its own wire format.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# How long the network takes before the far end starts ringing, or reports busy/unreachable.
RING_DELAY = 0.5
SETUP_DELAY = 0.2
# A rejecting party with no ``answer_after`` declines after this long.
DEFAULT_REJECT_AFTER = 1.0

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_DIGITS = re.compile(r"^[0-9*#A-Da-d]+$")
_FIELDS = ("answer_after", "busy", "reject", "unreachable", "hangup_after", "press", "machine")
# How long a platform's answering machine detection listens after the answer before it says who it was
# (Infobip's default detectionTime).
DETECTION_SECONDS = 3.7


def parse_duration(value: Any, what: str) -> float:
    """Seconds from a number or a string like ``"2s"``, ``"500ms"``, ``"1.5m"``."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected seconds (a number or e.g. '2s'), got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"{what}: expected seconds (a number or e.g. '2s'), got {value!r}")
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"{what}: must be a finite number of seconds >= 0, got {value!r}")
    return seconds


@dataclass(frozen=True)
class PartyScript:
    """How one remote party behaves.

    ``answer_after``: seconds of ringing before answering (None: never answers, so the dial times out).
    ``busy`` / ``reject`` / ``unreachable``: the call fails that way instead (at most one of them).
    ``hangup_after``: seconds after answering at which the party hangs up (None: stays until hung up).
    ``press``: (seconds after answer, digits) pairs the party keys in.
    ``machine``: an answering machine answers (machine detection, if the dial asked for it, says so).
    For an inbound caller only ``hangup_after`` and ``press`` matter (counted from the app's answer).
    """

    answer_after: float | None = 2.0
    busy: bool = False
    reject: bool = False
    unreachable: bool = False
    hangup_after: float | None = None
    press: tuple[tuple[float, str], ...] = ()
    machine: bool = False

    def __post_init__(self) -> None:
        if sum((self.busy, self.reject, self.unreachable)) > 1:
            raise ValueError("party script: at most one of busy, reject, unreachable may be true")
        for name in ("answer_after", "hangup_after"):
            value = getattr(self, name)
            if value is not None and (value < 0 or not math.isfinite(value)):
                raise ValueError(f"party script: {name} must be >= 0 seconds or null, got {value!r}")
        for at, digits in self.press:
            if at < 0 or not _DIGITS.match(digits):
                raise ValueError(
                    f"party script: press entries need a delay >= 0 and DTMF digits, got {(at, digits)!r}"
                )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PartyScript:
        """Build a script from a plain mapping (a YAML scenario entry); ValueError says what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"party script: expected a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise ValueError(
                f"party script: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(_FIELDS)}"
            )
        kwargs: dict[str, Any] = {}
        for name in ("answer_after", "hangup_after"):
            if name in data:
                value = data[name]
                kwargs[name] = None if value is None else parse_duration(value, f"party script: {name}")
        for name in ("busy", "reject", "unreachable", "machine"):
            if name in data:
                if not isinstance(data[name], bool):
                    raise ValueError(f"party script: {name} must be true or false, got {data[name]!r}")
                kwargs[name] = data[name]
        if "press" in data:
            kwargs["press"] = _parse_presses(data["press"])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer_after": self.answer_after,
            "busy": self.busy,
            "reject": self.reject,
            "unreachable": self.unreachable,
            "hangup_after": self.hangup_after,
            "press": [[at, digits] for at, digits in self.press],
            "machine": self.machine,
        }


def _parse_presses(value: Any) -> tuple[tuple[float, str], ...]:
    """Accept ``[[1.5, "1"], ...]``, ``[{"after": 1.5, "digits": "1"}, ...]`` or ``{"1.5s": "1"}``."""
    items: list[Any]
    if isinstance(value, Mapping):
        items = [[at, digits] for at, digits in value.items()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError(f"party script: press must be a list of [seconds, digits], got {value!r}")
    presses: list[tuple[float, str]] = []
    for item in items:
        if isinstance(item, Mapping) and set(item) == {"after", "digits"}:
            at, digits = item["after"], item["digits"]
        elif isinstance(item, list | tuple) and len(item) == 2:
            at, digits = item
        else:
            raise ValueError(
                f"party script: press entry must be [seconds, digits] or {{after, digits}}, got {item!r}"
            )
        if isinstance(digits, int) and not isinstance(digits, bool):
            digits = str(digits)  # YAML reads `1` as a number
        if not isinstance(digits, str) or not _DIGITS.match(digits):
            raise ValueError(
                f"party script: press digits must be DTMF characters 0-9 * # A-D, got {digits!r}"
            )
        presses.append((parse_duration(at, "party script: press delay"), digits))
    return tuple(sorted(presses, key=lambda p: p[0]))


def number_key(number: str) -> str:
    """Phone numbers match with or without '+', spaces or dashes; other identities match exactly."""
    digits = re.sub(r"[\s\-().]", "", number).removeprefix("+")
    return digits if digits.isdigit() else number


class PartyBook:
    """Scripts by phone number, with a default for everybody else (answers after 2 s)."""

    def __init__(self, scripts: Mapping[str, PartyScript] | None = None, default: PartyScript | None = None):
        self.default = default or PartyScript()
        self._scripts = {number_key(k): v for k, v in (scripts or {}).items()}

    def script_for(self, number: str) -> PartyScript:
        return self._scripts.get(number_key(number), self.default)

    def set(self, number: str, script: PartyScript) -> None:
        self._scripts[number_key(number)] = script

    def remove(self, number: str) -> bool:
        return self._scripts.pop(number_key(number), None) is not None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PartyBook:
        """``{"default": {...}, "447415784323": {...}}``; the ``default`` key is optional."""
        if not isinstance(data, Mapping):
            raise ValueError(f"party book: expected a mapping of number -> script, got {type(data).__name__}")
        scripts: dict[str, PartyScript] = {}
        for number, spec in data.items():
            try:
                scripts[str(number)] = PartyScript.from_dict(spec)
            except ValueError as exc:
                raise ValueError(f"party {number}: {exc}") from None
        default = scripts.pop("default", None)
        return cls(scripts, default)

    def to_dict(self) -> dict[str, Any]:
        out = {"default": self.default.to_dict()}
        out.update({number: script.to_dict() for number, script in self._scripts.items()})
        return out


class DialOutcome(enum.Enum):
    ANSWERED = "answered"
    BUSY = "busy"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"
    NO_ANSWER = "no_answer"


@dataclass(frozen=True)
class DialPlan:
    """What happens to an outbound dial: ringing starts at ``ring_at`` (None: never rings), and
    ``outcome`` happens at ``at`` seconds after the dial started."""

    ring_at: float | None
    outcome: DialOutcome
    at: float


def plan_dial(script: PartyScript, timeout: float) -> DialPlan:
    """The timeline of dialling a party with this connect timeout (seconds)."""
    if script.unreachable:
        return DialPlan(None, DialOutcome.UNREACHABLE, SETUP_DELAY)
    if script.busy:
        return DialPlan(None, DialOutcome.BUSY, SETUP_DELAY)
    if script.reject:
        decide_at = script.answer_after if script.answer_after is not None else DEFAULT_REJECT_AFTER
        outcome = DialOutcome.REJECTED
    else:
        decide_at = script.answer_after if script.answer_after is not None else math.inf
        outcome = DialOutcome.ANSWERED
    if decide_at > timeout:
        return DialPlan(min(RING_DELAY, timeout), DialOutcome.NO_ANSWER, timeout)
    return DialPlan(min(RING_DELAY, decide_at), outcome, decide_at)
