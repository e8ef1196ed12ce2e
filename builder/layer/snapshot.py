"""What changed in a directory tree between two moments: the copy snapshotter's diff.

kaniko's way, made to give overlay's answer.  ``take`` walks a tree and keeps each entry's
metadata; ``diff`` compares two walks and says what overlayfs would have put in an upper dir
had the same step run over a union:

- an entry whose type, mode, owner, size, mtime, ctime, inode, link count, device numbers or
  link target changed (for a directory: mode, owner, mtime, ctime, xattrs) is *changed*.  The
  ctime is what makes this overlay's answer and not only kaniko's: any chmod, chown, touch,
  write, new hardlink or xattr change moves it, and each of those is a copy-up in overlay,
  even when it sets the old value again;
- content is hashed only where metadata cannot tell (git's "racily clean" rule): a file whose
  ctime lay within one timestamp tick of the walk that recorded it could be rewritten in the
  same tick without any field moving, so its sha256 is kept and compared;
- a path gone from the tree is *deleted* (a whiteout), unless its parent went too or was
  replaced: overlay writes one whiteout at the top of a removed tree;
- a directory that is not the one that was there (another inode and birth time — ext4 reuses
  an inode number at once, the birth time tells them apart), or that replaced a non-directory,
  was made where something was deleted: overlay marks it *opaque*, and everything under it is
  new.

Parents of changed paths are not listed: overlay copies them up, and copyup.py writes them.
Known limit: a file opened for writing and closed unchanged is a copy-up in overlay and no
change here (nothing of it can be seen afterwards).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import stat
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from builder.errors import LayerError
from builder.layer import whiteout
from builder.oci.digest import CHUNK

#: How far back of a walk a ctime is racy: one coarse clock tick (HZ ≥ 100) with margin; a
#: filesystem that keeps whole seconds only (every ctime on a second) gets a second.
FINE_TICK_NS = 20_000_000
COARSE_TICK_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Entry:
    """One path's metadata.  ``born_ns`` and ``xattrs`` are kept for directories only, and
    ``digest`` (sha256 hex) for regular files recorded racily."""

    fmt: int
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    nlink: int
    rdev: int = 0
    target: str = ""
    born_ns: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()
    digest: str = ""

    @property
    def is_dir(self) -> bool:
        return self.fmt == stat.S_IFDIR


#: A walk: path relative to the root (no leading "/"; the root itself is not in it) → entry.
Snapshot = dict[str, Entry]


@dataclass(frozen=True)
class Changes:
    """What a step changed, as overlay would have recorded it (each tuple sorted)."""

    changed: tuple[str, ...]
    deleted: tuple[str, ...]
    opaque: frozenset[str]

    @property
    def empty(self) -> bool:
        return not self.changed and not self.deleted


def take(root: str, *, skip: Collection[str] = ()) -> Snapshot:
    """Walk ``root`` (never following a symlink) and record every entry but those in ``skip``
    (relative paths; a skipped directory is not entered).  The tree must not change meanwhile."""
    start = time.time_ns()
    snap: Snapshot = {}
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        try:
            with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as it:
                names = [e.name for e in it]
        except OSError as e:
            raise LayerError(f"snapshot {rel_dir or '.'}: list directory: {e.strerror}") from e
        for name in names:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if rel in skip:
                continue
            entry = entry_of(root, rel)
            if entry is None:
                continue
            snap[rel] = entry
            if entry.is_dir:
                pending.append(rel)
    tick = _tick(root)
    for rel, entry in snap.items():
        if entry.fmt == stat.S_IFREG and entry.ctime_ns >= start - tick:
            snap[rel] = _with_digest(entry, content_digest(root, rel))
    return snap


def refresh(root: str, snap: Snapshot, paths: Collection[str]) -> None:
    """Walk ``paths`` of ``snap`` again (after pybuild itself changed them): each entry as it
    is now, with its digest if racy, or gone."""
    start = time.time_ns()
    tick = _tick(root)
    for rel in paths:
        entry = entry_of(root, rel)
        if entry is None:
            snap.pop(rel, None)
        elif entry.fmt == stat.S_IFREG and entry.ctime_ns >= start - tick:
            snap[rel] = _with_digest(entry, content_digest(root, rel))
        else:
            snap[rel] = entry


def entry_of(root: str, rel: str) -> Entry | None:
    """The entry at ``rel`` now, or None if nothing is there."""
    full = os.path.join(root, rel)
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise LayerError(f"snapshot {rel}: lstat: {e.strerror}") from e
    fmt = stat.S_IFMT(st.st_mode)
    target, born = "", 0
    xattrs: tuple[tuple[str, bytes], ...] = ()
    if fmt == stat.S_IFLNK:
        target = os.readlink(full)
    elif fmt == stat.S_IFDIR:
        born = birth_ns(full)
        xattrs = tuple(sorted((k, os.getxattr(full, k, follow_symlinks=False))
                              for k in os.listxattr(full, follow_symlinks=False) if not whiteout.is_overlay_xattr(k)))
    return Entry(fmt, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size if fmt != stat.S_IFDIR else 0,
                 st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_nlink if fmt != stat.S_IFDIR else 0,
                 st.st_rdev if fmt in (stat.S_IFCHR, stat.S_IFBLK) else 0, target, born, xattrs)


def diff(before: Snapshot, after: Snapshot, *, content: Callable[[str], str]) -> Changes:
    """What changed from ``before`` to ``after`` (see the module docstring).  ``content(rel)``
    gives the sha256 hex of a file of ``after`` whose racy ``before`` entry has a digest."""
    changed: list[str] = []
    opaque: set[str] = set()
    fresh: set[str] = set()              # dirs whose whole subtree is new: all below changes
    for rel in sorted(after):
        a = after[rel]
        b = None if _parent(rel) in fresh else before.get(rel)
        if b is None:                    # new, or under a new dir: nothing below it to hide
            changed.append(rel)
            if a.is_dir:
                fresh.add(rel)
            continue
        if a.fmt != b.fmt or (a.is_dir and (a.ino, a.born_ns) != (b.ino, b.born_ns)):
            changed.append(rel)          # deleted and made again: a new inode
            if a.is_dir:
                opaque.add(rel)
                fresh.add(rel)
            continue
        if _differs(a, b) or (b.digest and content(rel) != b.digest):
            changed.append(rel)
    deleted = [rel for rel in sorted(before) if rel not in after and _kept_dir(_parent(rel), after, fresh)]
    return Changes(tuple(changed), tuple(deleted), frozenset(opaque))


def _differs(a: Entry, b: Entry) -> bool:
    if a.is_dir:
        return (a.mode, a.uid, a.gid, a.mtime_ns, a.ctime_ns, a.xattrs) != \
               (b.mode, b.uid, b.gid, b.mtime_ns, b.ctime_ns, b.xattrs)
    return (a.mode, a.uid, a.gid, a.size, a.mtime_ns, a.ctime_ns, a.ino, a.nlink, a.rdev, a.target) != \
           (b.mode, b.uid, b.gid, b.size, b.mtime_ns, b.ctime_ns, b.ino, b.nlink, b.rdev, b.target)


def _kept_dir(parent: str, after: Snapshot, fresh: set[str]) -> bool:
    """True if a deletion under ``parent`` needs its own whiteout: the parent is the root, or
    the same directory is still there (not deleted, not replaced, not turned into a file)."""
    if parent == "":
        return True
    entry = after.get(parent)
    return entry is not None and entry.is_dir and parent not in fresh


def _parent(rel: str) -> str:
    return rel.rpartition("/")[0]


def _with_digest(entry: Entry, digest: str) -> Entry:
    return Entry(entry.fmt, entry.mode, entry.uid, entry.gid, entry.size, entry.mtime_ns, entry.ctime_ns,
                 entry.ino, entry.nlink, entry.rdev, entry.target, entry.born_ns, entry.xattrs, digest)


def content_digest(root: str, rel: str) -> str:
    """sha256 hex of the regular file ``rel`` (not followed if a symlink)."""
    h = hashlib.sha256()
    try:
        fd = os.open(os.path.join(root, rel), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise LayerError(f"snapshot {rel}: open: {e.strerror}") from e
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _tick(root: str) -> int:
    """The timestamp tick to allow for: a second where the root's times are whole seconds."""
    st = os.lstat(root)
    coarse = st.st_ctime_ns % 1_000_000_000 == 0 and st.st_mtime_ns % 1_000_000_000 == 0
    return COARSE_TICK_NS if coarse else FINE_TICK_NS


# -- statx: a directory's birth time ------------------------------------------------------
class _Timestamp(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_int64), ("nsec", ctypes.c_uint32), ("reserved", ctypes.c_int32)]


class _Statx(ctypes.Structure):
    _fields_ = [("mask", ctypes.c_uint32), ("blksize", ctypes.c_uint32), ("attributes", ctypes.c_uint64),
                ("nlink", ctypes.c_uint32), ("uid", ctypes.c_uint32), ("gid", ctypes.c_uint32),
                ("mode", ctypes.c_uint16), ("spare0", ctypes.c_uint16), ("ino", ctypes.c_uint64),
                ("size", ctypes.c_uint64), ("blocks", ctypes.c_uint64), ("attributes_mask", ctypes.c_uint64),
                ("atime", _Timestamp), ("btime", _Timestamp), ("ctime", _Timestamp), ("mtime", _Timestamp),
                ("spare", ctypes.c_uint64 * 20)]


_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_STATX_BTIME = 0x800
_libc = ctypes.CDLL(None, use_errno=True)


def birth_ns(path: str) -> int:
    """statx(2) birth time in ns; 0 where the filesystem keeps none (then only the inode
    number tells a directory made again from the old one)."""
    buf = _Statx()
    if _libc.statx(_AT_FDCWD, os.fsencode(path), _AT_SYMLINK_NOFOLLOW, _STATX_BTIME, ctypes.byref(buf)) != 0:
        return 0
    if not buf.mask & _STATX_BTIME:
        return 0
    return buf.btime.sec * 1_000_000_000 + buf.btime.nsec
