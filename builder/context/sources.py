"""The build context: resolving ADD/COPY sources inside it, never outside.

Sources are relative to the context root (a leading ``/`` is ignored, as docker does).  A
source that leaves the context — by ``..`` or through a symlink — is refused, as docker's
classic builder refuses ``..`` ("forbidden path outside the build context").  Wildcards follow
Go's filepath.Match: ``*`` and ``?`` never match ``/``; a match is made per path.

Paths the build's ``.dockerignore`` excludes are absent: a source naming one is "not found",
wildcards skip them and directory walks (``walk``) leave them out.  ``--exclude`` patterns
work the same way relative to each source.  A context made with ``in_scope=True`` (another
image's root, for ``COPY --from``) resolves symlinks *inside* the root instead of refusing
them, as docker's FollowSymlinkInScope does.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import stat
from dataclasses import dataclass, replace
from pathlib import Path

from builder.context.dockerignore import PatternMatcher
from builder.errors import ContextError
from builder.layer.root import RootDir, resolve_in_scope

_WILDCARDS = set("*?[")


@dataclass(frozen=True)
class Source:
    """A resolved source: ``path`` is the real file or dir inside the context (symlinks
    followed), ``name`` the base name the copy gets (the name as written or matched)."""

    path: Path
    name: str
    rel: str                      # relative to the context root, for messages and hashes
    is_dir: bool
    ignore: PatternMatcher | None = None    # the .dockerignore, matched against rel + "/" + inner
    exclude: PatternMatcher | None = None   # --exclude, matched against the path inside the source

    def skips(self, inner: str) -> bool:
        """Whether the entry ``inner`` (relative to this directory source) is left out."""
        if self.exclude and self.exclude.excluded(inner):
            return True
        if self.ignore:
            return self.ignore.excluded(inner if self.rel in ("", ".") else f"{self.rel}/{inner}")
        return False

    def may_descend(self) -> bool:
        """Whether a left-out directory may still hold entries an exception re-includes."""
        return any(m is not None and m.has_exceptions for m in (self.ignore, self.exclude))


def walk(source: Source) -> list[tuple[str, str]]:
    """Every entry under directory ``source`` that is not left out, as (path inside the
    source, full path), parents before children, in a stable order.  A left-out directory
    that holds a re-included entry is kept (its children need it)."""
    found: list[tuple[str, str]] = []
    pending: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(source.path):
        rel_dir = os.path.relpath(dirpath, source.path)
        keep_dirs = []
        for name in sorted(dirnames + filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            full = os.path.join(dirpath, name)
            is_dir = name in dirnames
            if not source.skips(rel):
                found.append((rel, full))
                if is_dir:
                    keep_dirs.append(name)
            elif is_dir and source.may_descend():
                pending[rel] = full
                keep_dirs.append(name)
        dirnames[:] = keep_dirs
    if pending:
        needed = {parent for rel, _ in found for parent in _parents(rel)}
        found.extend((rel, full) for rel, full in pending.items() if rel in needed)
    found.sort(key=lambda entry: entry[0].split("/"))
    return found


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


class BuildContext:
    def __init__(self, root: str | Path, *, ignore: PatternMatcher | None = None,
                 in_scope: bool = False) -> None:
        self.ignore = ignore or None
        self.in_scope = in_scope
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
            found = [s for s in (self._source(m, src) for m in matches) if not self._ignored(s)]
            if not found:
                raise ContextError(f"no source files were specified: {src} matches nothing in the "
                                   "context that .dockerignore leaves")
            return found
        source = self._source(cleaned, src)
        if self._ignored(source):
            raise ContextError(f"file not found in build context or excluded by .dockerignore: "
                               f"stat {cleaned}: file does not exist")
        return [source]

    def path(self, src: str) -> Source:
        """The one source ``src`` names, taken literally (no wildcards: a RUN bind mount's
        source).  Raises ContextError for an escape, a missing or .dockerignore'd path."""
        cleaned = self._clean(src or ".")
        source = self._source(cleaned, src or ".")
        if self._ignored(source):
            raise ContextError(f"file not found in build context or excluded by .dockerignore: {cleaned}")
        return source

    def _ignored(self, source: Source) -> bool:
        """Whether .dockerignore leaves ``source`` out (a directory stays if it holds a
        re-included entry)."""
        if not self.ignore or source.rel == "." or not self.ignore.excluded(source.rel):
            return False
        return not (source.is_dir and self.ignore.has_exceptions and walk(source))

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
        if self.in_scope:
            return self._source_in_scope(rel, written)
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
        return Source(path=real, name=name, rel=rel, is_dir=stat.S_ISDIR(st.st_mode),
                      ignore=self.ignore)

    def _source_in_scope(self, rel: str, written: str) -> Source:
        """``rel`` in another image's root: every symlink resolved within that root."""
        with RootDir(self.root) as root:
            resolved = resolve_in_scope(root, rel)
            st = root.lstat(resolved)
        if st is None:
            raise ContextError(f"file not found in the source image: {written}")
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            raise ContextError(f"{written}: not a regular file or directory")
        name = posixpath.basename(rel) if rel != "." else ""
        path = self.root if resolved == "." else self.root / resolved
        return Source(path=path, name=name, rel=rel, is_dir=stat.S_ISDIR(st.st_mode))


def _match(name: str, pattern: str) -> bool:
    """One path segment against one pattern segment, Go filepath.Match style."""
    if "[^" in pattern:
        pattern = pattern.replace("[^", "[!")
    return fnmatch.fnmatchcase(name, pattern)


def is_url(src: str) -> bool:
    return src.startswith(("http://", "https://"))


def apply_exclude(sources: list[Source], exclude: PatternMatcher | None) -> list[Source]:
    """``--exclude``: drop sources whose name it matches; the rest skip matching entries."""
    if not exclude:
        return sources
    return [replace(s, exclude=exclude) for s in sources if not (s.name and exclude.excluded(s.name))]


def parents_pattern(word: str) -> tuple[str, str]:
    """COPY --parents: (the pattern to resolve, the prefix its matches lose).  A ``/./`` in
    the word is the pivot: ``./x/./y/*.txt`` copies ``x/y/a.txt`` as ``y/a.txt``; without one
    the whole path is kept."""
    head, pivot, tail = word.partition("/./")
    if not pivot:
        return word, ""
    base = posixpath.normpath(head.lstrip("/")) if head.strip("/") else ""
    return f"{head}/{tail}", "" if base == "." else base


def parents_subdir(source: Source, base: str) -> str:
    """Where below the destination COPY --parents puts ``source``: its path from ``base``,
    without its own name for a file (a directory keeps it: its contents go there)."""
    rel = source.rel if source.rel != "." else ""
    if base and (rel == base or rel.startswith(base + "/")):
        rel = rel[len(base):].lstrip("/")
    return rel if source.is_dir else posixpath.dirname(rel)
