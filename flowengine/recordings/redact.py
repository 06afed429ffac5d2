"""What a replay file must not hold: phone numbers (each replaced by a placeholder, the same one wherever
the same number appears in the file, so parties and routing still line up), secrets (``redaction``: URL
credentials and query values, Authorization values, token-like pairs), request headers other than those
that say what the body is, and the fields the config's ``record.redact`` names.

Placeholders are numbers in the spare E.164 country code 999 (no real number starts with it), as long as
the number they replace, with its ``+`` if it had one: a parser that wants digits still gets digits.
Numbers the service itself publishes are kept: the called numbers of ``routes`` and numbers written in
the flow files (a flow that dials an agent's number must dial the same number when replayed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from flowengine.masking import NUMBER, number_parts
from flowengine.redaction import MASK, redact

_DIGIT_RUN = re.compile(r"\d{7}")  # no phone number without seven digits in a row: most strings skip NUMBER
PLACEHOLDER_CODE = "999"  # a spare E.164 country code: no subscriber number begins with it
KEPT_HEADERS = frozenset({"content-type"})  # the rest authenticate or route the request: not kept


def known_numbers(texts: Iterable[str]) -> frozenset[str]:
    """The digits of every phone number in ``texts`` (a flow file's source, a route's called number)."""
    return frozenset(number_parts(match)[1] for text in texts for match in NUMBER.finditer(text))


class Redactor:
    """Redacts one replay file's content; the placeholders it hands out are consistent within it."""

    def __init__(self, *, keep: Iterable[str] = (), fields: Iterable[str] = (), numbers: bool = True) -> None:
        self._keep = frozenset(keep)
        self._replace_numbers = numbers  # False: secrets and fields only (to compare with a recording)
        self._placeholders: dict[str, str] = {}
        self._texts: dict[str, str] = {}  # ids, keys and names repeat across a file's entries: once each
        # A rule matches a key path that ends with it: ``pin`` anywhere, ``customer.email`` under customer.
        self._rules = tuple(tuple(part.lower() for part in field.split(".")) for field in fields)

    @property
    def numbers(self) -> int:
        """How many distinct numbers were replaced."""
        return len(self._placeholders)

    def number(self, digits: str) -> str:
        if digits in self._keep:
            return digits
        placeholder = self._placeholders.get(digits)
        if placeholder is None:
            serial = str(len(self._placeholders) + 1)
            width = max(len(digits) - len(PLACEHOLDER_CODE), len(serial))
            placeholder = self._placeholders[digits] = PLACEHOLDER_CODE + serial.zfill(width)
        return placeholder

    def _replaced(self, match: re.Match[str]) -> str:
        plus, digits = number_parts(match)
        return plus + self.number(digits)

    def text(self, text: str) -> str:
        """``text`` with its numbers replaced and its secrets masked."""
        done = self._texts.get(text)
        if done is None:
            done = text
            if self._replace_numbers and _DIGIT_RUN.search(done):
                done = NUMBER.sub(self._replaced, done)
            done = self._texts[text] = redact(done)
        return done

    def json(self, value: Any, path: tuple[str, ...] = ()) -> Any:
        """A redacted copy of a JSON value (keys are redacted too: a number can be a key)."""
        kind = type(value)
        if kind is str:
            return self.text(value)
        if kind is dict or (kind is not list and isinstance(value, Mapping)):
            if not self._rules:  # the common case: no key path to follow
                return {self.text(str(k)): self.json(v) for k, v in value.items()}
            copy: dict[str, Any] = {}
            for key, item in value.items():
                inner = (*path, str(key).lower())
                copy[self.text(str(key))] = MASK if self._named(inner) else self.json(item, inner)
            return copy
        if kind is list or kind is tuple:
            return [self.json(item, path) for item in value]
        return self.text(value) if isinstance(value, str) else value

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {k.lower(): self.text(v) for k, v in headers.items() if k.lower() in KEPT_HEADERS}

    def _named(self, path: tuple[str, ...]) -> bool:
        return any(path[-len(rule):] == rule for rule in self._rules if len(rule) <= len(path))
