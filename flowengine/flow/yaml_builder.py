"""Building one YAML document from PyYAML's event stream: plain data plus the position of every node.

We build values ourselves instead of using a constructor, because flows need what PyYAML's loaders do
not give:

- YAML 1.2 core-schema scalars: ``on``/``yes``/``no``/``off``/``y``/``n`` stay strings (only
  ``true``/``false`` are booleans), so ``on:`` is the key "on", not True;
- mapping keys are always strings, quoted scalars are always strings;
- duplicate keys are an error at the second key (PyYAML silently keeps the last);
- no recursion: an explicit stack, a nesting limit and an alias-expansion budget, so hostile input
  yields a diagnostic instead of a RecursionError, a crash in the C parser or a memory blow-up.

``source.parse_source`` runs the parser and feeds its events to a ``Builder``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from yaml import events

from flowengine.flow.budget import MAX_DEPTH, TOO_DEEP
from flowengine.flow.budget import RULE as LIMITS
from flowengine.flow.diagnostics import Diagnostic, quote
from flowengine.flow.positions import Path
from flowengine.flow.scalars import (
    NumberTooLong,
    collection_tag_problem,
    key_text,
    resolve_plain,
    resolve_tagged,
)
from flowengine.flow.syntax import TextIndex, no_colon_after, template_at, valueless_key

MAX_NODES = 250_000  # values and position entries, counting every alias expansion
_DISCARDED = "\x00discarded"  # path part for values that are reported and dropped; YAML keys never hold NUL

_SCALAR, _ALIAS = events.ScalarEvent, events.AliasEvent
_MAPPING_START, _MAPPING_END = events.MappingStartEvent, events.MappingEndEvent
_SEQUENCE_START, _SEQUENCE_END = events.SequenceStartEvent, events.SequenceEndEvent
_plain = resolve_plain


class Stop(Exception):
    """Abandon the document (a limit was hit); the diagnostic is already recorded."""


class _Frame:
    """An open mapping or sequence (slotted, and the merge dict made only for a merge: a 1,000-state flow
    opens 16,000 of these)."""

    __slots__ = ("anchor", "entries", "flow", "items", "key", "key_end", "mapping", "merged", "path",
                 "plain_value", "skip_value", "spot", "start")

    def __init__(self, path: Path, mapping: bool, start: int, anchor: str | None, spot: tuple[int, int],
                 flow: bool) -> None:
        self.path = path
        self.mapping = mapping
        self.start = start  # index of this node's first position entry, for anchors and merges
        self.anchor = anchor
        self.spot = spot  # where it starts
        self.items: list[Any] = []
        self.entries: dict[str, Any] = {}
        self.merged: dict[str, Any] = _NO_MERGE  # keys copied by ``<<``; a new dict only when there are some
        self.key: tuple[str, tuple[int, int], bool] | None = None  # pending key, its position, plain?
        self.skip_value = False  # the pending key was unusable: drop its value
        self.flow = flow  # written {...} or [...]
        self.key_end: Any = None  # the yaml Mark where the pending key's text ends
        # the last entry, if its value is plain text: its key and the Mark where the value starts (marks
        # become text offsets only for a diagnostic)
        self.plain_value: tuple[str, Any] | None = None


_NO_MERGE: dict[str, Any] = {}


@dataclass
class _Anchor:
    value: Any
    path: Path
    start: int
    end: int


class Builder:
    """Turns the event stream of one document into plain data and a position list.

    Plain scalars, the bulk of any flow, take ``_on_scalar``'s short path (no tag, no anchor): one call
    an event instead of eight (issue 15: building was a fifth of validating a 1,000-state flow).
    """

    def __init__(self, source: str, text: str = "") -> None:
        self.source = source
        self.text = text
        self.text_index = TextIndex(text)
        self.diagnostics: list[Diagnostic] = []
        self.entries: list[tuple[Path, tuple[int, int], tuple[int, int]]] = []
        self.anchors: dict[str, _Anchor] = {}
        self.stack: list[_Frame] = []
        self.done = False
        self.result: Any = None

    def error(self, mark: Any, message: str, rule: str = "syntax") -> None:
        """Report at a yaml Mark (0-based)."""
        self.error_at((mark.line + 1, mark.column + 1), message, rule)

    def error_at(self, spot: tuple[int, int], message: str, rule: str = "syntax") -> None:
        self.diagnostics.append(Diagnostic(self.source, spot[0], spot[1], "error", message, rule))

    def consume(self, stream: Iterator[events.Event]) -> None:
        """Build the first document from its events; a second document is an error."""
        on_scalar, stack = self._on_scalar, self.stack
        event: events.Event | None = None
        try:
            for event in stream:
                kind = type(event)
                if self.done:
                    if kind is events.DocumentStartEvent:
                        self.error(event.start_mark,
                                   "a flow file holds one YAML document; found a second one")
                        break
                elif kind is _SCALAR:
                    on_scalar(event)  # type: ignore[arg-type]
                elif kind is _MAPPING_END or kind is _SEQUENCE_END:
                    frame = stack.pop()
                    value = frame.items if not frame.mapping else \
                        frame.entries if frame.merged is _NO_MERGE else {**frame.merged, **frame.entries}
                    self._emit(value, event, frame.anchor, frame.start, opened=frame)
                elif kind is _MAPPING_START or kind is _SEQUENCE_START:
                    self._open(event)  # type: ignore[arg-type]
                elif kind is _ALIAS:
                    self._alias(event)  # type: ignore[arg-type]
        except NumberTooLong as exc:  # at the scalar that held it: the document is not usable
            if event is not None:
                self.error(event.start_mark, str(exc), LIMITS)
            raise Stop from None

    def _on_scalar(self, event: events.ScalarEvent) -> None:
        stack, tag = self.stack, event.tag
        if not stack or event.anchor is not None or (tag is not None and tag != "!"):
            self._any_scalar(event)
            return
        parent, mark = stack[-1], event.start_mark
        spot = (mark.line + 1, mark.column + 1)  # type: ignore[union-attr]
        plain = event.implicit[0]
        if not parent.mapping:
            entries = self.entries
            if len(entries) >= MAX_NODES:
                self._too_many_nodes(spot)
            entries.append(((*parent.path, len(parent.items)), spot, spot))
            parent.items.append(_plain(event.value) if plain and tag is None else event.value)
            return
        key = parent.key
        if key is None:  # a key: its text is the key (a tag-less scalar key never needs resolving)
            text = event.value
            duplicate = text in parent.entries
            if duplicate:  # keep the first; the second is reported and ignored
                self.error_at(spot, f"duplicate key {quote(text)}: a key may appear only once in a mapping",
                              "duplicate-key")
            parent.key, parent.skip_value, parent.key_end = (text, spot, plain), duplicate, event.end_mark
            return
        entries = self.entries
        start = len(entries)
        value = _plain(event.value) if plain and tag is None else event.value
        if parent.skip_value or value is None or key[0] == "<<":
            if not parent.skip_value:
                self._add((*parent.path, key[0]), key[1], spot)
            self._take_value(parent, value, start, event)
            return
        # ``_add`` and ``_take_value`` in one, for the commonest event: a value that is no merge, no
        # dropped duplicate and not null (which in ``{...}`` may be a key without ":")
        if start >= MAX_NODES:
            self._too_many_nodes(spot)
        entries.append(((*parent.path, key[0]), key[1], spot))
        parent.key = None
        parent.plain_value = (key[0], mark) if plain and isinstance(value, str) else None
        parent.entries[key[0]] = value

    def _any_scalar(self, event: events.ScalarEvent) -> None:
        """A scalar with a tag or an anchor, or the whole document."""
        start = len(self.entries)
        if not self._is_key_slot():
            self._record_child(event.start_mark)
        self._emit(self._scalar(event), event, event.anchor, start)

    def _open(self, event: events.CollectionStartEvent) -> None:
        stack = self.stack
        if len(stack) >= MAX_DEPTH:
            self.error(event.start_mark, TOO_DEEP, LIMITS)
            raise Stop
        if event.tag is not None:
            self._check_tag(event)
        mark: Any = event.start_mark
        spot, start = (mark.line + 1, mark.column + 1), len(self.entries)
        # its path, and where it starts under that path (``_child_path`` and ``_record_child`` in one)
        parent = stack[-1] if stack else None
        if parent is None:
            path: Path = ()
            self._add(path, spot, spot)
        elif not parent.mapping:
            path = (*parent.path, len(parent.items))
            self._add(path, spot, spot)
        elif parent.key is None or parent.skip_value:
            path = (*parent.path, _DISCARDED)  # a collection used as a key, or a duplicate key's value
        else:
            path = (*parent.path, parent.key[0])
            self._add(path, parent.key[1], spot)
        stack.append(_Frame(path, type(event) is _MAPPING_START, start, event.anchor, spot,
                            bool(event.flow_style)))

    def _child_path(self) -> Path:
        if not self.stack:
            return ()
        parent = self.stack[-1]
        if not parent.mapping:
            return (*parent.path, len(parent.items))
        if parent.key is None or parent.skip_value:
            return (*parent.path, _DISCARDED)  # a collection used as a key, or a duplicate key's value
        return (*parent.path, parent.key[0])

    def _record_child(self, mark: Any) -> None:
        """Note where a value starts, under the path it will have."""
        spot = (mark.line + 1, mark.column + 1)
        if not self.stack:
            self._add((), spot, spot)
            return
        parent = self.stack[-1]
        if not parent.mapping:
            self._add((*parent.path, len(parent.items)), spot, spot)
        elif parent.key is not None and not parent.skip_value:
            self._add((*parent.path, parent.key[0]), parent.key[1], spot)

    def _add(self, path: Path, key: tuple[int, int], value: tuple[int, int]) -> None:
        if len(self.entries) >= MAX_NODES:
            self._too_many_nodes(value)
        self.entries.append((path, key, value))

    def _too_many_nodes(self, spot: tuple[int, int]) -> None:
        self.error_at(spot, f"the document expands to more than {MAX_NODES} nodes (alias bomb?)", LIMITS)
        raise Stop

    def _emit(
        self, value: Any, event: events.Event, anchor: str | None, start: int, opened: _Frame | None = None
    ) -> None:
        if anchor is not None:
            path = opened.path if opened else self._child_path()
            self.anchors[anchor] = _Anchor(value, path, start, len(self.entries))
        if not self.stack:
            self.result, self.done = value, True
            return
        parent = self.stack[-1]
        if not parent.mapping:
            parent.items.append(value)
        elif parent.key is None:
            self._take_key(parent, value, event, opened)
        else:
            self._take_value(parent, value, start, event)

    def _is_key_slot(self) -> bool:
        return bool(self.stack) and self.stack[-1].mapping and self.stack[-1].key is None

    def _take_key(self, parent: _Frame, value: Any, event: events.Event, opened: _Frame | None) -> None:
        mark = event.start_mark
        spot = opened.spot if opened else _spot(mark)
        plain = isinstance(event, events.ScalarEvent) and event.implicit[0]
        if opened is not None or isinstance(value, dict | list):
            outer = (spot[0], spot[1] - 1)
            template = template_at(self.text, outer)
            if template:
                self.error_at(outer, f"a {{{{ template }}}} must be quoted: write {quote(template)}")
            else:
                self.error_at(spot, "a mapping key must be a plain string, not a list or mapping")
            parent.key, parent.skip_value = ("?", spot, False), True
            return
        text = event.value if isinstance(event, events.ScalarEvent) else key_text(value)
        duplicate = text in parent.entries
        if duplicate:  # keep the first; the second is reported and ignored
            self.error(
                mark, f"duplicate key {quote(text)}: a key may appear only once in a mapping", "duplicate-key"
            )
        parent.key, parent.skip_value, parent.key_end = (text, spot, plain), duplicate, event.end_mark

    def _take_value(self, parent: _Frame, value: Any, start: int, event: events.Event) -> None:
        assert parent.key is not None
        name, spot, plain = parent.key
        parent.key = None
        if parent.skip_value:
            return
        if parent.flow and plain and value is None and no_colon_after(self.text, self._index(parent.key_end)):
            self._valueless(parent, name, spot)
            return
        plain_text = type(event) is _SCALAR and event.implicit[0] and isinstance(value, str)
        parent.plain_value = (name, event.start_mark) if plain_text else None
        if name == "<<" and plain and self._merge(parent, value, start):
            return
        parent.entries[name] = value

    def _index(self, mark: Any) -> int:
        return self.text_index.at(int(mark.line), int(mark.column))

    def _valueless(self, parent: _Frame, name: str, spot: tuple[int, int]) -> None:
        """A key without ":" in ``{...}``: most often text cut at a comma. Reported, and dropped (not an
        "unknown parameter"); the inner braces of an unquoted ``{{ template }}`` are reported as such."""
        if template_at(self.text, (parent.spot[0], parent.spot[1] - 1)) is None:
            before = parent.plain_value
            message, rule = valueless_key(self.text, name, before and (before[0], self._index(before[1])))
            self.error_at(spot, message, rule)

    def _merge(self, parent: _Frame, value: Any, start: int) -> bool:
        """``<<: *base`` (or a list of them): copy keys not written explicitly; earlier sources win."""
        sources = value if isinstance(value, list) else [value]
        if not sources or not all(isinstance(s, dict) for s in sources):
            return False
        prefix = (*parent.path, "<<")
        copied = [
            e for e in self.entries[start:] if e[0][: len(prefix)] == prefix and len(e[0]) > len(prefix)
        ]
        if parent.merged is _NO_MERGE:
            parent.merged = {}
        for index in reversed(range(len(sources))):
            for key, item in sources[index].items():
                if key not in parent.entries:
                    parent.merged[key] = item
            for path, key_spot, value_spot in copied:
                rest = path[len(prefix) :] if isinstance(value, dict) else path[len(prefix) + 1 :]
                in_source = isinstance(value, dict) or path[len(prefix)] == index
                if in_source and rest and rest[0] not in parent.entries:
                    self._add((*parent.path, *rest), key_spot, value_spot)
        return True

    def _alias(self, event: events.AliasEvent) -> None:
        anchor = self.anchors.get(event.anchor or "")
        if anchor is None:
            self.error(event.start_mark, f"unknown anchor {quote(event.anchor)}")
            raise Stop
        if self._is_key_slot():
            self._emit(anchor.value, event, None, len(self.entries))
            return
        self._record_child(event.start_mark)
        start = len(self.entries)
        target = self._child_path()
        if start + anchor.end - anchor.start > MAX_NODES:
            self._too_many_nodes(_spot(event.start_mark))  # at the alias that expands too far
        for path, key_spot, value_spot in self.entries[anchor.start + 1 : anchor.end]:
            self._add((*target, *path[len(anchor.path) :]), key_spot, value_spot)
        self._emit(anchor.value, event, None, start - 1)

    def _scalar(self, event: events.ScalarEvent) -> Any:
        tag = event.tag
        if tag in (None, "!"):
            return resolve_plain(event.value) if event.implicit[0] and tag is None else event.value
        value, problem = resolve_tagged(tag, event.value)
        if problem is not None:
            self.error(event.start_mark, problem)
        return value

    def _check_tag(self, event: events.CollectionStartEvent) -> None:
        problem = collection_tag_problem(event.tag)
        if problem is not None:
            self.error(event.start_mark, problem)


def _spot(mark: Any) -> tuple[int, int]:
    """A yaml Mark (0-based) as a 1-based (line, col)."""
    return (mark.line + 1, mark.column + 1)
