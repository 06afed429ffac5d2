"""The pre-commit hook (.pre-commit-hooks.yaml) with the real `pre-commit` tool in a throwaway git
repository: it checks flow files, and only them (not CI workflows, not pre-commit's own config).

Offline: the hook is declared `repo: local` with `language: system` and the installed flowengine as its
entry (the published hook's `language: python` would make pre-commit build an environment from the
network); everything else — id, name, `files`, `types` — is taken from the manifest as published, so the
selection tested is the one users get.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MANIFEST = ROOT / ".pre-commit-hooks.yaml"

GOOD = """\
flow: good
version: 1
initial: answering
states:
  answering:
    entry: [{answer: {call: caller}}]
    on: {call.answered: bye}
    after: {10s: bye}
  bye:
    type: final
    entry: [{hangup: {call: caller}}]
"""
BAD = GOOD.replace("answer: {call: caller}", "answr: {call: caller}")
WORKFLOW = """\
name: ci
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    steps: [{uses: actions/checkout@v4}, {run: make test}]
"""


def the_hook() -> dict[str, Any]:
    (hook,) = yaml.safe_load(MANIFEST.read_text())
    assert hook["id"] == "flowengine-validate" and hook["entry"] == "flowengine validate"
    return dict(hook)


def selected(path: str) -> bool:
    """Whether pre-commit's default selection passes ``path`` to the hook (``files`` is searched)."""
    hook = the_hook()
    return bool(re.search(hook["files"], path)) and path.endswith((".yaml", ".yml"))


@pytest.mark.parametrize(
    ("path", "picked"),
    [
        ("flows/ivr.yaml", True),
        ("flows/sales/queue.yml", True),
        ("services/callcenter/flows/hunt.yaml", True),
        ("ivr/menu.flow.yaml", True),
        ("menu.flow.yml", True),
        (".github/workflows/ci.yml", False),
        (".pre-commit-config.yaml", False),
        ("docker-compose.yaml", False),
        ("flowengine.yaml", False),
        ("overflows/x.yaml", False),
        ("flows/README.md", False),
    ],
)
def test_the_default_selection_is_flow_files(path: str, picked: bool) -> None:
    assert selected(path) is picked


def test_the_manifest_is_valid_for_pre_commit() -> None:
    done = subprocess.run(
        [str(BIN / "pre-commit"), "validate-manifest", str(MANIFEST)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        home = path.parent / "home"
        home.mkdir()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))},
            "HOME": str(home), "PRE_COMMIT_HOME": str(path.parent / "cache"), "NO_COLOR": "1",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=self.path, env=self.env, capture_output=True, text=True, timeout=120, check=False
        )

    def write(self, name: str, text: str) -> None:
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def commit(self, message: str) -> subprocess.CompletedProcess[str]:
        assert self.run("git", "add", "-A").returncode == 0
        return self.run("git", "commit", "-q", "-m", message)

    def commits(self) -> int:
        return int(self.run("git", "rev-list", "--count", "HEAD").stdout.strip() or 0)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "repo")
    repo.path.mkdir()
    assert repo.run("git", "init", "-q").returncode == 0
    hook = {k: v for k, v in the_hook().items() if k not in ("language", "entry")}
    hook |= {
        "entry": f"{shlex.quote(str(BIN / 'flowengine'))} validate",
        "language": "system",
        "verbose": True,  # show validate's summary on success too: it says how many files it was given
    }
    repo.write(".pre-commit-config.yaml", yaml.safe_dump({"repos": [{"repo": "local", "hooks": [hook]}]}))
    repo.write(".github/workflows/ci.yml", WORKFLOW)
    installed = repo.run(str(BIN / "pre-commit"), "install")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return repo


def test_the_hook_passes_good_flows_fails_bad_ones_and_ignores_other_yaml(repo: Repo) -> None:
    repo.write("flows/good.yaml", GOOD)
    repo.write("ivr/menu.flow.yaml", GOOD)
    first = repo.commit("a flow, a CI workflow, the config")
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout + first.stderr
    assert re.search(r"flowengine validate\.+Passed", out), out
    # Both flows and nothing else: the workflow and the config are not flows and would fail validate.
    assert "no problems in 2 files" in out, out
    assert repo.commits() == 1

    repo.write("flows/bad.yaml", BAD)
    refused = repo.commit("a bad flow")
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert re.search(r"flowengine validate\.+Failed", out), out
    assert 'flows/bad.yaml:6:14: error: unknown action "answr"; did you mean "answer"?' in out, out
    assert repo.commits() == 1

    # Only the workflow and the config change: the hook has nothing to check.
    repo.run("git", "reset", "-q", "flows/bad.yaml")
    (repo.path / "flows" / "bad.yaml").unlink()
    repo.write(".github/workflows/ci.yml", WORKFLOW.replace("make test", "make run"))
    repo.write(".pre-commit-config.yaml", (repo.path / ".pre-commit-config.yaml").read_text() + "\n")
    skipped = repo.commit("CI only")
    out = skipped.stdout + skipped.stderr
    assert skipped.returncode == 0, out
    assert re.search(r"flowengine validate\.+\(no files to check\)Skipped", out), out
    assert repo.commits() == 2
    # Nothing was cloned or installed: the run stayed offline.
    cache = repo.path.parent / "cache"
    assert [p.name for p in cache.iterdir() if p.is_dir()] == []
