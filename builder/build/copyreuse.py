"""Unchanged files of an ADD/COPY are not copied again: they are hardlinked from the layer the
same step made the last time it ran.

The build that edits one file of a 5,000-file context reruns its COPY step (the step's cache
key changed) and would write all 5,000 files into the new layer once more.  Instead, after
each COPY of a context directory the store remembers which file of the new layer came from
which content (``cache/.copylayer-<key>``, keyed by the parent image and the step as written:
the same step on the same base), and the next run of that step links each file whose content
sha256, mode, owner, mtime and size are the same as remembered, and still are those of the
file in the old layer, instead of copying it.  Layer directories are never written to after
they are committed, so sharing an inode between two of them changes nothing either sees; the
new layer's tar is captured from its upper dir as always, so its bytes and diffID are what a
copy would have given.  Anything that does not match exactly (a memo of a removed layer, a
source changed since it was hashed) is copied as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import stat

from builder.context.copy import Deferred
from builder.errors import LayerError
from builder.layer.root import RootDir
from builder.store.filehashes import FileHashes
from builder.store.store import Store

#: memo kind: cache/.copylayer-<key>
KIND = "copylayer"


def memo_key(parent_image: str, description: str) -> str:
    """The step as written on its parent image (not its sources: they are what changes)."""
    return hashlib.sha256(f"{parent_image}\n{description}".encode("utf-8", "surrogateescape")).hexdigest()


class LayerReuse:
    """One COPY step's run: offers files of the step's previous layer (``offer``, the
    ``reuse`` of context/copy.py's ``finish_copy``), and remembers what this run wrote
    (``remember``, once its layer is committed)."""

    def __init__(self, store: Store, hashes: FileHashes, key: str) -> None:
        self.store = store
        self.hashes = hashes
        self.key = key
        self.written: dict[str, list[str | int]] = {}
        self._chain: str | None = None
        self._previous: dict[str, list[str | int]] = {}
        self._layer: RootDir | None = None
        self._dirs: dict[str, int] = {}          # directory of the previous layer → its fd
        try:
            memo = json.loads(store.memo_path(KIND, key).read_text())
            chain, files = memo["chain"], memo["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return
        if isinstance(chain, str) and isinstance(files, dict) and store.has_layer(chain):
            self._chain, self._previous = chain, files

    def offer(self, f: Deferred) -> tuple[int, str] | None:
        """(dir fd, name) of the previous layer's file at ``f.target`` if it is exactly what
        ``f`` asks for; None otherwise.  Records what ``f`` is, for the next run."""
        try:
            st = os.stat(f.source)
        except OSError:
            return None
        if (st.st_size, st.st_mtime_ns) != (f.size, f.mtime_ns):
            return None                   # changed since the copy looked at it: copied, not remembered
        entry: list[str | int] = [self.hashes.sha256(f.source, st), f.mode, f.uid, f.gid, f.mtime_ns, f.size]
        self.written[f.target] = entry
        if self._chain is None or self._previous.get(f.target) != entry:
            return None
        parent, name = posixpath.split(f.target)
        try:
            if self._layer is None:
                self._layer = RootDir(self.store.layer_dir(self._chain))
            dirfd = self._dirs.get(parent)
            if dirfd is None:
                dirfd = self._dirs[parent] = self._layer.open_dir(parent or ".")
        except LayerError:                # the layer, or that directory of it, is gone
            return None
        try:
            old = os.lstat(name, dir_fd=dirfd)
        except OSError:
            return None
        if not stat.S_ISREG(old.st_mode) or [stat.S_IMODE(old.st_mode), old.st_uid, old.st_gid,
                                             old.st_mtime_ns, old.st_size] != entry[1:]:
            return None
        return dirfd, name

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()
        if self._layer is not None:
            self._layer.close()
            self._layer = None

    def remember(self, chain: str | None) -> None:
        """The step made layer ``chain`` (None: no layer): remember its files for the next run."""
        path = self.store.memo_path(KIND, self.key)
        if chain is None or not self.written:
            path.unlink(missing_ok=True)
            return
        data = json.dumps({"chain": chain, "files": self.written}, separators=(",", ":"))
        self.store.atomic_write(path, data.encode("utf-8", "surrogateescape"), durable=False)
