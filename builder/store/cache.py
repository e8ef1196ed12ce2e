"""The build cache: step keys → the image config a step produced.

Key of a step = sha256(the config digest of the image before the step, "\\n", the step's
canonical definition).  The definition is the instruction with its arguments expanded (the
``created_by`` pybuild records, plus the exact argv or config change), and for ADD/COPY a
checksum of every source's path, type, mode, owner, size, mtime (kept in the layer), link
target and content.  Chaining on the *result* of the previous step (as docker's classic
builder chains on the parent image ID) means that a step which runs again — because its
definition changed, or its entry was pruned — gives a new config digest, so every step after
it runs again too, and nothing before it does.

An entry is ``cache/<key hex>`` = {"config": <digest of the resulting config blob>,
"cmd_set": …}.  ``lookup`` serves it only if that config and every layer it names are whole in
the store (blob present, its size/mtime/inode fingerprint unchanged since the store recorded
it — or, if that changed, its sha256 still right); otherwise the entry is dropped.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from builder.errors import StoreError
from builder.oci.config import parse_config
from builder.oci.digest import chain_ids, sha256_file, sha256_file_hex
from builder.store.store import Store


@dataclass(frozen=True)
class CacheHit:
    config: bytes                  # the exact config bytes after the step
    cmd_set: bool


def step_key(parent_config_digest: str, definition: str) -> str:
    return "sha256:" + hashlib.sha256(f"{parent_config_digest}\n{definition}".encode(
        "utf-8", "surrogateescape")).hexdigest()


class BuildCache:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._whole: set[str] = set()        # layers checked in this build: once is enough

    def lookup(self, key: str) -> CacheHit | None:
        path = self.store.cache_entry_path(key)
        try:
            entry = json.loads(path.read_text())
            config = self.store.read_blob(entry["config"])
        except (FileNotFoundError, ValueError, KeyError, StoreError):
            path.unlink(missing_ok=True)
            return None
        for chain in chain_ids(parse_config(config).diff_ids):
            if not self.layer_is_whole(chain):
                path.unlink(missing_ok=True)
                return None
        return CacheHit(config=config, cmd_set=bool(entry.get("cmd_set")))

    def record(self, key: str, config: bytes, *, cmd_set: bool) -> None:
        """Remember that the step ``key`` produced ``config`` (stored as a blob)."""
        digest = self.store.put_blob_bytes(config)
        self.store.atomic_write(self.store.cache_entry_path(key),
                                json.dumps({"config": digest, "cmd_set": cmd_set}).encode(), durable=False)

    def layer_is_whole(self, chain: str) -> bool:
        """The layer's dir and blob are there and the blob still hashes to its diffID."""
        if chain in self._whole:
            return True
        if self._check_layer(chain):
            self._whole.add(chain)
            return True
        return False

    def _check_layer(self, chain: str) -> bool:
        if not self.store.has_layer(chain):
            return False
        info = self.store.layer_info(chain)
        blob = self.store.blob_path(info.diff_id)
        try:
            st = os.stat(blob)
        except FileNotFoundError:
            return False
        if st.st_size != info.size:
            return False
        if self.store.blob_fingerprint(info.diff_id) == _fingerprint(st):
            return True
        if sha256_file(blob)[0] != info.diff_id:          # changed on disk: check it fully
            return False
        self.store.remember_fingerprint(info.diff_id, _fingerprint(st))
        return True

    def entries(self) -> list[Path]:
        """Every entry of the cache, sorted (``Store.cache_entries``)."""
        return self.store.cache_entries()


def _fingerprint(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino]


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


def sources_checksum(paths: list[tuple[str, Path]], hashes: FileHashes, *,
                     walk: Callable[[int], Iterable[tuple[str, str]]] | None = None,
                     flags: str = "") -> str:
    """The ADD/COPY part of a cache key: for each (name, path) — a file, or a directory
    walked in order — path, type, mode, size, mtime (whole seconds, as in the layer), link
    target and content.  ``walk(i)`` lists directory ``paths[i]``'s entries as (path inside,
    full path) — the context's walk, which leaves .dockerignore'd and --exclude'd entries
    out; by default every entry.  ``flags`` (--chown, --chmod, --exclude … as text) is part
    of the key too."""
    h = hashlib.sha256()
    h.update(f"flags\0{flags}\n".encode("utf-8", "surrogateescape"))

    def add(rel: str, full: str) -> None:
        st = os.lstat(full)
        kind = stat.S_IFMT(st.st_mode)
        body = ""
        if stat.S_ISREG(st.st_mode):
            body = hashes.sha256(full, os.stat(full))
        elif stat.S_ISLNK(st.st_mode):
            body = os.readlink(full)
        # no uid/gid: ADD/COPY make context files 0:0, so ownership never reaches the layer
        h.update(f"{rel}\0{kind:o}\0{stat.S_IMODE(st.st_mode):o}\0"
                 f"{st.st_size}\0{st.st_mtime_ns // 10**9}\0{body}\n".encode("utf-8", "surrogateescape"))

    for n, (name, path) in enumerate(paths):
        if path.is_dir():
            for inner, full in (walk(n) if walk is not None else _walk_all(path)):
                add(f"{name}/{inner}", full)
            add(f"{name}/.", str(path))
        else:
            h.update(f"{name}\0".encode("utf-8", "surrogateescape"))
            st = os.stat(path)
            h.update(f"{stat.S_IMODE(st.st_mode):o}\0{st.st_size}\0{st.st_mtime_ns // 10**9}\0"
                     f"{hashes.sha256(path, st)}\n".encode())
    return h.hexdigest()


def _walk_all(path: Path) -> Iterator[tuple[str, str]]:
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for child in sorted(dirnames + filenames):
            full = os.path.join(dirpath, child)
            yield os.path.relpath(full, path), full
