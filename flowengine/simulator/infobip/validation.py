"""Request-body checks with Infobip's 400 answer: every problem goes into ``validationErrors`` keyed by
the JSON path of the field, with bean-validation style messages ("must not be null")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flowengine.simulator.base import ApiError
from flowengine.simulator.infobip.model import ERROR_CODES
from flowengine.simulator.parties import DETECTION_SECONDS

# CallsLanguage, as in the official SDK.
LANGUAGES = frozenset(
    {
        "ar",
        "bn",
        "bg",
        "ca",
        "zh-cn",
        "zh-tw",
        "hr",
        "cs",
        "da",
        "nl",
        "en",
        "en-au",
        "en-gb",
        "en-ca",
        "en-in",
        "en-ie",
        "en-gb-wls",
        "epo",
        "fil-ph",
        "fi",
        "fr",
        "fr-ca",
        "fr-ch",
        "de",
        "de-at",
        "de-ch",
        "el",
        "gu",
        "he",
        "hi",
        "hu",
        "is",
        "id",
        "it",
        "ja",
        "kn",
        "kk-kz",
        "ko",
        "ms",
        "ml",
        "no",
        "pl",
        "pt-pt",
        "pt-br",
        "ro",
        "ru",
        "sk",
        "sl",
        "es",
        "es-ar",
        "es-gl",
        "es-mx",
        "sv",
        "ta",
        "te",
        "th",
        "tr",
        "uk",
        "uz-uz",
        "vi",
        "wls",
        "ar-ma",
        "ur-pk",
        "mr-in",
        "sw-ke",
        "sw-tz",
    }
)
ENDPOINT_FIELDS = {
    "PHONE": "phoneNumber",
    "SIP": "username",
    "WEBRTC": "identity",
    "VIBER": "phoneNumber",
    "WHATSAPP": "phoneNumber",
    "WEBSOCKET": "websocketEndpointConfigId",
}
CONTENT_FIELDS = {"FILE": "fileId", "URL": "fileUrl", "RECORDING": "fileId", "TEXT": "text"}
MAX_CONNECT_TIMEOUT = 60
NULL = "must not be null"
_DTMF = re.compile(r"^[0-9*#A-Dw]+$")


class Checker:
    """Collects field errors; ``done()`` raises the 400 if there are any."""

    def __init__(self, body: dict[str, Any], prefix: str = "") -> None:
        self.body = body
        self.prefix = prefix
        self.errors: dict[str, list[str]] = {}

    def nested(self, name: str) -> Checker:
        value = self.body.get(name)
        sub = Checker(value if isinstance(value, dict) else {}, f"{self.prefix}{name}.")
        sub.errors = self.errors
        return sub

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(self.prefix + name, []).append(message)

    def string(self, name: str, *, required: bool = False, max_len: int | None = None) -> str | None:
        value = self.body.get(name)
        if value is None:
            if required:
                self.fail(name, NULL)
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            self.fail(name, "must not be blank" if isinstance(value, str) else "must be a string")
            return None
        if max_len is not None and not 1 <= len(value) <= max_len:
            self.fail(name, f"size must be between 1 and {max_len}")
        return value

    def integer(
        self, name: str, *, required: bool = False, low: int | None = None, high: int | None = None
    ) -> int | None:
        value = self.body.get(name)
        if value is None:
            if required:
                self.fail(name, NULL)
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(name, "must be an integer")
            return None
        if low is not None and value < low:
            self.fail(name, f"must be greater than or equal to {low}")
        if high is not None and value > high:
            self.fail(name, f"must be less than or equal to {high}")
        return value

    def number(self, name: str, low: float, high: float) -> float | None:
        value = self.body.get(name)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
            self.fail(name, f"must be between {low} and {high}")
            return None
        return float(value)

    def boolean(self, name: str) -> bool | None:
        value = self.body.get(name)
        if value is not None and not isinstance(value, bool):
            self.fail(name, "must be a boolean")
            return None
        return value

    def choice(self, name: str, allowed: frozenset[str] | set[str], *, required: bool = False) -> str | None:
        value = self.string(name, required=required)
        if value is not None and value not in allowed:
            self.fail(name, "invalid value")
            return None
        return value

    def obj(self, name: str, *, required: bool = False) -> dict[str, Any] | None:
        value = self.body.get(name)
        if value is None:
            if required:
                self.fail(name, NULL)
            return None
        if not isinstance(value, dict):
            self.fail(name, "must be an object")
            return None
        return value

    def string_map(self, name: str) -> dict[str, str] | None:
        value = self.obj(name)
        if value is not None and not all(isinstance(v, str) for v in value.values()):
            self.fail(name, "values must be strings")
            return None
        return value

    def done(self) -> None:
        if self.errors:
            raise ApiError(400, "Bad request", fields=self.errors)


def check_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "Bad request", fields={"body": ["must be a JSON object"]})
    return body


@dataclass(frozen=True)
class Dial:
    """A validated CallRequest / CallsActionCallRequest."""

    endpoint: dict[str, Any]
    remote: str
    from_: str
    connect_timeout: float
    max_duration: int
    custom_data: dict[str, str] | None
    calls_configuration_id: str | None
    platform: dict[str, Any] | None
    external_id: str | None
    machine_detection: float | None = None  # seconds detection listens for, when enabled


def check_machine_detection(check: Checker) -> float | None:
    """``machineDetection``: ``{enabled (required), detectionTime? (1-5 s, default 3.7),
    messageDetectionTimeout? (0-60 s)}``; the seconds detection listens for, None when not enabled."""
    if check.obj("machineDetection") is None:
        return None
    detection = check.nested("machineDetection")
    enabled = detection.boolean("enabled")
    if enabled is None and "enabled" not in detection.body:
        detection.fail("enabled", NULL)
    seconds = detection.number("detectionTime", 1.0, 5.0)
    detection.integer("messageDetectionTimeout", low=0, high=60)
    return (seconds or DETECTION_SECONDS) if enabled else None


def check_endpoint(check: Checker) -> tuple[dict[str, Any], str] | None:
    endpoint = check.obj("endpoint", required=True)
    if endpoint is None:
        return None
    sub = check.nested("endpoint")
    kind = sub.choice("type", set(ENDPOINT_FIELDS), required=True)
    if kind is None:
        return None
    remote = sub.string(ENDPOINT_FIELDS[kind], required=True)
    return (endpoint, remote) if remote else None


def check_dial(check: Checker, *, needs_configuration: bool) -> Dial | None:
    """CallRequest (``needs_configuration``) or the CallsActionCallRequest nested in conference/connect."""
    target = check_endpoint(check)
    from_ = check.string("from")
    timeout = check.integer("connectTimeout", low=1, high=MAX_CONNECT_TIMEOUT)
    max_duration = check.integer("maxDuration", low=1, high=28800)
    custom = check.string_map("customData")
    configuration = check.string("callsConfigurationId", required=needs_configuration)
    platform = check.obj("platform")
    external_id = check.string("externalId")
    machine_detection = check_machine_detection(check)
    if target is None:
        return None
    return Dial(
        endpoint=target[0],
        remote=target[1],
        from_=from_ or "",
        connect_timeout=float(timeout or MAX_CONNECT_TIMEOUT),
        max_duration=max_duration or 28800,
        custom_data=custom,
        calls_configuration_id=configuration,
        platform=platform,
        external_id=external_id,
        machine_detection=machine_detection,
    )


@dataclass(frozen=True)
class Media:
    """A validated say or play: what kind, the text to speak (None for audio), loops, the cap."""

    kind: str  # "SAY" or "PLAY"
    text: str | None
    speech_rate: float
    loops: int
    timeout_ms: int | None
    custom_data: dict[str, str] | None
    source: str | None = None  # the fileId / fileUrl played


def check_say(body: Any) -> Media:
    check = Checker(check_object(body))
    text = check.string("text", required=True)
    check.choice("language", LANGUAGES, required=True)
    rate = check.number("speechRate", 0.5, 2.0)
    loops = check.integer("loopCount", low=1)
    preferences = check.obj("preferences")
    if preferences is not None:
        check.nested("preferences").choice("voiceGender", {"FEMALE", "MALE"})
    custom = check.string_map("customData")
    check.done()
    return Media("SAY", text, rate or 1.0, loops or 1, None, custom)


def check_play(body: Any) -> Media:
    check = Checker(check_object(body))
    loops = check.integer("loopCount", low=1)
    timeout = check.integer("timeout", low=0)
    check.integer("offset", low=0)
    custom = check.string_map("customData")
    text: str | None = None
    source: str | None = None
    rate = 1.0
    if check.obj("content", required=True) is not None:
        content = check.nested("content")
        kind = content.choice("type", set(CONTENT_FIELDS), required=True)
        if kind is not None:
            value = content.string(CONTENT_FIELDS[kind], required=True)
            if kind == "TEXT":
                content.choice("language", LANGUAGES, required=True)
                text, rate = value, content.number("speechRate", 0.5, 2.0) or 1.0
            else:
                source = value
    check.done()
    return Media("PLAY", text, rate, loops or 1, timeout, custom, source)


@dataclass(frozen=True)
class Capture:
    max_length: int
    timeout: float
    terminator: str | None
    digit_timeout: float | None
    custom_data: dict[str, str] | None


def check_capture(body: Any) -> Capture:
    check = Checker(check_object(body))
    max_length = check.integer("maxLength", required=True, low=1, high=255)
    timeout = check.integer("timeout", required=True, low=1)
    terminator = check.string("terminator")
    if terminator is not None and not _DTMF.match(terminator):
        check.fail("terminator", "invalid value")
    digit_timeout = check.integer("digitTimeout", low=1)
    custom = check.string_map("customData")
    check.obj("playContent")
    check.done()
    assert max_length is not None and timeout is not None
    return Capture(
        max_length, timeout / 1000, terminator, digit_timeout / 1000 if digit_timeout else None, custom
    )


def check_send_dtmf(body: Any) -> str:
    check = Checker(check_object(body))
    dtmf = check.string("dtmf", required=True)
    if dtmf is not None and not _DTMF.match(dtmf):
        check.fail("dtmf", "invalid value")
    check.string_map("customData")
    check.done()
    return dtmf or ""


def check_hangup(body: Any) -> str | None:
    check = Checker(check_object(body))
    code = check.choice("errorCode", set(ERROR_CODES))
    check.done()
    return code


def check_media_update(body: Any, *, with_role: bool) -> dict[str, bool]:
    check = Checker(check_object(body))
    flags = {name: check.boolean(name) for name in ("muted", "deaf", "blind")}
    if with_role and check.obj("role") is not None:
        check.nested("role").choice("type", {"DEFAULT", "ADVISOR", "MONITOR", "LISTENER", "AUDITOR"})
    check.done()
    return {k: v for k, v in flags.items() if v is not None}


def check_conference(body: Any, *, needs_configuration: bool) -> tuple[str | None, str | None, int]:
    """(name, callsConfigurationId, maxDuration) of a CallsConferenceRequest."""
    check = Checker(check_object(body))
    name = check.string("name")
    configuration = check.string("callsConfigurationId", required=needs_configuration)
    max_duration = check.integer("maxDuration", low=1, high=28800)
    check.obj("recording")
    check.obj("platform")
    check.done()
    return name, configuration, max_duration or 28800
