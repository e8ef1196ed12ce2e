"""The ``file:<hex>`` / ``dir:<hex>`` / ``multi:<hex>`` checksum ADD and COPY record in
created_by: pybuild's own scheme, a function of the sources' content, modes and link targets."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

from builder.context.copy import Item
from builder.context.sources import walk
from builder.oci.digest import sha256_file


def checksum(items: list[Item], file_sha: Callable[[str | Path], str] | None = None) -> str:
    """The ``file:<hex>`` / ``dir:<hex>`` / ``multi:<hex>`` part of ADD/COPY's created_by.

    pybuild's own scheme: a file is the sha256 of its content (so ``sha256sum`` shows the
    same hex); a directory hashes, sorted by path, each entry's path, type, mode, link target
    and content hash; several sources hash their own checksums in order.  ``file_sha`` may
    serve content hashes the store already knows (cache.FileHashes)."""
    parts = [_item_sum(i, file_sha or _file_sha) for i in items]
    if len(parts) == 1:
        return parts[0]
    return "multi:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _item_sum(item: Item, _file_sha: Callable[[str | Path], str]) -> str:
    if not item.source.is_dir:
        return "file:" + _file_sha(item.source.path)
    h = hashlib.sha256()
    for rel, full in walk(item.source):
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            body = "l " + os.readlink(full)
        elif stat.S_ISREG(st.st_mode):
            body = "f " + _file_sha(full)
        else:
            body = "d" if stat.S_ISDIR(st.st_mode) else "o"
        h.update(f"{rel}\0{stat.S_IMODE(st.st_mode):o}\0{body}\n".encode("utf-8", "surrogateescape"))
    return "dir:" + h.hexdigest()


def _file_sha(path: str | Path) -> str:
    return sha256_file(path)[0].removeprefix("sha256:")
