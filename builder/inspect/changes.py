"""What each layer did, read from the stored overlay-format layer dirs (no mount, no tar).

Every entry of a layer dir is one change, classified against the union of the layers below:

    A  added        the path is not in the union below
    C  changed      the path is in the union below: a new version, or a directory that was only
                    copied up on the way to a change inside it (``copied_up_dir``: same type,
                    permissions and owner as below)
    D  deleted      a whiteout (char device 0:0)
    O  opaque       a directory marked ``trusted.overlay.opaque=y``: nothing below it in lower
                    layers shows through.  The directory itself also has its own A or C change.

Paths are absolute (``/etc/passwd``, as docker diff prints them).  Lists are sorted by the
path's bytes, then A/C/D before O, so they are stable across runs and machines.

``union_lookup`` is the kernel's lookup rule over indexed layers (whiteouts, opaque dirs,
non-directory ancestors); find.py and rootdiff.py build on it.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.errors import PybuildError, StoreError
from builder.inspect.history import layer_content_size
from builder.layer import stack, whiteout
from builder.oci.config import ImageConfig, parse_config
from builder.oci.digest import chain_ids, hex_of
from builder.store.store import Store

_KIND_ORDER = {"A": 0, "C": 0, "D": 0, "O": 1}


@dataclass(frozen=True)
class Change:
    """One entry of a layer (or container upper dir) and what it did to the union.

    ``mode`` is the permission bits (with setuid/setgid/sticky); ``size`` the bytes of a
    regular file or symlink target (0 for the rest).  For ``D`` the owner is the whiteout's,
    ``mode``/``size`` are 0 and ``filetype`` is the type of what it deletes ("?" if nothing
    below has that path)."""

    path: str
    kind: str                  # "A", "C", "D" or "O"
    mode: int
    uid: int
    gid: int
    size: int
    filetype: str              # f d l c b p s (see filetype_of), "?" unknown
    copied_up_dir: bool = False


@dataclass(frozen=True)
class LayerReport:
    """One layer of an image: its identities, how it was made, and its changes."""

    index: int                 # 0 = base
    diff_id: str
    chain_id: str
    parent: str | None         # the chain ID below, None for the base
    size: int                  # bytes of the layer tar
    content_size: int          # file content and link targets (as `history` reports)
    created_by: str            # the index-th non-empty history entry ("" if there is none)
    changes: tuple[Change, ...] = field(default=())

    def count(self, kind: str) -> int:
        return sum(1 for c in self.changes if c.kind == kind and not c.copied_up_dir)

    @property
    def added(self) -> int:
        return self.count("A")

    @property
    def modified(self) -> int:
        """Changed entries, not counting directories that were only copied up."""
        return self.count("C")

    @property
    def deleted(self) -> int:
        return self.count("D")

    @property
    def opaque(self) -> int:
        return self.count("O")

    @property
    def copied_up(self) -> int:
        return sum(1 for c in self.changes if c.copied_up_dir)

    def counts(self) -> dict[str, int]:
        """added + modified + copied_up + deleted + opaque == len(changes)."""
        return {"added": self.added, "modified": self.modified, "deleted": self.deleted,
                "opaque": self.opaque, "copied_up": self.copied_up}


# -- one layer dir, indexed --------------------------------------------------------------------
@dataclass(frozen=True)
class LayerIndex:
    """Every entry of one overlay-format dir: relative path (no leading ``/``) → lstat, and
    the set of opaque directories.  ``root`` is the dir itself."""

    root: Path
    entries: dict[str, os.stat_result]
    opaque: frozenset[str]


def index_layer(root: Path) -> LayerIndex:
    """Walk ``root`` (not following symlinks).  Raises StoreError if it cannot be read."""
    entries: dict[str, os.stat_result] = {}
    opaque: set[str] = set()

    def walk(dir_path: str, rel: str) -> None:
        try:
            with os.scandir(dir_path) as it:
                names = sorted((e.name for e in it), key=os.fsencode)
        except OSError as e:
            raise StoreError(f"read layer dir {dir_path}: {e.strerror}") from e
        for name in names:
            path = os.path.join(dir_path, name)
            sub = f"{rel}/{name}" if rel else name
            st = os.lstat(path)
            entries[sub] = st
            if stat.S_ISDIR(st.st_mode):
                if whiteout.is_opaque(path):
                    opaque.add(sub)
                walk(path, sub)

    walk(str(root), "")
    return LayerIndex(Path(root), entries, frozenset(opaque))


def union_lookup(layers: Sequence[LayerIndex], rel: str) -> tuple[int, os.stat_result | None] | None:
    """builder.layer.stack.union_lookup over in-memory layer indexes (topmost first)."""
    return stack.union_lookup(layers, rel, lstat=lambda layer, p: layer.entries.get(p),
                              is_opaque=lambda layer, p: p in layer.opaque)


def union_stat(layers: Sequence[LayerIndex], rel: str) -> os.stat_result | None:
    """lstat of ``rel`` in the union of ``layers`` (topmost first), None if not there."""
    found = union_lookup(layers, rel)
    return None if found is None else found[1]


def filetype_of(mode: int) -> str:
    for test, char in ((stat.S_ISREG, "f"), (stat.S_ISDIR, "d"), (stat.S_ISLNK, "l"),
                       (stat.S_ISCHR, "c"), (stat.S_ISBLK, "b"), (stat.S_ISFIFO, "p"),
                       (stat.S_ISSOCK, "s")):
        if test(mode):
            return char
    return "?"


def _size_of(st: os.stat_result) -> int:
    return st.st_size if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode) else 0


def classify(top: LayerIndex, below: Sequence[LayerIndex]) -> list[Change]:
    """The changes ``top`` makes over the union of ``below`` (topmost first), sorted."""
    out: list[Change] = []
    for rel, st in top.entries.items():
        path = "/" + rel
        if whiteout.is_overlay_whiteout(st):
            lower = union_stat(below, rel)
            out.append(Change(path, "D", 0, st.st_uid, st.st_gid, 0,
                              "?" if lower is None else filetype_of(lower.st_mode)))
            continue
        lower = None if under_opaque(top, rel) else union_stat(below, rel)
        kind = "A" if lower is None else "C"
        copied = (lower is not None and stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(lower.st_mode)
                  and (st.st_mode, st.st_uid, st.st_gid) == (lower.st_mode, lower.st_uid, lower.st_gid)
                  and rel not in top.opaque)
        out.append(Change(path, kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, _size_of(st),
                          filetype_of(st.st_mode), copied_up_dir=copied))
        if rel in top.opaque:
            out.append(Change(path, "O", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, 0, "d"))
    out.sort(key=lambda c: (os.fsencode(c.path), _KIND_ORDER[c.kind]))
    return out


def under_opaque(layer: LayerIndex, rel: str) -> bool:
    """True if a proper ancestor of ``rel`` is opaque in ``layer`` (lower entries are hidden)."""
    parts = rel.split("/")
    return any("/".join(parts[:i]) in layer.opaque for i in range(1, len(parts)))


# -- an image's layers -------------------------------------------------------------------------
def image_layers(store: Store, image_id: str) -> tuple[ImageConfig, list[str], list[LayerIndex]]:
    """The config, chain IDs (base first) and indexed layer dirs (base first) of an image."""
    cfg = parse_config(store.image_config(image_id))
    chains = chain_ids(cfg.diff_ids)
    for chain in chains:
        if not store.has_layer(chain):
            raise StoreError(f"layer {chain} of image {image_id} is not in the store")
    return cfg, chains, [index_layer(store.layer_dir(c)) for c in chains]


def layer_changes(store: Store, image_id: str) -> list[LayerReport]:
    """One report per layer of ``image_id``, base (index 0) first."""
    return _reports(store, image_id)[0]


def _reports(store: Store, image_id: str) -> tuple[list[LayerReport], list[LayerIndex]]:
    cfg, chains, indexes = image_layers(store, image_id)
    made_by = [h.created_by for h in cfg.history if not h.empty_layer]
    reports = []
    for i, (diff, chain) in enumerate(zip(cfg.diff_ids, chains)):
        info = store.layer_info(chain)
        below = indexes[:i][::-1]
        reports.append(LayerReport(
            index=i, diff_id=diff, chain_id=chain, parent=chains[i - 1] if i else None,
            size=info.size, content_size=layer_content_size(store, chain),
            created_by=made_by[i] if i < len(made_by) else "",
            changes=tuple(classify(indexes[i], below))))
    return reports, indexes


def container_changes(store: Store, upper: Path, image_id: str) -> list[Change]:
    """The changes a container's upper dir makes over the union of ``image_id``'s layers."""
    if not Path(upper).is_dir():
        raise PybuildError(f"container layer {upper} does not exist")
    _, _, indexes = image_layers(store, image_id)
    return classify(index_layer(Path(upper)), indexes[::-1])


def container_image(container_dir: Path) -> str:
    """The image ID a container (``<store>/containers/<name>``) was made from (meta.json)."""
    try:
        meta = json.loads((Path(container_dir) / "meta.json").read_text())
        return str(meta["image"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PybuildError(f"container {Path(container_dir).name}: unreadable meta.json") from e


def describe_layers(store: Store, image_id: str) -> list[dict[str, Any]]:
    """Every layer, base first, as plain JSON/YAML-able data.  Keys (in this order): index,
    id (chain ID hex), diff_id, chain_id, parent, created_by, size, content_size, counts,
    changes ([{"path", "kind"}], sorted as in classify).  ``layers --format json`` prints
    exactly this; layers.yaml holds it too."""
    return [{
        "index": r.index,
        "id": hex_of(r.chain_id),
        "diff_id": r.diff_id,
        "chain_id": r.chain_id,
        "parent": r.parent,
        "created_by": r.created_by,
        "size": r.size,
        "content_size": r.content_size,
        "counts": r.counts(),
        "changes": [{"path": c.path, "kind": c.kind} for c in r.changes],
    } for r in layer_changes(store, image_id)]


# -- the stack as a picture ----------------------------------------------------------------------
_MARK = {"A": "+", "C": "~", "D": "-"}


def stack_graph(store: Store, image_id: str, *, per_layer: int = 8, width: int = 72) -> str:
    """The layer stack, top first, as a union-mount diagram: for every layer its chain ID, how
    it was made, and the entries the container sees from it (``+`` added, ``~`` changed,
    ``-`` deleted: a whiteout in effect; directories only copied up are counted, not listed),
    at most ``per_layer`` of them."""
    reports, indexes = _reports(store, image_id)
    top_first = indexes[::-1]
    n = len(reports)
    seen_total = 0
    blocks: list[list[str]] = []
    for r in reversed(reports):
        seen: list[Change] = []
        entries = 0
        for c in r.changes:
            if c.kind == "O":
                continue
            entries += 1
            found = union_lookup(top_first, c.path[1:])
            if found is None or n - 1 - found[0] != r.index:
                continue
            if (found[1] is None) == (c.kind == "D"):
                seen.append(c)
        seen_total += sum(1 for c in seen if c.kind != "D")
        by = r.created_by if len(r.created_by) <= width - 4 else r.created_by[:width - 5] + "…"
        lines = [f"layer {r.index}  {hex_of(r.chain_id)[:12]}  {r.content_size} bytes  "
                 f"{entries} entries, {len(seen)} seen by the container"] + ([f"  {by}"] if by else [])
        listed = [c for c in seen if not c.copied_up_dir]
        opaque = indexes[r.index].opaque
        for c in listed[:per_layer]:
            suffix = "/" if c.filetype == "d" else ""
            note = "  (whiteout)" if c.kind == "D" else "  (opaque)" if c.path[1:] in opaque else ""
            lines.append(f"  {_MARK[c.kind]} {c.path}{suffix}{note}")
        if len(listed) > per_layer:
            lines.append(f"  … and {len(listed) - per_layer} more")
        blocks.append(lines)
    rule = "─" * width
    out = [f"container view: {seen_total} paths from {n} layer{'s' if n != 1 else ''} (read-only, top first)",
           f"┌{rule}"]
    for i, lines in enumerate(blocks):
        out.extend(f"│ {line}" for line in lines)
        out.append(f"{'├' if i < len(blocks) - 1 else '└'}{rule}")
    return "\n".join(out)
