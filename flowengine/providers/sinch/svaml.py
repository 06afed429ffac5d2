"""SVAML, Sinch's call-control language: ``{"instructions": [...], "action": {...}}`` with exactly one
action. Builders for the instructions and actions the adapter uses, the per-event rules of what a reply
may hold, and ``ReplyBuilder``, which gathers one callback's reply. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flowengine.providers.base import JSON
from flowengine.runtime.ports import Media, Music

MAX_SAY = 600  # characters Sinch accepts in one say
# Text-to-speech pace used to tell a flow when a say is over (~150 words a minute); Sinch reports no end.
SECONDS_PER_CHAR = 0.07
# Languages written without a region get the region most voices exist for.
_REGIONS = {
    "en": "US", "de": "DE", "fr": "FR", "es": "ES", "it": "IT", "pt": "BR", "nl": "NL", "sv": "SE",
    "da": "DK", "nb": "NO", "no": "NO", "fi": "FI", "pl": "PL", "ru": "RU", "tr": "TR", "ja": "JP",
    "ko": "KR", "zh": "CN", "ar": "SA", "hi": "IN", "cs": "CZ", "ro": "RO", "hu": "HU", "el": "GR",
}
_TAGS = re.compile(r"<[^>]*>")

# event -> (actions, instructions) a reply to it may hold: Sinch's SVAML reference (its actions table lets
# a PIE reply bridge with connectPstn, which the wire reference's section 6 leaves out).
ALLOWED: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "ice": (
        frozenset({"hangup", "connectPstn", "connectMxp", "connectConf", "connectSip", "connectStream",
                   "runMenu", "park"}),
        frozenset({"playFiles", "say", "sendDtmf", "setCookie", "startRecording", "answer"}),
    ),
    "ace": (
        frozenset({"hangup", "continue", "connectConf", "runMenu"}),
        frozenset({"playFiles", "say", "setCookie", "startRecording"}),
    ),
    "pie": (
        frozenset({"hangup", "continue", "connectPstn", "connectConf", "connectSip", "runMenu"}),
        frozenset({"playFiles", "say", "sendDtmf", "setCookie", "startRecording", "stopRecording"}),
    ),
}
REPLY_EVENTS = frozenset(ALLOWED)
# The id of the one menu ``run_menu`` builds: a PIE about any other menu id comes from conference key
# detection, which reports the conference id there.
MENU_ID = "main"


# -- instructions ----------------------------------------------------------------------------------
def answer() -> JSON:
    return {"name": "answer"}


def say(text: str, locale: str) -> JSON:
    return {"name": "say", "text": text, "locale": locale}


def play_files(ids: list[str], locale: str) -> JSON:
    return {"name": "playFiles", "ids": ids, "locale": locale}


def send_dtmf(digits: str) -> JSON:
    return {"name": "sendDtmf", "value": digits}


def start_recording() -> JSON:
    return {"name": "startRecording", "options": {"notificationEvents": True}}


def stop_recording() -> JSON:
    return {"name": "stopRecording"}


# -- actions ---------------------------------------------------------------------------------------
def hangup() -> JSON:
    return {"name": "hangup"}


def continue_() -> JSON:
    return {"name": "continue"}


def park() -> JSON:
    return {"name": "park"}


def connect_conf(conference_id: str, moh: Music | None, dtmf: JSON | None = None) -> JSON:
    """Into the conference; ``dtmf`` is its ``conferenceDtmfOptions`` (see ``conference_dtmf``)."""
    action: JSON = {"name": "connectConf", "conferenceId": conference_id}
    if moh is not None:
        action["moh"] = moh
    if dtmf is not None:
        action["conferenceDtmfOptions"] = dtmf
    return action


def conference_dtmf(max_digits: int, timeout: float) -> JSON:
    """``conferenceDtmfOptions`` that report a participant's keys to us: one PIE per ``max_digits`` keys
    (fewer when ``#`` or ``timeout`` seconds of silence between keys end them), ``menuId`` = conference id.
    Sinch's own sample spells ``timoutMills``; the SDKs' ``timeoutMills`` is what we send."""
    return {"mode": "detect", "maxDigits": max(1, max_digits), "timeoutMills": max(1, round(timeout * 1000))}


def connect_pstn(number: str, cli: str | None, dial_timeout: int | None, *, amd: bool = False) -> JSON:
    """``dial_timeout`` None: the platform's own. ``amd``: answering machine detection, synchronous: the
    ACE comes once it is known, carrying ``amd{status, reason, duration}``."""
    action: JSON = {"name": "connectPstn", "number": number}
    if dial_timeout is not None:
        action["dialTimeout"] = dial_timeout
    if cli:
        action["cli"] = cli
    if amd:
        action["amd"] = {"enabled": True}
    return action


def connect_callout(to: JSON, cli: str | None) -> JSON:
    """The reply to a callout's own ICE: connect it to the destination it was placed to (Sinch's callout
    reference allows connectPstn there; a user or SIP destination gets connectMxp / connectSip, which
    is unconfirmed). The dial timeout stays the engine's (``_ring_for``)."""
    kind, endpoint = str(to.get("type") or "number"), str(to.get("endpoint") or "")
    if kind == "username":
        return {"name": "connectMxp", "destination": {"type": "username", "endpoint": endpoint}}
    if kind == "sip":
        return {"name": "connectSip", "destination": {"endpoint": endpoint}}
    number = cli if cli and cli.lstrip("+").isdigit() else None  # "private", "anonymous": none shown
    return connect_pstn(endpoint, number, None)


def run_menu(max_digits: int, timeout: float, prompt: str | None, locale: str) -> JSON:
    """One menu without options: Sinch returns what was keyed as a ``sequence`` (or a ``timeout``)."""
    menu: JSON = {"id": MENU_ID, "maxDigits": max(1, max_digits), "repeats": 0,
                  "timeoutMills": max(1, round(timeout * 1000)), "options": []}
    if prompt:
        menu["mainPrompt"] = f"#tts[{prompt}]"
    return {"name": "runMenu", "locale": locale, "mainMenu": MENU_ID, "menus": [menu]}


def svaml(instructions: list[JSON], action: JSON) -> JSON:
    """A SVAML object: any number of instructions and exactly one action (Sinch's SVAML reference)."""
    return {"instructions": instructions, "action": action}


# -- neutral values -> Sinch -----------------------------------------------------------------------
def locale(language: str) -> str:
    """``en`` -> ``en-US``, ``en-gb`` -> ``en-GB``: Sinch voices are chosen by locale."""
    lang, _, region = language.strip().replace("_", "-").partition("-")
    lang = lang.lower()
    region = region.upper() or _REGIONS.get(lang, "")
    return f"{lang}-{region}" if region else lang


def prompt(media: Media) -> str:
    """A playFiles id: an uploaded file's id as is, a URL as ``#href[...]``."""
    if media.file_id:
        return media.file_id
    if media.url:
        return f"#href[{media.url}]"
    raise ValueError("play needs a file_id or a url")


def say_texts(text: str, loop: int) -> list[str]:
    """The text in pieces of at most ``MAX_SAY`` characters (cut at spaces), ``loop`` times over."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > MAX_SAY:
        cut = rest.rfind(" ", 0, MAX_SAY + 1)
        cut = cut if cut > 0 else MAX_SAY
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    pieces.append(rest)
    return pieces * max(1, loop)


def speech_seconds(text: str) -> float:
    return len(_TAGS.sub("", text)) * SECONDS_PER_CHAR


def instruction_seconds(instruction: JSON) -> float:
    """How long an instruction keeps the call busy, as far as we can know (files have no known length)."""
    return speech_seconds(str(instruction.get("text", ""))) if instruction.get("name") == "say" else 0.0


# -- one callback's reply --------------------------------------------------------------------------
_DEFAULT_ACTIONS = {"ice": park(), "ace": continue_(), "pie": continue_()}


@dataclass
class ReplyBuilder:
    """Gathers the SVAML answering one ICE, ACE or PIE: instructions in order, then exactly one action.
    The first action closes it; so does ``build()`` (the reply is on its way). Without an action the
    reply parks an ICE call (an ICE reply without an action drops the call) and lets ACE/PIE continue."""

    event: str
    instructions: list[JSON] = field(default_factory=list)
    action: JSON | None = None
    built: bool = False

    def __post_init__(self) -> None:
        if self.event not in ALLOWED:
            raise ValueError(f"Sinch expects no SVAML in reply to {self.event!r}")

    @property
    def open(self) -> bool:
        return self.action is None and not self.built

    def _may(self, name: str, kind: int) -> bool:
        """Whether ``name`` may still go into this reply as an action (kind 0) or instruction (kind 1)."""
        return self.open and name in ALLOWED[self.event][kind]

    def instruct(self, *steps: JSON) -> bool:
        """Add instructions; False (nothing added) when the reply is closed or one is not allowed."""
        if not all(self._may(step["name"], 1) for step in steps):
            return False
        self.instructions.extend(steps)
        return True

    def act(self, action: JSON) -> bool:
        """Close the reply with ``action``; False when it is closed or the action is not allowed."""
        if not self._may(action["name"], 0):
            return False
        self.action = action
        return True

    def has(self, name: str) -> bool:
        return any(step["name"] == name for step in self.instructions)

    def seconds(self) -> float:
        """How long the instructions gathered so far take to play: what runs before the action."""
        return sum(instruction_seconds(step) for step in self.instructions)

    def build(self) -> JSON:
        self.built = True
        return svaml(list(self.instructions), self.action or _DEFAULT_ACTIONS[self.event])
