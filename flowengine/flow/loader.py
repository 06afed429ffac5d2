"""``load_flow``: YAML text -> positions -> schema check -> semantic rules -> frozen ``Flow``.

Problems come back as diagnostics (values), never as exceptions; ``load_flow_or_raise`` is the edge
that turns them into ``errors.FlowError`` for callers that just want a Flow.
"""

from __future__ import annotations

import gc
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from flowengine.errors import FlowError
from flowengine.flow.budget import RULE as LIMITS
from flowengine.flow.build import build_flow
from flowengine.flow.diagnostics import Diagnostic, sort_unique
from flowengine.flow.include import include, is_states_file
from flowengine.flow.model import Flow
from flowengine.flow.platform import Platform
from flowengine.flow.rules import run_rules
from flowengine.flow.rules.context import RuleContext
from flowengine.flow.rules.expressions import STATES_FILE_RULES
from flowengine.flow.rules.schema_check import check_schema
from flowengine.flow.source import Path, SourceMap, parse_source
from flowengine.flow.version import check_writable, resolved_source

Source = str | bytes | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class LoadResult:
    """``flow`` is set when there are no errors (warnings allowed); ``text`` is the source as read."""

    flow: Flow | None
    diagnostics: tuple[Diagnostic, ...]
    source: str
    text: str = ""
    included: Mapping[str, str] = field(default_factory=dict)  # shown path -> text of each included file
    document: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)  # with ``flow``:
    # the document, includes merged, that ``resolved`` writes out
    _resolved: list[str] = field(default_factory=list, init=False, repr=False, compare=False)  # its memo

    @property
    def resolved(self) -> str | None:
        """With ``flow``: its resolved source (``flow.version``), includes merged. Written when first
        asked for: only ``serve`` needs it, and writing it was a twentieth of validating a 1,000-state
        flow (issue 15); the load made sure it can be written (``version.check_writable``)."""
        if self.document is None:
            return None
        if not self._resolved:
            self._resolved.append(resolved_source(self.document))
        return self._resolved[0]

    @property
    def ok(self) -> bool:
        return self.flow is not None

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "warning")


def load_flow(
    path_or_text: Source,
    *,
    source: str | None = None,
    capabilities: frozenset[str] | None = None,
    provider: str | None = None,
    platform: Platform | None = None,
) -> LoadResult:
    """Load and check a flow.

    ``path_or_text`` is a path (a ``PathLike``, or a one-line string ending in ``.yaml``/``.yml`` or naming
    an existing file) or the YAML text itself. ``source`` is the name diagnostics show (default: the path,
    or "<flow>"). ``capabilities`` are the action names the target provider can perform (None: all);
    ``provider`` names it in messages. ``platform`` is its capability table (``flow/platform.py``): with
    it, where each action may run, the parameters and the timeouts are checked too (and it gives
    ``capabilities`` and ``provider`` when those are not given).
    """
    text, shown, problem = _read(path_or_text, source)
    if problem is not None:
        return LoadResult(None, (problem,), shown)
    base = FsPath(os.fspath(path_or_text)).parent if not isinstance(path_or_text, bytes) and \
        _is_path(path_or_text) else None
    checked = check_text(text, shown, capabilities=capabilities, provider=provider, base=base,
                         platform=platform)
    return LoadResult(checked.flow, checked.diagnostics, shown, text, checked.included, checked.document)


def load_flow_or_raise(
    path_or_text: Source,
    *,
    source: str | None = None,
    capabilities: frozenset[str] | None = None,
    provider: str | None = None,
    platform: Platform | None = None,
) -> Flow:
    """Like ``load_flow``, but returns the Flow or raises ``FlowError`` carrying the diagnostics."""
    result = load_flow(path_or_text, source=source, capabilities=capabilities, provider=provider,
                       platform=platform)
    if result.flow is None:
        raise FlowError(result.errors or result.diagnostics)
    return result.flow


@dataclass(frozen=True, slots=True)
class Checked:
    diagnostics: tuple[Diagnostic, ...]
    flow: Flow | None  # when there is no error
    included: Mapping[str, str] = field(default_factory=dict)
    document: Mapping[str, Any] | None = None  # with ``flow``: the document, includes merged


def check_text(
    text: str, source: str, *, capabilities: frozenset[str] | None = None, provider: str | None = None,
    base: FsPath | None = None, platform: Platform | None = None,
) -> Checked:
    """All diagnostics for a flow's text, and the Flow when there is no error. ``base``: the folder
    ``include:`` paths are relative to (the flow file's; None: the working directory). ``platform``: the
    provider's capability table (it gives ``capabilities`` and ``provider`` when those are not given)."""
    if platform is not None:
        capabilities = platform.supported if capabilities is None else capabilities
        provider = provider or platform.name
    with _collector_paused():
        return _check(text, source, capabilities, provider, base, platform)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Checking a flow makes a few hundred thousand containers (the document, positions, the model, the
    rules' sites), none of them garbage in a cycle: the cyclic collector's passes over them, triggered by
    the allocations alone, were a twelfth of validating a 1,000-state flow (issue 15). Reference counting
    frees everything as usual; the collector runs again afterwards (and is left as it was found)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check(
    text: str, source: str, capabilities: frozenset[str] | None, provider: str | None,
    base: FsPath | None, platform: Platform | None,
) -> Checked:
    parsed = parse_source(text, source)
    found = list(parsed.diagnostics)
    doc = parsed.doc
    if doc is None or not isinstance(doc, Mapping):
        if not any(d.rule in ("syntax", LIMITS) for d in found):
            found.append(_not_a_flow(doc, source, parsed.source_map.value_pos(())))
        return Checked(sort_unique(found), None)
    if is_states_file(doc):
        return Checked(sort_unique([*found, *check_states_file(doc, parsed.source_map)]), None)
    merged = include(doc, parsed.source_map, base)
    found.extend(merged.diagnostics)
    schema_diagnostics, sound = check_schema(merged.doc, merged.source_map)
    found.extend(schema_diagnostics)
    flow = None
    if sound:
        flow = build_flow(merged.doc, source=source, locate=merged.source_map.locator())
        context = RuleContext(flow, merged.doc, merged.source_map, capabilities, provider, platform)
        found.extend(run_rules(context))
    diagnostics = sort_unique(found)
    failed = any(d.severity == "error" for d in diagnostics)
    if failed or flow is None:
        return Checked(diagnostics, None, merged.texts)
    try:
        check_writable(merged.doc)
    except ValueError:  # an .inf or .nan somewhere, which JSON cannot hold: looked for only then
        non_finite = _non_finite(merged.doc, merged.source_map)
        return Checked(sort_unique([*diagnostics, *non_finite]), None, merged.texts)
    return Checked(diagnostics, flow, merged.texts, merged.doc)


def check_states_file(doc: Mapping[str, Any], source_map: SourceMap) -> list[Diagnostic]:
    """What a file of shared states can be checked for on its own: its shape and its expressions (targets
    and roles may live in the flows that include it, which check the rest)."""
    given = doc.get("states")
    states: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    wrapped = {**doc, "flow": "included", "initial": next(iter(states), "_"), "states": states or {"_": {}}}
    found, sound = check_schema(wrapped, source_map)
    if sound:
        flow = build_flow(wrapped, source=source_map.path, locate=source_map.locator())
        context = RuleContext(flow, wrapped, source_map)
        found.extend(d for rule in STATES_FILE_RULES for d in rule(context))
    return found


def _non_finite(doc: Any, source_map: SourceMap, path: Path = ()) -> list[Diagnostic]:
    """An error at each ``.inf`` or ``.nan``: the version (``flow.version``) holds the flow as JSON,
    which has no such numbers, and no parameter or variable needs one."""
    if isinstance(doc, float) and not math.isfinite(doc):
        pos = source_map.value_pos(path)
        message = f"{doc} is not a number a flow can hold: write a finite number, or quote it as text"
        return [Diagnostic(pos.file or source_map.path, pos.line, pos.col, "error", message, "schema")]
    items = doc.items() if isinstance(doc, Mapping) else enumerate(doc) if isinstance(doc, list) else ()
    return [d for key, value in items for d in _non_finite(value, source_map, (*path, key))]


def _not_a_flow(doc: Any, source: str, pos: Any) -> Diagnostic:
    if doc is None:
        message = 'the file is empty: a flow is a mapping with "flow", "initial" and "states"'
    else:
        kind = "a list" if isinstance(doc, list) else "a single value"
        message = f'a flow is a mapping with "flow", "initial" and "states"; this file holds {kind}'
    return Diagnostic(source, pos.line, pos.col, "error", message, "schema")


def _read(path_or_text: Source, source: str | None) -> tuple[str, str, Diagnostic | None]:
    if isinstance(path_or_text, bytes):
        return _decode(path_or_text, source or "<flow>")
    if isinstance(path_or_text, str) and not _looks_like_path(path_or_text):
        return path_or_text, source or "<flow>", None
    path = FsPath(os.fspath(path_or_text))
    shown = source or str(path_or_text)
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return "", shown, Diagnostic(shown, 1, 1, "error", f"cannot read the file: {reason.lower()}", "io")
    return _decode(data, shown)


def _decode(data: bytes, shown: str) -> tuple[str, str, Diagnostic | None]:
    try:
        return data.decode("utf-8-sig"), shown, None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return "", shown, Diagnostic(shown, line, col, "error", "the file is not valid UTF-8", "syntax")


def _is_path(path_or_text: Source) -> bool:
    if isinstance(path_or_text, bytes):
        return False
    return not isinstance(path_or_text, str) or _looks_like_path(path_or_text)


def _looks_like_path(text: str) -> bool:
    if "\n" in text or not text:
        return False
    return text.endswith((".yaml", ".yml")) or os.path.isfile(text)
