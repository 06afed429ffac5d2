"""SVAML as Sinch accepts it: ``{"instructions": [{"name": …}, …], "action": {"name": …}}`` with the
instructions and actions each event allows, plus how long spoken prompts take."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from flowengine.simulator.legs import FILE_SECONDS, speech_seconds
from flowengine.simulator.sinch.conference_dtmf import read_options

_ICE_INSTRUCTIONS = {"playFiles", "say", "sendDtmf", "setCookie", "startRecording", "answer"}
_PIE_INSTRUCTIONS = {"playFiles", "say", "sendDtmf", "setCookie", "startRecording", "stopRecording"}

# event -> (allowed actions, allowed instructions). "update" is PATCH /calls/id/{callId}.
ALLOWED: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "ice": (
        frozenset(
            {
                "hangup",
                "connectPstn",
                "connectMxp",
                "connectConf",
                "connectSip",
                "connectStream",
                "runMenu",
                "park",
            }
        ),
        frozenset(_ICE_INSTRUCTIONS),
    ),
    "ace": (
        frozenset({"hangup", "continue", "connectConf", "runMenu"}),
        frozenset({"playFiles", "say", "setCookie", "startRecording"}),
    ),
    "pie": (
        frozenset({"hangup", "continue", "connectPstn", "connectConf", "connectSip", "runMenu"}),
        frozenset(_PIE_INSTRUCTIONS),
    ),
    "update": (frozenset({"hangup", "continue", "park"}), frozenset(_PIE_INSTRUCTIONS)),
    "leg": (frozenset({"continue"}), frozenset({"playFiles", "say"})),
}
# Events whose reply may omit the action (it then means "continue"): an ACE needs no reply at all. Any
# SVAML object sent by PATCH carries exactly one action (Sinch's SVAML reference), the leg's too.
_ACTION_OPTIONAL = {"ace"}
MOH_CLASSES = frozenset({"ring", "music1", "music2", "music3"})
_PROMPT = re.compile(r"^#(tts|ssml|href)\[(.*)\]$", re.DOTALL)


def one_of(value: Any, allowed: Collection[str]) -> bool:
    """Membership for untrusted JSON values (a list is unhashable and must not crash the check)."""
    return isinstance(value, str) and value in allowed


class SvamlError(ValueError):
    """The SVAML is unusable (Sinch drops a call whose ICE reply is like that)."""


@dataclass(frozen=True)
class Svaml:
    instructions: tuple[dict[str, Any], ...]
    action: dict[str, Any]

    @property
    def action_name(self) -> str:
        return str(self.action["name"])


CONTINUE = Svaml((), {"name": "continue"})


def parse_svaml(value: Any, event: str) -> Svaml:
    """Check a reply or PATCH body against what ``event`` allows."""
    actions, instructions = ALLOWED[event]
    if value is None and event in _ACTION_OPTIONAL:
        return CONTINUE
    if not isinstance(value, dict):
        raise SvamlError("SVAML must be a JSON object with instructions and an action")
    steps = value.get("instructions") or []
    if not isinstance(steps, list) or not all(
        isinstance(s, dict) and isinstance(s.get("name"), str) for s in steps
    ):
        raise SvamlError("instructions must be a list of objects with a name")
    for step in steps:
        if step["name"] not in instructions:
            raise SvamlError(f"instruction {step['name']!r} is not allowed in a {event} response")
        _check_instruction(step)
    action = value.get("action")
    if action is None and event in _ACTION_OPTIONAL:
        action = {"name": "continue"}
    if not isinstance(action, dict) or not isinstance(action.get("name"), str):
        raise SvamlError("SVAML needs exactly one action with a name")
    if action["name"] not in actions:
        raise SvamlError(f"action {action['name']!r} is not allowed in a {event} response")
    _check_action(action)
    return Svaml(tuple(steps), action)


# SVAML's startRecording options (Sinch's recording page): there is no beep and no time limit.
RECORDING_OPTIONS = frozenset({"destinationUrl", "credentials", "format", "notificationEvents",
                               "transcriptionOptions"})
_E164 = re.compile(r"^\+?[1-9]\d{4,14}$")


def _check_instruction(step: dict[str, Any]) -> None:
    name = step["name"]
    if name == "startRecording":
        options = step.get("options") or {}
        unknown = sorted(set(options) - RECORDING_OPTIONS) if isinstance(options, dict) else ["options"]
        if unknown:
            raise SvamlError(f"startRecording takes no {', '.join(unknown)}")
    if name == "say" and (not isinstance(step.get("text"), str) or len(step["text"]) > 600):
        raise SvamlError("say needs a text of at most 600 characters")
    if name == "playFiles" and not (isinstance(step.get("ids"), list) and step["ids"]):
        raise SvamlError("playFiles needs a non-empty ids list")
    if name == "sendDtmf" and not isinstance(step.get("value"), str):
        raise SvamlError("sendDtmf needs a value")
    if name == "setCookie" and not (isinstance(step.get("key"), str) and isinstance(step.get("value"), str)):
        raise SvamlError("setCookie needs a key and a value")


def _check_action(action: dict[str, Any]) -> None:
    name = action["name"]
    if name == "connectConf":
        conference_id = action.get("conferenceId")
        if not isinstance(conference_id, str) or not 0 < len(conference_id) <= 64:
            raise SvamlError("connectConf needs a conferenceId of 1 to 64 characters")
        if action.get("moh") is not None and not one_of(action["moh"], MOH_CLASSES):
            raise SvamlError("connectConf moh must be ring, music1, music2 or music3")
        try:
            read_options(action.get("conferenceDtmfOptions"))
        except ValueError as exc:
            raise SvamlError(f"connectConf conferenceDtmfOptions: {exc}") from None
    elif name == "connectPstn" and not _E164.match(str(action.get("number") or "")):
        raise SvamlError("connectPstn needs a phone number in E.164 format")
    elif name == "runMenu":
        menus = action.get("menus")
        if (
            not isinstance(menus, list)
            or not menus
            or not all(isinstance(m, dict) and m.get("id") for m in menus)
        ):
            raise SvamlError("runMenu needs menus, each with an id")
    elif name in {"connectMxp", "connectSip", "connectStream"}:
        raise SvamlError(f"{name} is not supported by the simulator")


def prompt_seconds(prompts: str | None) -> float:
    """How long Sinch prompts take: ``#tts[...]``/``#ssml[...]`` as speech, anything else as a file;
    several prompts are separated by ``;``."""
    total = 0.0
    for prompt in (prompts or "").split(";"):
        prompt = prompt.strip()
        if not prompt:
            continue
        match = _PROMPT.match(prompt)
        if match and match.group(1) in ("tts", "ssml"):
            total += speech_seconds(match.group(2))
        else:
            total += FILE_SECONDS
    return total


def instruction_seconds(step: dict[str, Any]) -> float:
    """How long an instruction keeps the call busy."""
    if step["name"] == "say":
        return speech_seconds(str(step.get("text", "")))
    if step["name"] == "playFiles":
        return sum(prompt_seconds(str(item)) for item in step.get("ids", []))
    return 0.0
