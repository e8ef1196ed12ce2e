"""``RUN --mount=type=cache``: directories kept in the store across builds, shared by id.

Layout (under the store root, named by ``StoreLayout``):

    cache-mounts/<sha256(id, base)[:32]>/id          the id, as written in the Buildfile
    cache-mounts/<…>/base                            what the cache started from ("" for empty)
    cache-mounts/<…>/main/data/                      the directory a RUN sees (or a path in it)
    cache-mounts/<…>/main/lock                       flock(2): who is using it, and how
    cache-mounts/<…>/private-<n>/{data,lock}         more instances, for ``sharing=private``

A cache is named by its id *and its base*, as BuildKit keys them (``cache-dir:<id>:<base ref>``):
an empty dir (no ``from``, no ``mode``/``uid``/``gid``), a dir made with a mode and owner, or
a copy of a ``from`` image.  So ``id=x`` and ``id=x,uid=1000`` are two caches, as in BuildKit.
The caller describes the base as text and gives a ``seed`` that fills a new data dir.

Sharing, as BuildKit documents it: ``shared`` (the default) lets any number of builds use the
directory at once (a shared lock, so prune waits); ``locked`` waits until no other build uses
it and then has it alone (an exclusive lock); ``private`` takes the directory when no other
build uses it and otherwise another instance (an existing idle one, else a new one from the
same base), so concurrent writers never see each other.  The content is never part of a layer
or of a step's cache key.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from builder.errors import StoreError
from builder.store.store import Store


@dataclass(frozen=True)
class CacheMountInfo:
    """One cache mount in the store: its id, size on disk, instances, and whether in use."""

    id: str
    size: int
    instances: int
    in_use: bool
    base: str = ""              # what it started from: "" (empty), a mode and owner, an image


def _dir(store: Store, cache_id: str, base: str) -> Path:
    name = hashlib.sha256(f"{cache_id}\n{base}".encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return store.cache_mounts_root() / name


@contextlib.contextmanager
def acquire(store: Store, cache_id: str, *, sharing: str, base: str = "",
            seed: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """The data dir of cache (``cache_id``, ``base``), held for the block with ``sharing``'s
    lock.  A new one (0755, root's) is filled by ``seed(dir)`` first, when given."""
    top = _dir(store, cache_id, base)
    top.mkdir(parents=True, exist_ok=True)
    (top / "id").write_text(cache_id)
    (top / "base").write_text(base)
    if sharing == "private":
        instance, fd = _private_instance(top)
    else:
        instance = top / "main"
        instance.mkdir(exist_ok=True)
        fd = os.open(instance / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX if sharing == "locked" else fcntl.LOCK_SH)
    try:
        data = instance / "data"
        if not data.exists():
            _create(instance, seed)
        yield data
    finally:
        os.close(fd)


def _private_instance(top: Path) -> tuple[Path, int]:
    """The first instance nobody holds (main, then private-1, -2, …), locked exclusively."""
    n = 0
    while True:
        instance = top / ("main" if n == 0 else f"private-{n}")
        instance.mkdir(exist_ok=True)
        fd = os.open(instance / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return instance, fd
        except BlockingIOError:
            os.close(fd)
            n += 1


def _create(instance: Path, seed: Callable[[Path], None] | None) -> None:
    """Make the data dir (0755, root's), seeded, then rename it into place."""
    tmp = instance / f"data.new-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        os.chown(tmp, 0, 0)
        os.chmod(tmp, 0o755)
        if seed is not None:
            seed(tmp)
        os.rename(tmp, instance / "data")
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"create cache mount {instance}: {e.strerror}") from e


def listing(store: Store) -> list[CacheMountInfo]:
    """Every cache mount in the store, by id."""
    out = []
    root = store.cache_mounts_root()
    for top in sorted(root.iterdir()) if root.is_dir() else ():
        try:
            cache_id = (top / "id").read_text()
            base = (top / "base").read_text() if (top / "base").exists() else ""
        except OSError:
            continue
        instances = [p for p in sorted(top.iterdir()) if p.is_dir()]
        out.append(CacheMountInfo(cache_id, sum(tree_size(p / "data") for p in instances), len(instances),
                                  any(_busy(p) for p in instances), base))
    return sorted(out, key=lambda c: (c.id, c.base))


def prune(store: Store) -> tuple[int, int]:
    """Remove every cache mount no build is using; returns (how many, bytes freed)."""
    removed = freed = 0
    root = store.cache_mounts_root()
    for top in sorted(root.iterdir()) if root.is_dir() else ():
        instances = [p for p in sorted(top.iterdir()) if p.is_dir()]
        held = []
        try:
            for p in instances:
                fd = os.open(p / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                held.append(fd)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue                                     # in use: kept
        finally:
            for fd in held:
                os.close(fd)
        freed += sum(tree_size(p / "data") for p in instances)
        shutil.rmtree(top, ignore_errors=True)
        removed += 1
    return removed, freed


def _busy(instance: Path) -> bool:
    try:
        fd = os.open(instance / "lock", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def tree_size(path: Path) -> int:
    """Bytes of the regular files and symlinks below ``path`` (what df counts)."""
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total
