"""Why bytes are wasted, path by path, and what could really be saved.

dive counts, for every path seen in two or more layers, every copy (its wastedBytes).  Here
each path that costs more than the copy the final image shows gets its reasons, from the layers
replayed as a container sees them (union.py):

    metadata-only  copied up whole by a chmod, chown or touch: the content did not change
    overwritten    written again with new content
    deleted        added, then deleted by a whiteout of the path itself
    deleted-dir    added, then deleted with a directory above it (its whiteout, or an opaque
                   marker of a layer that rewrote the directory)
    duplicate      the same content is also at another path of the final image (dive does not
                   see these: it compares paths, never contents)

``reclaimable`` is what a rewritten Buildfile could save: every stored copy except the one the
final image shows (dive counts that one too: its issue #684).  A duplicate's copy is counted
apart, as ``duplicate_bytes`` (one path keeps the content: the one written first, then the
first by name), since keeping two copies can be deliberate.  Directories cost no bytes in
dive's sizes (a tar header's size is 0) and are left out.  Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from builder.analysis.entries import REG, Entry
from builder.analysis.union import DELETED, MODIFIED, Change, Visible

METADATA, OVERWRITTEN, DELETED_FILE, DELETED_DIR, DUPLICATE = \
    "metadata-only", "overwritten", "deleted", "deleted-dir", "duplicate"
REASONS = (METADATA, OVERWRITTEN, DELETED_FILE, DELETED_DIR, DUPLICATE)

#: What each reason means, in the words the text and HTML reports use.
EXPLAIN = {
    METADATA: "copied up whole by a metadata-only change (chmod/chown/touch): same content",
    OVERWRITTEN: "overwritten with new content",
    DELETED_FILE: "added, then deleted (a whiteout)",
    DELETED_DIR: "deleted with its directory",
    DUPLICATE: "the same content is at another path",
}


@dataclass(frozen=True)
class Reason:
    """One cause: ``kind`` (one of REASONS), the ``layer`` where it happened, and ``other``:
    the deleted directory (deleted-dir) or the path that keeps the content (duplicate)."""

    kind: str
    layer: int
    other: str = ""

    def describe(self) -> str:
        text = {METADATA: "metadata-only copy-up (same content)", OVERWRITTEN: "overwritten",
                DELETED_FILE: "deleted", DELETED_DIR: f"deleted with /{self.other}",
                DUPLICATE: f"same content as /{self.other}"}[self.kind]
        return f"{text} in layer {self.layer}"


@dataclass
class WastedPath:
    """One path and what it costs: ``layers`` every layer that added, changed or deleted it;
    ``copies`` the size of each copy stored (one per layer that wrote it); ``final_size`` the
    size of the copy the final image shows (0: none)."""

    path: str                                   # relative: etc/passwd
    layers: list[int] = field(default_factory=list)
    copies: list[int] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    final_size: int = 0
    duplicate_bytes: int = 0

    @property
    def first(self) -> int:
        return self.layers[0]

    @property
    def last(self) -> int:
        return self.layers[-1]

    @property
    def stored_bytes(self) -> int:
        """Every copy stored: what dive would call this path's waste."""
        return sum(self.copies)

    @property
    def reclaimable(self) -> int:
        """Every stored copy but the final one."""
        return self.stored_bytes - self.final_size

    @property
    def cost(self) -> int:
        """What rewriting could save, duplicates included: the order of the worst files."""
        return self.reclaimable + self.duplicate_bytes

    def to_json(self) -> dict:
        return {"file": "/" + self.path, "layers": self.layers, "firstLayer": self.first,
                "lastLayer": self.last, "count": len(self.layers), "sizeBytes": self.stored_bytes,
                "reclaimableBytes": self.reclaimable, "duplicateBytes": self.duplicate_bytes,
                "reasons": [{"reason": r.kind, "layer": r.layer,
                             **({"path": "/" + r.other} if r.other else {})} for r in self.reasons]}


def wasted_paths(changes: Sequence[Sequence[Change]], final: dict[str, Visible]) -> list[WastedPath]:
    """The paths that cost more than their final copy (or duplicate another), from each layer's
    changes and the final image (union.replay); ordered by cost, largest first, then by path."""
    paths: dict[str, WastedPath] = {}
    for layer, layer_changes in enumerate(changes):
        for c in layer_changes:
            entry = c.entry if c.entry is not None else c.old.entry if c.old is not None else None
            if entry is None or entry.is_dir:
                continue
            wp = paths.setdefault(c.path, WastedPath(c.path))
            wp.layers.append(layer)
            if c.status == DELETED:
                own = c.whiteout == c.path
                wp.reasons.append(Reason(DELETED_FILE if own else DELETED_DIR, layer,
                                         "" if own else c.whiteout or ""))
                continue
            wp.copies.append(entry.size)
            if c.status == MODIFIED and c.old is not None and not c.old.entry.is_dir:
                same = _same_content(c.old.entry, entry)
                wp.reasons.append(Reason(METADATA if same else OVERWRITTEN, layer))
            # added again after a deletion: the deletion already said why
    for path, vis in final.items():
        if path in paths and not vis.entry.is_dir:
            paths[path].final_size = vis.entry.size
    _duplicates(paths, final)
    wasted = [wp for wp in paths.values() if len(wp.layers) > 1 or wp.duplicate_bytes]
    return sorted(wasted, key=lambda w: (-w.cost, w.path))


def _same_content(a: Entry, b: Entry) -> bool:
    if a.kind != b.kind:
        return False
    if a.kind == REG:
        return a.digest == b.digest and a.size == b.size
    return a.linkname == b.linkname


def _duplicates(paths: dict[str, WastedPath], final: dict[str, Visible]) -> None:
    """Mark every regular file of the final image whose content another path also has; the
    path whose copy was written first keeps it (then the first by name)."""
    groups: dict[str, list[str]] = {}
    for path, vis in final.items():
        if vis.entry.kind == REG and vis.entry.size > 0 and vis.entry.digest:
            groups.setdefault(vis.entry.digest, []).append(path)
    for group in groups.values():
        if len(group) < 2:
            continue
        group.sort(key=lambda p: (final[p].layer, p))
        for p in group[1:]:
            wp = paths[p]
            wp.duplicate_bytes = final[p].entry.size
            wp.reasons.append(Reason(DUPLICATE, final[p].layer, group[0]))


def reclaimable_bytes(wasted: Sequence[WastedPath]) -> int:
    return sum(w.reclaimable for w in wasted)


def duplicate_bytes(wasted: Sequence[WastedPath]) -> int:
    return sum(w.duplicate_bytes for w in wasted)
