"""The sha256 of context files, remembered in the store by (device, inode, size, mtime, ctime),
so a warm build does not read its context again: never re-hash what the store knows."""

from __future__ import annotations

import json
import os
from pathlib import Path

from builder.oci.digest import sha256_file_hex
from builder.store.store import Store


class FileHashes:
    """sha256 of files, remembered by (device, inode, size, mtime, ctime) in the store, so a
    warm build does not read its context again ("never re-hash what the store knows")."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._path = store.file_hashes_path()
        self._root = store.root
        try:
            self._known: dict[str, list] = json.loads(self._path.read_text())
        except (FileNotFoundError, ValueError):
            self._known = {}
        self._dirty = False

    def sha256(self, path: str | Path, st: os.stat_result | None = None) -> str:
        """Hex sha256 of a file's content; remembered unless the file is the store's own."""
        st = st or os.stat(path)
        stamp = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        key = os.fsdecode(os.path.abspath(path))
        known = self._known.get(key)
        if known and known[:5] == stamp:
            return known[5]
        digest = sha256_file_hex(path)
        if not key.startswith(os.fsdecode(self._root) + "/"):     # not downloads in scratch dirs
            self._known[key] = stamp + [digest]
            self._dirty = True
        return digest

    def save(self) -> None:
        if self._dirty:
            self._path.parent.mkdir(exist_ok=True)
            self._store.atomic_write(self._path, json.dumps(self._known).encode(), durable=False)
            self._dirty = False
