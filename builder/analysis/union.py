"""The layers replayed as a container sees them (OCI image-spec layer.md semantics): which
entry is visible at each path after each layer, and what each layer changed.

Unlike dive's trees (efficiency.py), this honours every rule of the spec: a whiteout deletes a
path and everything under it, an opaque marker hides everything the layers below put in its
directory, and both apply to the layers below only (the layer's own entries are additions, in
whatever order the tar lists them).  ``Union.apply`` returns one ``Change`` per path the layer
touched, including every path a deleted directory took with it.  Pure: no I/O.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from builder.analysis.entries import Entry

ADDED, MODIFIED, UNCHANGED, DELETED = "added", "modified", "unchanged", "deleted"


@dataclass(frozen=True)
class Visible:
    """The entry a path shows, and the layer that put it there."""

    layer: int
    entry: Entry


@dataclass(frozen=True)
class Change:
    """What a layer did to ``path`` (relative, ``etc/passwd``).

    ``status``: added (nothing was there), modified (an entry of the layers below is replaced),
    unchanged (a directory written again with the same owner and mode: a copy-up), deleted.
    ``entry``: the layer's entry (None when deleted); ``old``: what was visible before (None
    when added); ``whiteout``: for a deletion, the path whose whiteout (or opaque marker) did
    it — the path itself, or a directory above it."""

    path: str
    status: str
    entry: Entry | None
    old: Visible | None
    whiteout: str | None = None

    @property
    def size(self) -> int:
        if self.entry is not None:
            return self.entry.size
        return self.old.entry.size if self.old is not None else 0


class Union:
    """The visible tree after the layers applied so far."""

    def __init__(self) -> None:
        self.visible: dict[str, Visible] = {}
        self._children: dict[str, set[str]] = {}
        self.layers = 0

    def copy(self) -> Union:
        new = Union()
        new.visible = dict(self.visible)
        new._children = {k: set(v) for k, v in self._children.items()}
        new.layers = self.layers
        return new

    def get(self, path: str) -> Visible | None:
        return self.visible.get(path)

    def has_dir(self, path: str) -> bool:
        """True if ``path`` is a directory of the union, listed or only implied by its children."""
        vis = self.visible.get(path)
        return path == "" or (vis.entry.is_dir if vis is not None else bool(self._children.get(path)))

    def under(self, path: str) -> Iterator[str]:
        """Every visible path below ``path`` (not ``path`` itself), parents before children."""
        for child in sorted(self._children.get(path, ())):
            yield child
            yield from self.under(child)

    def apply(self, entries: Sequence[Entry]) -> list[Change]:
        """Apply the next layer; returns its changes, deletions first, then in tar order."""
        index = self.layers
        self.layers += 1
        changes: list[Change] = []
        own = {e.path for e in entries if not (e.is_whiteout or e.is_opaque)}
        for e in entries:
            if e.is_whiteout:
                changes += self._delete(e.deleted_path, e.deleted_path)
            elif e.is_opaque:
                directory = posixpath.dirname(e.path)
                for p in list(self.under(directory)):
                    if p not in own and p in self.visible:
                        changes += self._delete(p, directory)
        for e in entries:
            if e.is_whiteout or e.is_opaque:
                continue
            old = self.visible.get(e.path)
            if old is not None and old.entry.is_dir and not e.is_dir:
                changes += self._delete_below(e.path, e.path)     # a directory replaced by a file
            status = ADDED if old is None else UNCHANGED if _same_dir(old.entry, e) else MODIFIED
            changes.append(Change(e.path, status, e, old))
            self._put(e.path, Visible(index, e))
        return changes

    def _put(self, path: str, vis: Visible) -> None:
        self.visible[path] = vis
        parent = posixpath.dirname(path)
        while True:
            kids = self._children.setdefault(parent, set())
            if path in kids:
                break
            kids.add(path)
            if not parent:
                break
            path, parent = parent, posixpath.dirname(parent)

    def _delete(self, path: str, whiteout: str) -> list[Change]:
        changes = self._delete_below(path, whiteout)
        old = self.visible.pop(path, None)
        if old is not None:
            changes.insert(0, Change(path, DELETED, None, old, whiteout))
        self._children.get(posixpath.dirname(path), set()).discard(path)
        return changes

    def _delete_below(self, path: str, whiteout: str) -> list[Change]:
        changes = []
        for p in list(self.under(path)):
            old = self.visible.pop(p, None)
            if old is not None:
                changes.append(Change(p, DELETED, None, old, whiteout))
            self._children.pop(p, None)
        self._children.pop(path, None)
        return changes


def _same_dir(old: Entry, new: Entry) -> bool:
    return old.is_dir and new.is_dir and (old.mode & 0o7777, old.uid, old.gid) == \
        (new.mode & 0o7777, new.uid, new.gid)


def replay(layers: Sequence[Sequence[Entry]]) -> tuple[Union, list[list[Change]]]:
    """Every layer applied in turn: the final union and each layer's changes."""
    union = Union()
    return union, [union.apply(entries) for entries in layers]


def aggregate(layers: Sequence[Sequence[Entry]], first: int, last: int) -> list[Change]:
    """What layers ``first``..``last`` (inclusive) did together, as one diff against the layers
    below ``first``: added, modified (some layer of the range wrote it) or deleted, by path."""
    union = Union()
    for entries in layers[:first]:
        union.apply(entries)
    before = union.copy()
    for entries in layers[first:last + 1]:
        union.apply(entries)
    out: list[Change] = []
    for path, vis in union.visible.items():
        old = before.get(path)
        if old is None:
            out.append(Change(path, ADDED, vis.entry, None))
        elif vis.layer >= first:
            out.append(Change(path, UNCHANGED if _same_dir(old.entry, vis.entry) else MODIFIED, vis.entry, old))
    for path, old in before.visible.items():
        if path not in union.visible:
            out.append(Change(path, DELETED, None, old))
    return sorted(out, key=lambda c: c.path)
