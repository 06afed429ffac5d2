"""Where each node of a flow document is written: ``SourceMap``, filled by ``source.parse_source``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flowengine.flow.model import Pos

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class SourceMap:
    """Positions of every node: ``spots[path]`` is ``(path, key, value)``, where the mapping key is written
    and where the value starts (for list items both are the item): the reader's own entries, so the map
    is one dict made in one pass (issue 15)."""

    path: str
    text: str
    spots: dict[Path, tuple[Path, tuple[int, int], tuple[int, int]]] = field(default_factory=dict)
    # Nodes merged in from ``include:``d files: (section, name) -> that file's map, which has them at the
    # same path. Every position of such a node is in that file.
    origins: dict[Path, SourceMap] = field(default_factory=dict)
    included: bool = False  # an included file's map: its positions name the file (``Pos.file``)

    def owner(self, path: Path) -> SourceMap:
        """The map of the file ``path`` is written in."""
        return self.origins.get(path[:2], self) if self.origins else self

    def key_pos(self, path: Path) -> Pos:
        """Where the key naming ``path`` is written; the nearest known ancestor otherwise."""
        owner = self.owner(path)
        if owner is not self:
            return owner.key_pos(path)
        entry = self.spots.get(path)
        return self._pos(entry[1]) if entry else self._ancestor(path)

    def value_pos(self, path: Path) -> Pos:
        owner = self.owner(path)
        if owner is not self:
            return owner.value_pos(path)
        entry = self.spots.get(path)
        return self._pos(entry[2]) if entry else self._ancestor(path)

    def locate(self, path: Path) -> Pos | None:
        """For ``build.build_flow``: the key naming a node, else where its value starts."""
        owner = self.owner(path)
        if owner is not self:
            return owner.locate(path)
        entry = self.spots.get(path)
        return self._pos(entry[1]) if entry else None

    def locator(self) -> Callable[[Path], Pos | None]:
        """``locate``, as one closure over the map's dict when no node comes from another file: what
        ``build_flow`` calls for each of a 1,000-state flow's 11,000 nodes (issue 15)."""
        if self.origins:
            return self.locate
        spots, file = self.spots, self.path if self.included else ""

        def locate(path: Path) -> Pos | None:
            entry = spots.get(path)
            return Pos(entry[1][0], entry[1][1], file) if entry else None

        return locate

    def _pos(self, spot: tuple[int, int]) -> Pos:
        return Pos(spot[0], spot[1], self.path if self.included else "")

    def find(self, path: Path, needle: str, skip: int = 0) -> Pos:
        """The column of ``needle`` (after ``skip`` earlier occurrences) inside the value at ``path`` when
        it is on the value's first line (templates and guards), else the value's start."""
        owner = self.owner(path)
        if owner is not self:
            return owner.find(path, needle, skip)
        start = self.value_pos(path)
        line = self.line(start.line)
        index = line.find(needle, start.col - 1) if needle else -1
        for _ in range(skip):
            if index < 0:
                break
            index = line.find(needle, index + len(needle))
        return Pos(start.line, index + 1, start.file) if index >= 0 else start

    def line(self, number: int, file: str = "") -> str:
        """Line ``number`` of this file, or of the included ``file``."""
        if file and file != self.path:
            return next((m.line(number) for m in self.origins.values() if m.path == file), "")
        lines = self.text.splitlines()
        return lines[number - 1] if 0 < number <= len(lines) else ""

    def _ancestor(self, path: Path) -> Pos:
        for cut in range(len(path) - 1, -1, -1):
            entry = self.spots.get(path[:cut])
            if entry:
                return self._pos(entry[1])
        return Pos(1, 1, self.path if self.included else "")
