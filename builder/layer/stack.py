"""A stack of overlay-format layer directories, read as the union the kernel would show.

Used where pybuild must know what the image holds at a path without mounting it: the
metadata of directories the RUN sandbox needs as mount points, and layer analysis.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from builder.layer import whiteout


@dataclass(frozen=True)
class LayerStack:
    """Layer dirs, topmost first (the order of overlay's ``lowerdir``)."""

    dirs: tuple[Path, ...]

    def lookup(self, rel: str) -> os.stat_result | None:
        """lstat of ``rel`` in the union, or None where it does not exist there.

        A whiteout hides the path in lower layers; a non-directory ancestor hides it; an
        opaque ancestor hides everything below it in lower layers.  A symlinked ancestor is
        treated as hiding the path (callers get the conservative answer: not there)."""
        parts = [p for p in rel.strip("/").split("/") if p not in ("", ".")]
        if not parts:
            return None
        for layer in self.dirs:
            cur = layer
            for i, part in enumerate(parts):
                try:
                    st = os.lstat(cur / part)
                except FileNotFoundError:
                    if i > 0 and whiteout.is_opaque(str(cur)):
                        return None
                    break
                if whiteout.is_overlay_whiteout(st):
                    return None
                if i == len(parts) - 1:
                    return st
                if not stat.S_ISDIR(st.st_mode):
                    return None
                cur = cur / part
        return None
