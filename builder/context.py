"""The build context: resolving ADD/COPY sources inside it, never outside.

Sources are relative to the context root (a leading ``/`` is ignored, as docker does).  A
source that leaves the context — by ``..`` or through a symlink — is refused, as docker's
classic builder refuses ``..`` ("forbidden path outside the build context").  Wildcards follow
Go's filepath.Match: ``*`` and ``?`` never match ``/``; a match is made per path.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import stat
from dataclasses import dataclass
from pathlib import Path

from builder.errors import ContextError

_WILDCARDS = set("*?[")


@dataclass(frozen=True)
class Source:
    """A resolved source: ``path`` is the real file or dir inside the context (symlinks
    followed), ``name`` the base name the copy gets (the name as written or matched)."""

    path: Path
    name: str
    rel: str                      # relative to the context root, for messages and hashes
    is_dir: bool


class BuildContext:
    def __init__(self, root: str | Path) -> None:
        try:
            self.root = Path(os.path.realpath(root))
            if not self.root.is_dir():
                raise ContextError(f"build context {root} is not a directory")
        except OSError as e:
            raise ContextError(f"build context {root}: {e.strerror}") from e

    def resolve(self, src: str) -> list[Source]:
        """All sources ``src`` names: one for a plain path, every match for a wildcard.
        Raises ContextError for an escape, a missing path, or a wildcard matching nothing."""
        cleaned = self._clean(src)
        if _WILDCARDS & set(cleaned):
            matches = self._glob(cleaned)
            if not matches:
                raise ContextError(f"no source files were specified: {src} matches nothing in the context")
            return [self._source(m, src) for m in matches]
        return [self._source(cleaned, src)]

    def _clean(self, src: str) -> str:
        norm = posixpath.normpath(src)
        if norm.startswith("/"):
            norm = posixpath.normpath(norm.lstrip("/")) or "."
        if norm == ".." or norm.startswith("../"):
            raise ContextError(f"forbidden path outside the build context: {src}")
        return norm

    def _glob(self, pattern: str) -> list[str]:
        want = pattern.split("/")
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = os.path.relpath(dirpath, self.root)
            depth = 0 if rel_dir == "." else rel_dir.count("/") + 1
            if depth >= len(want):
                dirnames[:] = []
                continue
            for name in sorted(dirnames + filenames):
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                parts = rel.split("/")
                if len(parts) == len(want) and all(_match(p, w) for p, w in zip(parts, want)):
                    found.append(rel)
            dirnames.sort()
        return sorted(found)

    def _source(self, rel: str, written: str) -> Source:
        candidate = self.root / rel
        try:
            real = Path(os.path.realpath(candidate))
        except OSError as e:
            raise ContextError(f"{written}: {e.strerror}") from e
        if real != self.root and self.root not in real.parents:
            target = os.readlink(candidate) if candidate.is_symlink() else real
            raise ContextError(f"forbidden path outside the build context: {written} -> {target}")
        try:
            st = os.stat(real)
        except FileNotFoundError:
            raise ContextError(f"file not found in build context: {written}") from None
        except OSError as e:
            raise ContextError(f"{written}: {e.strerror}") from e
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            raise ContextError(f"{written}: not a regular file or directory")
        if not os.access(real, os.R_OK):
            raise ContextError(f"{written}: permission denied")
        name = posixpath.basename(rel) if rel != "." else ""
        return Source(path=real, name=name, rel=rel, is_dir=stat.S_ISDIR(st.st_mode))


def _match(name: str, pattern: str) -> bool:
    """One path segment against one pattern segment, Go filepath.Match style."""
    if "[^" in pattern:
        pattern = pattern.replace("[^", "[!")
    return fnmatch.fnmatchcase(name, pattern)


def is_url(src: str) -> bool:
    return src.startswith(("http://", "https://"))
