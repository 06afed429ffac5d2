"""A flow's version: a content hash of its resolved source.

The resolved source is the flow's document with every ``include:`` merged in, as JSON (YAML reads it
back, and it holds what the flow means, not how its files are laid out): comments, formatting and the
``scenarios:`` section do not change a version; any change to what runs does. A session keeps the version
it started on, and a store keeps each version's resolved source under its hash, so any instance can
run a session on its own version even after the files changed (``server.catalog``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# Keys of a flow file that never reach a session: how the file is put together, and its tests.
_NOT_RUN = ("include", "scenarios")
HASH_CHARS = 16  # hex digits of SHA-256 kept: 64 bits, plenty for the versions of one deployment


def resolved_source(doc: Mapping[str, Any]) -> str:
    """The merged document as indented JSON, keys in their written order (order can matter: handlers)."""
    kept = {key: value for key, value in doc.items() if key not in _NOT_RUN}
    return json.dumps(kept, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def version_of(source: str) -> str:
    """The version (hash) of a resolved source."""
    return hashlib.sha256(source.encode()).hexdigest()[:HASH_CHARS]
