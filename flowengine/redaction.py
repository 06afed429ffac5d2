"""Keeping secrets out of what the service says: one helper for every message, log line and API answer.

What counts as a secret wherever it appears in text: a URL's password (``redis://app:***@host``) or
bare user token (``https://***@host``), every query value and the fragment of a URL (``?token=***``),
the credentials of an ``Authorization`` header (``Authorization: App ***``, ``Bearer ***``) and the value
of a ``password=``/``token=``/``api_key=``-style pair. Redaction is textual and never fails: a malformed
URL is redacted as far as it can be read, so an error about it can still be shown.

Pure standard library (the runtime uses it on the errors it records).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any

MASK = "***"

# scheme://authority[path][?query][#fragment], up to whitespace, a quote or a bracket that closes it.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_AUTHORITY = re.compile(r"^(?P<scheme>[^:/]+://)(?P<authority>[^/?#]*)(?P<rest>.*)$", re.DOTALL)
# An Authorization header's value: its scheme stays (it says how, not what), its credentials go.
_AUTH_HEADER = re.compile(
    r"(?i)\b(?P<name>(?:proxy-)?authorization)(?P<sep>[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<scheme>[A-Za-z][\w-]*\s+)?(?P<value>[^\s\"',;}]+)"
)
# Credentials after a scheme word, even without the header name (``Bearer eyJ...``).
_AUTH_SCHEME = re.compile(
    r"\b(?P<scheme>Bearer|Basic|App|Application|Token)\s+(?P<value>[A-Za-z0-9._~+/=:\-]{16,})"
)
_SECRET_PAIR = re.compile(
    r"(?i)\b(?P<name>password|passwd|secret|client_secret|token|access_token|auth_token|refresh_token"
    r"|api[_-]?key|apikey|signature)(?P<sep>[\"']?\s*[=:]\s*[\"']?)(?P<value>[^\s&\"',;}]+)"
)



def _has_scheme_word(text: str) -> bool:
    # "App" also finds "Application". Written out: ``any()`` over a tuple of words built a generator for
    # every log line (a fifth of redacting one that holds no secret).
    return "Bearer" in text or "Basic" in text or "App" in text or "Token" in text


def _has_pair_word(lower: str) -> bool:
    return "pass" in lower or "secret" in lower or "token" in lower or "key" in lower or "signature" in lower


def redact_url(url: str) -> str:
    """``url`` with its password (or bare user token), query values and fragment masked; the scheme,
    host, port, path and query names stay, so the message still says where."""
    parts = _AUTHORITY.match(url)
    if parts is None:
        return _redact_query(url)
    authority = parts["authority"]
    userinfo, at, hostport = authority.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        authority = f"{user}:{MASK}@{hostport}" if colon else f"{MASK}@{hostport}"
    return parts["scheme"] + authority + _redact_query(parts["rest"])


def _redact_query(rest: str) -> str:
    path, hash_, _fragment = rest.partition("#")
    path, question, query = path.partition("?")
    if question:
        names = (pair.partition("=")[0] for pair in query.split("&"))
        path += "?" + "&".join(f"{name}={MASK}" if name else "" for name in names)
    return path + (f"#{MASK}" if hash_ else "")


def redact(text: str) -> str:
    """``text`` with every URL credential, query, Authorization value and secret-looking pair masked."""
    if not text:
        return text
    # Each pattern runs only where a plain substring says it may match: every log line comes here, and
    # most hold none of them (a fraction of a microsecond instead of ~15).
    if "://" in text:
        text = _URL.sub(_url_in_text, text)
    lower = text.lower()
    if "authorization" in lower:
        text = _AUTH_HEADER.sub(lambda m: f"{m['name']}{m['sep']}{m['scheme'] or ''}{MASK}", text)
    if _has_scheme_word(text):
        text = _AUTH_SCHEME.sub(lambda m: f"{m['scheme']} {MASK}", text)
    if _has_pair_word(lower):
        text = _SECRET_PAIR.sub(_masked_pair, text)
    return text


def _masked_pair(match: re.Match[str]) -> str:
    return match[0] if match["value"] == MASK else f"{match['name']}{match['sep']}{MASK}"


def _url_in_text(match: re.Match[str]) -> str:
    # Punctuation closing the sentence around a URL is not part of it.
    url = match.group(0)
    bare = url.rstrip(").,;:!]}")
    return redact_url(bare) + url[len(bare):]


def redact_json(value: Any) -> Any:
    """A copy of a JSON value with ``redact`` applied to every string in it (keys included)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(str(k)): redact_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_json(v) for v in value]
    return value


class RedactingFormatter(logging.Formatter):
    """A log formatter whose every line (message, arguments and traceback alike) goes through ``redact``."""

    _stamp: tuple[int, str] = (-1, "")  # a whole second and its text, one object: threads may share it

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """``logging.Formatter``'s time, with the date and time of day made once per second: a busy
        service writes many lines a second, and ``localtime`` and ``strftime`` were a tenth of a line's
        formatting. The same text: the fields of a time within one whole second are that second's."""
        if datefmt is not None or not self.default_msec_format:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        at, text = self._stamp
        if second != at:
            text = time.strftime(self.default_time_format, self.converter(second))
            self._stamp = (second, text)
        return self.default_msec_format % (text, record.msecs)
