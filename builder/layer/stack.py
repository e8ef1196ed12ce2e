"""A stack of overlay-format layer directories, read as the union the kernel would show.

Used where pybuild must know what the image holds at a path without mounting it: the
metadata of directories the RUN sandbox needs as mount points, and layer analysis.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from builder.layer import whiteout

L = TypeVar("L")


def union_lookup(layers: Sequence[L], rel: str, *, lstat: Callable[[L, str], os.stat_result | None],
                 is_opaque: Callable[[L, str], bool]) -> tuple[int, os.stat_result | None] | None:
    """The union rules, once for every caller: which layer (index into ``layers``, topmost
    first) decides what the union holds at ``rel``, and the lstat the union shows there
    (None when that layer hides it: a whiteout, a non-directory ancestor, or an opaque
    ancestor without the entry).  None when no layer has the path at all.

    ``lstat(layer, prefix)`` and ``is_opaque(layer, prefix)`` read one layer, so the same
    rules serve layer dirs on disk and in-memory indexes of them."""
    parts = [p for p in rel.strip("/").split("/") if p not in ("", ".")]
    if not parts:
        return None
    for k, layer in enumerate(layers):
        opaque_above = False
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            st = lstat(layer, prefix)
            if st is None:
                break
            if whiteout.is_overlay_whiteout(st):
                return k, None
            if i == len(parts):
                return k, st
            if not stat.S_ISDIR(st.st_mode):
                return k, None
            if is_opaque(layer, prefix):
                opaque_above = True
        if opaque_above:
            return k, None
    return None


@dataclass(frozen=True)
class LayerStack:
    """Layer dirs, topmost first (the order of overlay's ``lowerdir``)."""

    dirs: tuple[Path, ...]

    def lookup(self, rel: str) -> os.stat_result | None:
        """lstat of ``rel`` in the union, or None where it does not exist there (see
        ``union_lookup``).  A symlinked ancestor counts as a non-directory: not there."""
        found = union_lookup(self.dirs, rel, lstat=_lstat, is_opaque=lambda d, p: whiteout.is_opaque(str(d / p)))
        return None if found is None else found[1]


def _lstat(layer: Path, rel: str) -> os.stat_result | None:
    try:
        return os.lstat(layer / rel)
    except (FileNotFoundError, NotADirectoryError):
        return None
