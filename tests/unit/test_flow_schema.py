"""The JSON Schema: generated from the vocabulary, published in schemas/, precise and documented."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from flowengine.flow.schema import SCHEMA_ID, flow_schema, schema_json
from flowengine.flow.vocabulary import (
    ACTIONS,
    DURATION_PATTERN,
    EVENT_FIELDS,
    EVENTS,
    ROLE_FIELDS,
    SESSION_FIELDS,
    parse_duration,
)
from flowengine.runtime.context import build_context
from flowengine.runtime.events import Event
from flowengine.runtime.session import Session

ROOT = Path(__file__).resolve().parents[2]


def test_published_schema_is_the_generated_one() -> None:
    # Regenerate with: flowengine schema -o schemas/flow.schema.json
    assert (ROOT / "schemas" / "flow.schema.json").read_text(encoding="utf-8") == schema_json()


def test_schema_is_valid_draft_2020_12_with_an_id() -> None:
    schema = flow_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID
    assert {"action", "transition", "duration", "endpoint"} <= set(schema["$defs"])


def _properties(node: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{where}/{name}", sub
        for key, sub in node.items():
            yield from _properties(sub, f"{where}/{key}")
    elif isinstance(node, list):
        for index, sub in enumerate(node):
            yield from _properties(sub, f"{where}/{index}")


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for sub in node.values():
            yield from _nodes(sub)
    elif isinstance(node, list):
        for sub in node:
            yield from _nodes(sub)


def test_references_carry_only_annotations_so_inlining_them_changes_nothing() -> None:
    # The Rust validator reads the schema with its references, the Python one with them inlined (a
    # reference's siblings override the definition's keys there): the same schema only while no
    # sibling of a $ref constrains anything, and no definition moves the base URI.
    schema = flow_schema()
    siblings = {key for node in _nodes(schema) if "$ref" in node for key in node if key != "$ref"}
    assert siblings <= {"description", "default", "title", "examples"}
    assert [node for node in _nodes(schema["$defs"]) if "$id" in node or "$anchor" in node] == []


def test_the_rust_and_python_validators_agree_on_every_test_flow() -> None:
    from flowengine.flow.schema_validation import surely_valid, validator
    from flowengine.flow.source import parse_source

    texts = [path.read_text(encoding="utf-8") for folder in ("ok", "err")
             for path in sorted((ROOT / "tests" / "testdata" / folder).glob("*.yaml"))]
    docs = [doc for doc in (parse_source(text).doc for text in texts) if isinstance(doc, dict)]
    verdicts = [(surely_valid(doc), validator().is_valid(doc)) for doc in docs]
    assert [fast for fast, _ in verdicts] == [slow for _, slow in verdicts]
    assert {slow for _, slow in verdicts} == {True, False}  # both kinds were tried


def test_every_property_has_a_description() -> None:
    missing = [where for where, sub in _properties(flow_schema()) if not sub.get("description")]
    assert missing == []


def test_actions_and_events_come_from_the_vocabulary() -> None:
    defs = flow_schema()["$defs"]
    assert set(defs["action"]["properties"]) == set(ACTIONS)
    assert set(defs["handlers"]["properties"]) == set(EVENTS)
    say = defs["action"]["properties"]["say"]
    assert say["required"] == ["call", "text"]
    assert say["additionalProperties"] is False


def test_action_items_are_one_key_objects_not_a_big_one_of() -> None:
    action = flow_schema()["$defs"]["action"]
    assert (action["type"], action["minProperties"], action["maxProperties"]) == ("object", 1, 1)
    assert action["additionalProperties"] is False
    assert "oneOf" not in json.dumps(flow_schema())


@pytest.mark.parametrize(
    "text", ["500ms", "10s", "1.5s", "2m", "1h", "0s", "10", "10 s", "s", "1d", "-1s", "1.s"]
)
def test_the_schema_duration_pattern_agrees_with_parse_duration(text: str) -> None:
    assert (re.search(DURATION_PATTERN, text) is not None) == (parse_duration(text) is not None)


def test_event_session_and_role_fields_are_what_the_runtime_gives_templates() -> None:
    session = Session(id="s1", flow="f", flow_version=1, state="a", calls={"caller": "c1"})
    context = build_context(session, Event(name="call.answered"))
    assert set(context["event"]) == set(EVENT_FIELDS)
    assert set(context["session"]) == set(SESSION_FIELDS)
    assert set(context["caller"]) == set(ROLE_FIELDS)


def test_schema_check_accepts_the_documented_shapes() -> None:
    validator = Draft202012Validator(flow_schema())
    doc = {
        "flow": "x",
        "initial": "a",
        "states": {
            "a": {
                "on": {
                    "call.answered": [{"target": "b", "when": "true"}, "b"],
                    "say.finished": {"actions": [{"set": {"n": 1}}]},
                },
                "after": {"10s": {"target": "b"}},
            },
            "b": {
                "type": "final",
                "entry": [
                    {"dial": {"to": {"sip": "sip:a@b"}, "as": "c"}},
                    {"play": {"call": "caller", "url": "u", "loop": "{{ 2 }}"}},
                ],
            },
        },
    }
    assert list(validator.iter_errors(doc)) == []
