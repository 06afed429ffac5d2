"""Flow versions: a hash of the resolved source (includes merged; comments, layout and scenarios do not
count), what the store keeps of it (secrets masked), and which executor a held version gets."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowengine.errors import StoreError
from flowengine.flow.loader import load_flow
from flowengine.flow.model import Flow
from flowengine.flow.version import check_writable, resolved_source, version_of
from flowengine.providers import platform
from flowengine.runtime.engine import Engine
from flowengine.runtime.executor import Executor
from flowengine.server.catalog import Catalog
from flowengine.server.flows import FlowVersion, kept_source
from flowengine.stores.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "flows" / "examples"


def loaded(path: Path) -> FlowVersion:
    result = load_flow(path)
    assert result.flow is not None and result.resolved is not None, result.diagnostics
    return FlowVersion(result.flow, version_of(result.resolved), result.resolved)


def test_the_version_follows_what_runs_and_an_included_file_but_not_comments_or_scenarios(
    tmp_path: Path,
) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    flow, shared = tmp_path / "examples" / "hours_line.yaml", tmp_path / "examples/shared/closing.yaml"
    first = loaded(flow).version
    flow.write_text("# a new comment\n" + flow.read_text().replace("scenarios:", "scenarios:  # tests"))
    assert loaded(flow).version == first
    text = shared.read_text()
    shared.write_text(text.replace("Goodbye", "Bye now", 1))
    assert text != shared.read_text() and loaded(flow).version != first


def test_a_source_with_secrets_is_kept_masked_and_one_without_as_it_is() -> None:
    plain = loaded(ROOT / "flows" / "two_party_conference.yaml")
    assert kept_source(plain.source) == plain.source
    secret = plain.source.replace('"vars": {', '"vars": {"crm": "https://u:hunter2@crm/x?token=t0k",')
    assert secret != plain.source
    assert "hunter2" not in kept_source(secret) and "t0k" not in kept_source(secret)


async def test_a_held_version_is_compiled_from_the_store_or_refused_when_it_was_masked() -> None:
    store = MemoryStore()
    old, new = loaded(ROOT / "flows" / "two_party_conference.yaml"), None
    table = platform("infobip")

    def build(flow: Flow, version: str | None) -> Executor:
        return Executor(Engine(flow, version=version))

    source = old.source.replace("Another caller is joining the call now.", "Here they are.")
    result = load_flow(source, source="changed")
    assert result.flow is not None and result.resolved is not None
    new = FlowVersion(result.flow, version_of(result.resolved), result.resolved)
    await store.put_flow_source(old.version, old.kept)
    catalog = Catalog(store, build, {new.flow.name: new.flow}, {new.flow.name: new}, table)
    held = await catalog.executor(old.flow.name, old.version)
    assert held.engine.version == old.version and held is not catalog.current[new.flow.name]
    assert await catalog.executor(old.flow.name, old.version) is held  # compiled once
    with pytest.raises(StoreError, match="not in the store"):
        await catalog.executor(old.flow.name, "0" * 16)
    masked = old.source.replace('"vars": {', '"vars": {"crm": "token=s3cret",')
    await store.put_flow_source(version_of(masked), kept_source(masked))
    with pytest.raises(StoreError, match="secrets masked"):
        await catalog.executor(old.flow.name, version_of(masked))
    # A version whose files differ only in the masked secret (rotated) runs the held version's sessions.
    rotated = loaded_text(masked.replace("s3cret", "r0tated"))
    again = Catalog(store, build, {rotated.flow.name: rotated.flow}, {rotated.flow.name: rotated}, table)
    assert await again.executor(old.flow.name, version_of(masked)) is again.current[rotated.flow.name]


def loaded_text(source: str) -> FlowVersion:
    result = load_flow(source, source="text")
    assert result.flow is not None and result.resolved is not None, result.diagnostics
    return FlowVersion(result.flow, version_of(result.resolved), result.resolved)


@pytest.mark.parametrize("written", [".inf", "-.inf", ".nan"])
def test_a_number_json_cannot_hold_is_a_diagnostic_at_its_place_not_a_traceback(written: str) -> None:
    text = (ROOT / "flows" / "two_party_conference.yaml").read_text()
    assert "\nvars:\n" in text
    result = load_flow(text.replace("\nvars:\n", f"\nvars:\n  limit: {written}\n", 1), source="f.yaml")
    line = text[:text.index("\nvars:\n")].count("\n") + 3  # the line after ``vars:``
    assert result.flow is None and result.resolved is None
    [found] = result.errors
    assert (found.path, found.line, found.col, found.rule) == ("f.yaml", line, 10, "schema")
    assert "quote it as text" in found.message
    # quoted, it is text and the flow loads
    assert loaded_text(text.replace("\nvars:\n", f'\nvars:\n  limit: "{written}"\n', 1)).source


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _JSON_VALUES, max_size=5))
def test_the_resolved_source_is_the_standard_librarys_indented_json(doc: dict[str, Any]) -> None:
    """The version is a hash of this text: however it is written (orjson, where it gives the same), it
    is json.dumps(indent=1)'s, byte for byte, for any document (lone surrogates, long integers, tiny
    exponents, control characters, empty collections)."""
    kept = {key: value for key, value in doc.items() if key not in ("include", "scenarios")}
    assert resolved_source(doc) == json.dumps(kept, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_a_resolved_source_refuses_what_json_cannot_hold(number: float) -> None:
    with pytest.raises(ValueError):
        resolved_source({"flow": "f", "vars": {"a": None, "b": [number]}})


def _refused(write: Any, doc: dict[str, Any]) -> bool:
    try:
        write(doc)
    except ValueError:
        return True
    return False


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.recursive(
    _JSON_VALUES | st.sampled_from([math.nan, math.inf, -math.inf]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=10), max_size=4))
def test_the_load_refuses_exactly_the_documents_the_resolved_source_refuses(doc: dict[str, Any]) -> None:
    """The load checks the document can be written (``check_writable``) and writes it only when asked
    (``LoadResult.resolved``): the check must refuse exactly what writing it refuses."""
    assert _refused(check_writable, doc) == _refused(resolved_source, doc)


def test_the_resolved_source_is_written_when_asked_and_once() -> None:
    result = load_flow((ROOT / "flows" / "two_party_conference.yaml").read_text(), source="f.yaml")
    assert result.document is not None and result.resolved is not None
    assert result.resolved == resolved_source(result.document)
    assert result.resolved is result.resolved  # written once
    assert load_flow("flow: f\n", source="f.yaml").resolved is None
