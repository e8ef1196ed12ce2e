"""The sha256 of context files, remembered in the store per build context, so a build does not
read a file whose size, mtime, inode and ctime did not change: only changed files are hashed.

One index per context directory (``cache/.contexts/<sha256(realpath)[:32]>.json``, named by the
store's layout), keyed by the path inside the context.  An entry is trusted only when its
stat stamp (device, inode, size, mtime, ctime) is the file's now *and* its mtime was at least
``RACY`` seconds older than the moment it was hashed: a file written in the same timestamp
tick as it was hashed could change again without its stamp changing (git's "racily clean"
entries), so such an entry is hashed again next time rather than believed.  Files outside the
context (downloads, heredocs in scratch dirs) are hashed and not remembered.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from builder.oci.digest import sha256_file_hex
from builder.store.store import Store

RACY = 1.0             # seconds: an mtime this close to the hashing moment is not trusted later


class FileHashes:
    """Content hashes of the files below ``context`` (a real path), remembered in ``store``."""

    def __init__(self, store: Store, context: Path) -> None:
        self._store = store
        self._root = os.fsdecode(os.path.realpath(context)) + "/"
        self._path = store.context_index_path(self._root)
        try:
            self._known: dict[str, list[int | str]] = json.loads(self._path.read_text())
        except (FileNotFoundError, ValueError):
            self._known = {}
        self._dirty = False

    def sha256(self, path: str | Path, st: os.stat_result | None = None) -> str:
        """Hex sha256 of the content of ``path`` (absolute, or relative to the cwd).  ``st`` is
        its stat (``os.stat``, symlinks followed), when the caller has it."""
        st = st or os.stat(path)
        full = os.fsdecode(path)
        if not full.startswith("/"):
            full = os.path.abspath(full)
        key = full[len(self._root):] if full.startswith(self._root) else None
        stamp = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        known = self._known.get(key) if key is not None else None
        if known is not None and known[:5] == stamp:
            return str(known[5])
        hashed_at = time.time_ns()
        digest = sha256_file_hex(full)
        if key is not None:
            if st.st_mtime_ns < hashed_at - RACY * 1e9 and st.st_ctime_ns < hashed_at - RACY * 1e9:
                self._known[key] = [*stamp, digest]
            else:                                        # racily clean: hash it again next time
                self._known.pop(key, None)
            self._dirty = True
        return digest

    def save(self) -> None:
        """Write the index if anything was hashed (atomically; a rebuildable cache: no fsync)."""
        if self._dirty:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._store.atomic_write(self._path, json.dumps(self._known, separators=(",", ":")).encode(),
                                     durable=False)
            self._dirty = False
