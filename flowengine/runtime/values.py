"""``immutable``: a value class frozen for the type checker, and a plain slotted dataclass at run time.

A frozen dataclass's ``__init__`` sets every field through ``object.__setattr__`` (its own ``__setattr__``
refuses): counted by callgrind, ~1,250 instructions a field more than a plain one's, ~15,000 for an
``Event``. The classes made several times per webhook (events, the provider's commands and answers, the
webhook's request and reply) are declared with ``immutable`` instead: ``mypy --strict`` still refuses
any assignment to their fields (``dataclass_transform(frozen_default=True)``), and nothing assigns to
them at run time either. What the run-time check no longer gives: a ``hash``, which none of them could
give anyway (each holds a dict).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def immutable(cls: type[T]) -> type[T]:
    """``@dataclass(frozen=True, slots=True)`` as the type checker sees it; ``slots=True`` at run time."""
    return dataclass(slots=True)(cls)
