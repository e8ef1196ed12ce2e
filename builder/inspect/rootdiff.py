"""``pybuild diff``: what one layer did (``docker diff`` for a layer), and how two images'
root filesystems differ, from the stored layer dirs without mounting anything.

Rows are ``A`` added, ``C`` changed, ``D`` deleted (and ``O`` for an opaque directory in a
layer diff), sorted by path bytes.  Between two images a path is ``C`` when its type,
permissions, owner, size, content (sha256 of a regular file) or link target / device number
differs; modification times are ignored (a rebuild changes them and nothing else).  A deleted
directory is one ``D`` row: its contents are not listed again.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from builder.errors import PybuildError
from builder.inspect.changes import Change, LayerIndex, classify, filetype_of, image_layers, union_lookup
from builder.oci.digest import sha256_file_hex, short_id
from builder.store.store import Store


@dataclass(frozen=True)
class DiffRow:
    """One row of ``pybuild diff``.  For ``D`` rows mode/uid/gid/size are None (gone);
    for ``C`` rows of an image diff they are the second image's, and ``detail`` names what
    differs (``type``, ``mode``, ``owner``, ``size``, ``content``, ``target``, ``device``)."""

    kind: str
    path: str
    filetype: str
    mode: int | None
    uid: int | None
    gid: int | None
    size: int | None
    detail: str = ""
    copied_up_dir: bool = False


def row_of_change(c: Change) -> DiffRow:
    if c.kind == "D":
        return DiffRow("D", c.path, c.filetype, None, None, None, None)
    return DiffRow(c.kind, c.path, c.filetype, c.mode, c.uid, c.gid, c.size,
                   "copied up" if c.copied_up_dir else "", c.copied_up_dir)


def layer_diff(store: Store, image_id: str, layer: int | None = None, *,
               copied_up: bool = True) -> list[DiffRow]:
    """What layer ``layer`` (0 = base; None = the top layer) of ``image_id`` changed over the
    layers below it.  ``copied_up=False`` leaves out directories that were only copied up.
    Raises PybuildError when the image has no such layer."""
    _, _, indexes = image_layers(store, image_id)
    n = len(indexes)
    if n == 0:
        raise PybuildError(f"image {short_id(image_id)} has no layers")
    if layer is None:
        layer = n - 1
    if not 0 <= layer < n:
        raise PybuildError(f"image {short_id(image_id)} has no layer {layer} (layers are 0 to {n - 1})")
    rows = [row_of_change(c) for c in classify(indexes[layer], indexes[:layer][::-1])]
    return [r for r in rows if copied_up or not r.copied_up_dir]


def change_rows(changes: list[Change], *, copied_up: bool = True) -> list[DiffRow]:
    """Rows for a container's changes (container_changes)."""
    return [row_of_change(c) for c in changes if copied_up or not c.copied_up_dir]


# -- two images --------------------------------------------------------------------------------
def union_entries(top_first: list[LayerIndex]) -> dict[str, tuple[LayerIndex, os.stat_result]]:
    """Every path of the union (relative, no leading ``/``) → the layer that provides it and
    its lstat."""
    out: dict[str, tuple[LayerIndex, os.stat_result]] = {}
    seen: set[str] = set()
    for layer in top_first:
        for rel in layer.entries:
            if rel in seen:
                continue
            seen.add(rel)
            found = union_lookup(top_first, rel)
            if found is not None and found[1] is not None:
                out[rel] = (top_first[found[0]], found[1])
    return out


def image_diff(store: Store, id1: str, id2: str) -> list[DiffRow]:
    """How the root filesystem of ``id2`` differs from that of ``id1`` (A: only in id2,
    D: only in id1, C: in both but different)."""
    u1 = union_entries(image_layers(store, id1)[2][::-1])
    u2 = union_entries(image_layers(store, id2)[2][::-1])
    rows: list[DiffRow] = []
    for rel in sorted(u1.keys() | u2.keys(), key=os.fsencode):
        path = "/" + rel
        if rel not in u2:
            parent = rel.rpartition("/")[0]
            if parent and (parent not in u2 or not stat.S_ISDIR(u2[parent][1].st_mode)):
                continue                          # inside a deleted (or replaced) directory
            rows.append(DiffRow("D", path, filetype_of(u1[rel][1].st_mode), None, None, None, None))
            continue
        layer2, st2 = u2[rel]
        row = DiffRow("A", path, filetype_of(st2.st_mode), stat.S_IMODE(st2.st_mode),
                      st2.st_uid, st2.st_gid, _size(st2))
        if rel in u1:
            layer1, st1 = u1[rel]
            what = _differences(layer1.root / rel, st1, layer2.root / rel, st2)
            if not what:
                continue
            row = DiffRow("C", row.path, row.filetype, row.mode, row.uid, row.gid, row.size,
                          ",".join(what))
        rows.append(row)
    return rows


def _size(st: os.stat_result) -> int:
    return st.st_size if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode) else 0


def _differences(p1: Path, st1: os.stat_result, p2: Path, st2: os.stat_result) -> list[str]:
    if stat.S_IFMT(st1.st_mode) != stat.S_IFMT(st2.st_mode):
        return ["type"]
    what = []
    if stat.S_IMODE(st1.st_mode) != stat.S_IMODE(st2.st_mode):
        what.append("mode")
    if (st1.st_uid, st1.st_gid) != (st2.st_uid, st2.st_gid):
        what.append("owner")
    if stat.S_ISREG(st1.st_mode):
        if st1.st_size != st2.st_size:
            what.append("size")
        elif (st1.st_dev, st1.st_ino) != (st2.st_dev, st2.st_ino) and sha256_file_hex(p1) != sha256_file_hex(p2):
            what.append("content")
    elif stat.S_ISLNK(st1.st_mode):
        if os.readlink(p1) != os.readlink(p2):
            what.append("target")
    elif stat.S_ISCHR(st1.st_mode) or stat.S_ISBLK(st1.st_mode):
        if st1.st_rdev != st2.st_rdev:
            what.append("device")
    return what


# -- the table ---------------------------------------------------------------------------------
_TYPE_BITS = {"f": stat.S_IFREG, "d": stat.S_IFDIR, "l": stat.S_IFLNK, "c": stat.S_IFCHR,
              "b": stat.S_IFBLK, "p": stat.S_IFIFO, "s": stat.S_IFSOCK}


def diff_table(rows: list[DiffRow]) -> list[tuple[str, ...]]:
    """KIND MODE OWNER SIZE PATH (and DETAIL when a row has one); ``-`` for what is gone."""
    detail = any(r.detail for r in rows)
    table = [("KIND", "MODE", "OWNER", "SIZE", "PATH") + (("DETAIL",) if detail else ())]
    for r in rows:
        if r.mode is None:
            cells = (r.kind, "-", "-", "-", r.path)
        else:
            mode = stat.filemode(_TYPE_BITS.get(r.filetype, 0) | r.mode)
            cells = (r.kind, mode, f"{r.uid}:{r.gid}", str(r.size), r.path)
        table.append(cells + ((r.detail,) if detail else ()))
    return table


def row_json(r: DiffRow) -> dict:
    return {"kind": r.kind, "path": r.path, "type": r.filetype,
            "mode": None if r.mode is None else f"{r.mode:04o}", "uid": r.uid, "gid": r.gid,
            "size": r.size, "detail": r.detail}
