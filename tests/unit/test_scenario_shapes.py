"""A scenario whose values have the wrong types (hand-written YAML: a number where a mapping goes) is
refused naming the field, by ``simulate`` as by ``validate``, never with a traceback. Each of these
stopped ``flowengine simulate`` with a TypeError, AttributeError or ValueError before (found by mutating
the bundled flows' scenarios)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flowengine.scenarios.model import ScenarioError, parse_scenario

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("body", "named"), [
    ({"caller": 1.5}, "caller: 1.5 is not of type 'object'"),
    ({"caller": "10s"}, "caller: '10s' is not of type 'object'"),
    ({"parties": -1}, "parties: -1 is not of type 'object'"),
    ({"parties": [10]}, "parties: [10] is not of type 'object'"),
    ({"expect": {"states": True}}, "expect.states: True is not of type 'array'"),
    ({"expect": {"actions": 3}}, "expect.actions: 3 is not of type 'array'"),
])
def test_a_value_of_the_wrong_type_is_refused_naming_the_field(body: dict[str, Any], named: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario("s", body, where="f.yaml: scenario s")
    assert str(caught.value) == f"f.yaml: scenario s: {named} (`flowengine validate` gives its line)"


def test_simulate_refuses_such_a_scenario_in_one_line(tmp_path: Path) -> None:
    text = (ROOT / "flows" / "two_party_conference.yaml").read_text(encoding="utf-8")
    flow = tmp_path / "flow.yaml"
    bad = "scenarios:\n  bad:\n    caller: 1.5\n"
    flow.write_text(text[: text.index("scenarios:")] + bad, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "flowengine", "simulate", str(flow)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f'flowengine: {flow}: scenario "bad": caller: 1.5 is not of type \'object\' '
                           "(`flowengine validate` gives its line)\n")
