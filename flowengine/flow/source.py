"""YAML source with positions: the document as plain data plus a side table of line:col per JSON path.

The text is measured against the parsing budgets (``budget``) before the library reads it, so its own
limits, which change between releases, never speak first. PyYAML (libyaml when available) then parses
it, and ``yaml_builder.Builder`` makes the values and their positions from the parser's events: YAML 1.2
scalars, string keys, duplicate keys refused, no recursion (see there).
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import yaml

from flowengine.flow.budget import RULE as LIMITS
from flowengine.flow.budget import over_budget
from flowengine.flow.diagnostics import Diagnostic
from flowengine.flow.positions import Path, SourceMap
from flowengine.flow.syntax import reader_hint, syntax_hint
from flowengine.flow.yaml_builder import Builder, Stop

__all__ = ["Parsed", "Path", "SourceMap", "parse_source"]

_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Parsed:
    """``doc`` is None when the text is not usable YAML (the diagnostics say why)."""

    doc: Any
    source_map: SourceMap
    diagnostics: tuple[Diagnostic, ...]


def parse_source(text: str, path: str = "<flow>") -> Parsed:
    """Parse one YAML document; syntax problems and traps become diagnostics, never exceptions."""
    over = over_budget(text)
    if over is not None:
        line, col, message = over
        return Parsed(None, SourceMap(path, text), (Diagnostic(path, line, col, "error", message, LIMITS),))
    builder = Builder(path, text)
    loader = None
    try:
        loader = _LOADER(text)  # in the try: the pure-Python reader checks the characters here
        # ``yaml.parse``'s loop, without a generator frame resumed for each of the events: the parser's
        # own method called until it has no more (it returns None then)
        builder.consume(iter(loader.get_event, None))
    except (yaml.MarkedYAMLError, yaml.reader.ReaderError) as exc:
        hint = syntax_hint(exc, text) if isinstance(exc, yaml.MarkedYAMLError) else reader_hint(exc, text)
        builder.diagnostics.append(Diagnostic(path, hint.line, hint.col, "error", hint.message, "syntax"))
    except yaml.YAMLError as exc:
        builder.diagnostics.append(
            Diagnostic(path, 1, 1, "error", "invalid YAML: " + _lower(str(exc)), "syntax")
        )
    except Stop:
        pass
    finally:
        if loader is not None:
            loader.dispose()
    entries = builder.entries
    # keyed by each entry's path, later entries winning, as a comprehension would: made in C (issue 15)
    source_map = SourceMap(path, text, dict(zip(map(itemgetter(0), entries), entries, strict=True)))
    usable = builder.done and not any(d.rule in ("syntax", LIMITS) for d in builder.diagnostics)
    return Parsed(builder.result if usable else None, source_map, tuple(builder.diagnostics))


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:] if text else text
