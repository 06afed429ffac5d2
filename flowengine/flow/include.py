"""``include:``: states, flow-level handlers and variables shared between flows, kept in files of their own.

    flow: support-line
    include: [common/goodbye.yaml]      # relative to this file
    initial: menu
    states: {...}                       # may target "goodbye", defined in common/goodbye.yaml

An included file (a *states file*) is a mapping of ``states``, ``on`` (flow-level handlers) and ``vars``,
nothing else: no ``flow``, no ``initial``, no ``include`` of its own (includes do not nest, so every file a
flow uses is listed in the flow). Its entries are merged into the flow's; a name defined twice (in the flow
and a file, or in two files) is an error, never a silent override. Every diagnostic about a merged node
points into the file that holds it, at its own line:col (``SourceMap.origins``).

A states file checked on its own (``validate common/``) is checked for what it can be without the flows
that include it: YAML, the schema, and its expressions; the rest is checked through each flow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path as FsPath
from typing import Any

from flowengine.flow.diagnostics import Diagnostic, quote, quoted_list
from flowengine.flow.source import Parsed, SourceMap, parse_source

RULE = "include"
SECTIONS = ("states", "on", "vars")
_WHAT = {"states": "state", "on": "flow-level handler for", "vars": "variable"}


@dataclass
class Included:
    """The flow's document with every included file merged in, and what including found."""

    doc: Mapping[str, Any]
    source_map: SourceMap
    diagnostics: list[Diagnostic] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # shown path -> text of each file read


def is_states_file(doc: Any) -> bool:
    """A document meant to be included: no ``flow`` and no ``initial``, but states or handlers."""
    if not isinstance(doc, Mapping):
        return False
    return not {"flow", "initial"} & doc.keys() and bool({"states", "on"} & doc.keys())


def include(doc: Mapping[str, Any], source_map: SourceMap, base: FsPath | None) -> Included:
    """Merge the files ``doc`` lists under ``include`` (paths relative to ``base``, the flow's folder)."""
    result = Included(doc, source_map)
    entries = doc.get("include")
    if not isinstance(entries, list) or not entries:
        return result  # absent; or not a list, which the schema check reports
    merged: dict[str, dict[str, Any]] = {s: dict(v) if isinstance(v := doc.get(s), Mapping) else {}
                                         for s in SECTIONS}
    origins: dict[tuple[str | int, ...], SourceMap] = {}
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, str) or not entry.strip():
            continue  # the schema check reports it
        parsed = _read(entry, index, source_map, base, seen, result)
        if parsed is not None:
            _merge(parsed, merged, origins, source_map, result)
    # A section the flow writes as something else than a mapping is left for the schema check to report.
    mergeable = [s for s in SECTIONS if isinstance(doc.get(s), Mapping) or (s not in doc and merged[s])]
    merged_doc = {**doc, **{s: merged[s] for s in mergeable}}
    result.doc, result.source_map = merged_doc, replace(source_map, origins=origins)
    return result


def _read(entry: str, index: int, main: SourceMap, base: FsPath | None, seen: set[str],
          result: Included) -> Parsed | None:
    where = main.value_pos(("include", index))
    shown = os.path.normpath(os.path.join(os.path.dirname(main.path) if main.path != "<flow>" else "", entry))

    def problem(message: str) -> None:
        result.diagnostics.append(Diagnostic(main.path, where.line, where.col, "error", message, RULE))

    if shown in seen:
        problem(f"{quote(entry)} is included twice")
        return None
    seen.add(shown)
    if not entry.endswith((".yaml", ".yml")):
        problem(f"an included file is a YAML file (.yaml or .yml): {quote(entry)}")
        return None
    path = (base or FsPath()) / entry
    if path.exists() and not path.is_file():
        problem(f"{quote(entry)} is not a file")
        return None
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not valid UTF-8"
        problem(f"cannot read the included file {quote(entry)}: {reason.lower()}")
        return None
    result.texts[shown] = text
    parsed = parse_source(text, shown)
    result.diagnostics.extend(parsed.diagnostics)
    if parsed.doc is None:
        return None
    if not isinstance(parsed.doc, Mapping):
        message = 'an included file is a mapping of "states", "on" and "vars"'
        result.diagnostics.append(Diagnostic(shown, 1, 1, "error", message, RULE))
        return None
    for key in parsed.doc:
        if key not in SECTIONS and key != "description":
            pos = parsed.source_map.key_pos((key,))
            why = "includes do not nest: list every file in the flow's own include" if key == "include" else \
                f"{quote(key)} belongs in the flow that includes this file"
            result.diagnostics.append(Diagnostic(
                shown, pos.line, pos.col, "error",
                f"an included file holds only {quoted_list(SECTIONS, 'and')}: {why}", RULE))
    return parsed


def _merge(parsed: Parsed, merged: dict[str, dict[str, Any]], origins: dict[tuple[str | int, ...], SourceMap],
           main: SourceMap, result: Included) -> None:
    own = replace(parsed.source_map, included=True)
    for section in SECTIONS:
        entries = parsed.doc.get(section)
        if entries is None:
            continue
        if not isinstance(entries, Mapping):
            pos = own.value_pos((section,))
            result.diagnostics.append(Diagnostic(own.path, pos.line, pos.col, "error",
                                                 f"{quote(section)} must be a mapping", RULE))
            continue
        for name, value in entries.items():
            path = (section, name)
            if name in merged[section]:
                other = (origins.get(path) or main).key_pos(path)
                pos = own.key_pos(path)
                result.diagnostics.append(Diagnostic(
                    own.path, pos.line, pos.col, "error",
                    f"{_WHAT[section]} {quote(name)} is defined twice: here and at "
                    f"{other.file or main.path}:{other.line}:{other.col}; rename one", RULE))
                continue
            merged[section][name] = value
            origins[path] = own
