"""The ``file:<hex>`` / ``dir:<hex>`` / ``multi:<hex>`` checksum ADD and COPY record in
created_by: pybuild's own scheme, a function of the sources' content, modes and link targets."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.context.item import Item
from builder.context.sources import Source, walk
from builder.oci.digest import sha256_file

#: ``sha256(path, stat)`` → hex digest of a file's content (the store's FileHashes remembers them)
FileSha = Callable[[str | Path, os.stat_result], str]


def checksum(items: list[Item], file_sha: Callable[[str | Path], str] | None = None) -> str:
    """The ``file:<hex>`` / ``dir:<hex>`` / ``multi:<hex>`` part of ADD/COPY's created_by.

    pybuild's own scheme: a file is the sha256 of its content (so ``sha256sum`` shows the
    same hex); a directory hashes, sorted by path, each entry's path, type, mode, link target
    and content hash; several sources hash their own checksums in order.  ``file_sha`` may
    serve content hashes the store already knows (store/filehashes.py)."""
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


@dataclass(frozen=True)
class Scanned:
    """One entry of a source, read once: ``rel`` inside it ("" for a file source, "." for a
    directory source itself), its stat (lstat, but stat for a file source), and its content
    hash (regular files) or link target (symlinks), "" otherwise."""

    rel: str
    st: os.stat_result
    body: str


def scan(source: Source, sha256: FileSha) -> list[Scanned]:
    """Every entry of ``source`` (walked as the copy walks it), read once for both checksums."""
    if not source.is_dir:
        st = os.stat(source.path)
        return [Scanned("", st, sha256(source.path, st))]
    out = []
    for rel, full in walk(source):
        st = os.lstat(full)
        body = sha256(full, st) if stat.S_ISREG(st.st_mode) else os.readlink(full) if stat.S_ISLNK(st.st_mode) else ""
        out.append(Scanned(rel, st, body))
    out.append(Scanned(".", os.lstat(source.path), ""))
    return out


def item_checksums(items: list[Item], sha256: FileSha,
                   entries: dict[str, str] | None = None) -> tuple[str, str]:
    """(created_by checksum, cache-key checksum) of ADD/COPY ``items`` from ONE walk of each
    source: what ``checksum`` and ``sources_checksum`` give, without reading anything twice."""
    parts = []
    key = hashlib.sha256(b"flags\0\n")
    for item in items:
        scanned = scan(item.source, sha256)
        name = item.source.rel
        if not item.source.is_dir:
            only = scanned[0]
            parts.append("file:" + only.body)
            line = (f"{name}\0".encode("utf-8", "surrogateescape") +
                    f"{stat.S_IMODE(only.st.st_mode):o}\0{only.st.st_size}\0{only.st.st_mtime_ns // 10**9}\0"
                    f"{only.body}\n".encode())
            _add(key, entries, name, line)
            continue
        created = hashlib.sha256()
        for entry in scanned:
            st, mode = entry.st, stat.S_IMODE(entry.st.st_mode)
            if entry.rel != ".":
                created.update(f"{entry.rel}\0{mode:o}\0{_shown(st, entry.body)}\n".encode("utf-8", "surrogateescape"))
            rel = f"{name}/{entry.rel}"
            _add(key, entries, rel, f"{rel}\0{stat.S_IFMT(st.st_mode):o}\0{mode:o}\0{st.st_size}\0"
                 f"{st.st_mtime_ns // 10**9}\0{entry.body}\n".encode("utf-8", "surrogateescape"))
        parts.append("dir:" + created.hexdigest())
    summed = parts[0] if len(parts) == 1 else "multi:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return summed, key.hexdigest()


def _shown(st: os.stat_result, body: str) -> str:
    """An entry as the created_by checksum of a directory names it."""
    if stat.S_ISLNK(st.st_mode):
        return "l " + body
    if stat.S_ISREG(st.st_mode):
        return "f " + body
    return "d" if stat.S_ISDIR(st.st_mode) else "o"


def _add(key: Any, entries: dict[str, str] | None, name: str, line: bytes) -> None:
    key.update(line)
    if entries is not None:
        entries[name] = hashlib.sha256(line).hexdigest()[:16]


def _file_sha(path: str | Path) -> str:
    return sha256_file(path)[0].removeprefix("sha256:")


def sources_checksum(paths: list[tuple[str, Path]], sha256: FileSha, *,
                     walk: Callable[[int], Iterable[tuple[str, str]]] | None = None,
                     flags: str = "", entries: dict[str, str] | None = None) -> str:
    """The ADD/COPY part of a cache key: for each (name, path) — a file, or a directory
    walked in order — path, type, mode, size, mtime (whole seconds, as in the layer), link
    target and content.  ``walk(i)`` lists directory ``paths[i]``'s entries as (path inside,
    full path) — the context's walk, which leaves .dockerignore'd and --exclude'd entries
    out; by default every entry.  ``flags`` (--chown, --chmod, --exclude … as text) is part
    of the key too.  ``entries``, when given, gets each entry's path → a short digest of what
    the key took from it (what --explain compares to say which files changed)."""
    h = hashlib.sha256()
    h.update(f"flags\0{flags}\n".encode("utf-8", "surrogateescape"))

    def add(name: str, data: bytes) -> None:
        h.update(data)
        if entries is not None:
            entries[name] = hashlib.sha256(data).hexdigest()[:16]

    def add_entry(rel: str, full: str) -> None:
        st = os.lstat(full)
        kind = stat.S_IFMT(st.st_mode)
        body = ""
        if stat.S_ISREG(st.st_mode):
            body = sha256(full, os.stat(full))
        elif stat.S_ISLNK(st.st_mode):
            body = os.readlink(full)
        # no uid/gid: ADD/COPY make context files 0:0, so ownership never reaches the layer
        add(rel, f"{rel}\0{kind:o}\0{stat.S_IMODE(st.st_mode):o}\0"
                 f"{st.st_size}\0{st.st_mtime_ns // 10**9}\0{body}\n".encode("utf-8", "surrogateescape"))

    for n, (name, path) in enumerate(paths):
        if path.is_dir():
            for inner, full in (walk(n) if walk is not None else _walk_all(path)):
                add_entry(f"{name}/{inner}", full)
            add_entry(f"{name}/.", str(path))
        else:
            st = os.stat(path)
            add(name, f"{name}\0".encode("utf-8", "surrogateescape") +
                f"{stat.S_IMODE(st.st_mode):o}\0{st.st_size}\0{st.st_mtime_ns // 10**9}\0"
                f"{sha256(path, st)}\n".encode())
    return h.hexdigest()


def _walk_all(path: Path) -> Iterator[tuple[str, str]]:
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for child in sorted(dirnames + filenames):
            full = os.path.join(dirpath, child)
            yield os.path.relpath(full, path), full
