"""dive's numbers, computed exactly as dive computes them (wagoodman/dive: filetree/efficiency.go,
image/analysis.go, image/docker/image_archive.go), over each layer's entries.

Each layer becomes a tree the way dive builds one: every entry is added at its cleaned path
(missing parents are made as empty nodes; a name under ``.wh..wh.`` — the opaque marker — is
never added); the layer's size is the sum of every entry's size.  Then, layer by layer, the
LEAF nodes are visited children first in name order, and each adds to its path's record a
size: its own, or for a whiteout the size of what it hides in the layers below stacked together
(the whole subtree when that was a directory, 0 when it was a file).  A path seen in two or more
layers is inefficient; the efficiency is the sum over paths of the smallest size seen divided
by the sum of all sizes seen (1.0 when nothing was seen), and wastedBytes is the sum of all
sizes seen of the inefficient paths.

Reproduced as dive does them, though they look like bugs (docs/analysis.md lists them): a
whiteout of a path the layers below do not have ends that layer's visit (its other leaves are
not counted); an opaque directory (``.wh..wh..opq``) deletes nothing when layers are stacked;
a whiteout in the first layer is looked up in the first layer itself; a deleted directory's
bytes count once as "seen" and never as waste.  Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from builder.analysis.entries import Entry
from builder.layer.whiteout import WHITEOUT_META_PREFIX, WHITEOUT_PREFIX


class Node:
    """A node of a dive file tree: a name, children by name, and the entry it was given (None
    for a parent made on the way to a deeper path: dive's empty FileInfo)."""

    __slots__ = ("children", "entry", "name", "parent")

    def __init__(self, name: str, parent: Node | None, entry: Entry | None = None) -> None:
        self.name = name
        self.parent = parent
        self.entry = entry
        self.children: dict[str, Node] = {}

    @property
    def size(self) -> int:
        return self.entry.size if self.entry is not None else 0

    @property
    def is_dir(self) -> bool:
        return self.entry.is_dir if self.entry is not None else False

    @property
    def is_whiteout(self) -> bool:
        return self.name.startswith(WHITEOUT_PREFIX)

    @property
    def path(self) -> str:
        """``/a/b/c``; a whiteout's own name loses its ``.wh.`` (its parents keep theirs)."""
        names: list[str] = []
        node: Node | None = self
        while node is not None and node.parent is not None:
            name = node.name
            if node is self and name.startswith(WHITEOUT_PREFIX):
                name = name[len(WHITEOUT_PREFIX):]
            names.append(name)
            node = node.parent
        return ("/" + "/".join(reversed(names))).replace("//", "/")

    def sorted_children(self) -> list[Node]:
        # Go's sort.Strings compares bytes; encode as tarfile decoded (surrogates for bad UTF-8)
        return [self.children[k] for k in sorted(self.children, key=_go_key)]

    def visit_children_first(self) -> Iterator[Node]:
        """Every node below this one (not this one), deepest first, siblings in name order."""
        for child in self.sorted_children():
            yield from child.visit_children_first()
            yield child

    def copy(self, parent: Node | None) -> Node:
        new = Node(self.name, parent, self.entry)
        new.children = {k: c.copy(new) for k, c in self.children.items()}
        return new


def _go_key(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


class FileTree:
    """One layer's tree (or several stacked), as dive's FileTree."""

    def __init__(self) -> None:
        self.root = Node("", None)
        self.file_size = 0           # sum of the sizes of every entry given (dive's FileSize)

    @classmethod
    def of_layer(cls, entries: Sequence[Entry]) -> FileTree:
        tree = cls()
        for e in entries:
            tree.file_size += e.size
            tree.add_path(e.path, e)
        return tree

    def add_path(self, path: str, entry: Entry | None) -> None:
        """Add (or give a new entry to) the node at ``path``, making missing parents."""
        node = self.root
        names = [n for n in path.strip("/").split("/") if n]
        for i, name in enumerate(names):
            child = node.children.get(name)
            if child is None:
                if name.startswith(WHITEOUT_META_PREFIX):
                    return                      # the opaque marker (and AUFS metadata) are never added
                child = node.children[name] = Node(name, node)
            node = child
            if i == len(names) - 1:
                node.entry = entry

    def get(self, path: str) -> Node | None:
        node = self.root
        for name in path.strip("/").split("/"):
            if not name:
                continue
            found = node.children.get(name)
            if found is None:
                return None
            node = found
        return node

    def remove(self, path: str) -> bool:
        node = self.get(path)
        if node is None or node.parent is None:
            return False
        del node.parent.children[node.name]
        return True

    def stack(self, upper: FileTree) -> None:
        """Put ``upper`` on this tree: its whiteouts remove paths (a missing one is passed
        over), every other node is added with its entry (dive's Stack; no opaque handling)."""
        for node in upper.root.visit_children_first():
            if node.is_whiteout:
                self.remove(node.path)
            else:
                self.add_path(node.path, node.entry)

    def copy(self) -> FileTree:
        new = FileTree()
        new.root = self.root.copy(None)
        new.file_size = self.file_size
        return new

    def leaves(self) -> Iterator[Node]:
        return (n for n in self.root.visit_children_first() if not n.children)


@dataclass
class PathRecord:
    """What dive's EfficiencyData holds for one path: the size each sighting added, by layer."""

    path: str
    sizes: list[int] = field(default_factory=list)
    layers: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.sizes)

    @property
    def cumulative(self) -> int:
        return sum(self.sizes)

    @property
    def minimum(self) -> int:
        return min(self.sizes)


@dataclass(frozen=True)
class Efficiency:
    """dive's analysis of an image: the score, and the inefficient paths, in dive's export
    order (largest cumulative size first; among equals, the one found inefficient last first)."""

    score: float
    inefficient: tuple[PathRecord, ...]
    layer_sizes: tuple[int, ...]

    @property
    def size_bytes(self) -> int:
        return sum(self.layer_sizes)

    @property
    def user_size_bytes(self) -> int:
        """Every layer but the first (dive: "all bytes except for the base image")."""
        return sum(self.layer_sizes[1:])

    @property
    def wasted_bytes(self) -> int:
        return sum(r.cumulative for r in self.inefficient)

    @property
    def wasted_user_percent(self) -> float:
        """wastedBytes / userSizeBytes, a ratio (0.48 is 48 %) despite its name; with no user
        bytes, dive divides by zero (+Inf, or NaN when nothing is wasted): we give those too."""
        user = self.user_size_bytes
        if user == 0:
            return float("nan") if self.wasted_bytes == 0 else float("inf")
        return self.wasted_bytes / user


def efficiency(layers: Sequence[Sequence[Entry]]) -> Efficiency:
    """dive's ``Efficiency`` and ``Analyze`` over the entries of each layer, base first."""
    trees = [FileTree.of_layer(entries) for entries in layers]
    records: dict[str, PathRecord] = {}
    found: list[PathRecord] = []                    # in the order they became inefficient
    below: FileTree | None = trees[0].copy() if trees else None
    for idx, tree in enumerate(trees):
        if idx > 0 and below is not None:
            below.stack(trees[idx - 1])             # dive stacks layers 0..idx-1 on a copy of 0
        stacked = below
        for node in tree.leaves():
            size = _sighting_size(node, stacked)
            if size is None:
                break                               # dive's visit of this layer ends here
            path = node.path
            rec = records.get(path)
            if rec is None:
                rec = records[path] = PathRecord(path)
            rec.sizes.append(size)
            rec.layers.append(idx)
            if rec.count == 2:
                found.append(rec)
    minimum = sum(r.minimum for r in records.values())
    discovered = sum(r.cumulative for r in records.values())
    score = 1.0 if discovered == 0 else minimum / discovered
    ordered = sorted(found, key=lambda r: r.cumulative)          # stable, as Go's insertion sort
    return Efficiency(score, tuple(reversed(ordered)), tuple(t.file_size for t in trees))


def _sighting_size(node: Node, stacked: FileTree | None) -> int | None:
    """The size a leaf adds: its own, or for a whiteout what it hides (None: dive errors)."""
    if not node.is_whiteout:
        return node.size
    previous = stacked.get(node.path) if stacked is not None else None
    if previous is None:
        return None
    if not previous.is_dir:
        return 0
    return previous.size + sum(n.size for n in previous.visit_children_first())


