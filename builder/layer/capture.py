"""Capture an overlay-format directory (an upper dir, or a stored layer dir) as a layer tar.

This is docker's overlay2 "native diff": the directory is walked top-down, names sorted
bytewise within each directory, parents before children, symlinks never followed.  Overlay
whiteouts (char 0:0) become ``.wh.<name>`` files and opaque directories get a ``.wh..wh..opq``
entry right after their own header (see whiteout.py).
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from builder.errors import LayerError
from builder.layer import whiteout
from builder.layer.tar_writer import LayerTarWriter, ProgressFn, TarMeta, new_tarinfo
from builder.oci.digest import BytesSink

#: The only xattr recorded in a layer (docker-compatible minimum, oci-layers-registry.md §1.7).
CAPABILITY_XATTR = "security.capability"
_PAX_XATTR = "SCHILY.xattr."


@dataclass(frozen=True)
class CapturedEntry:
    """One entry of a captured layer, in the conformance listing's terms.

    ``kind`` is one of f d l h c b p w o.  ``path`` is relative, without ``./`` or trailing
    ``/``; for ``w`` it is the deleted path, for ``o`` the opaque directory.  ``linkname`` is
    the symlink target (``l``) or the first path of the hardlink set (``h``), else "".
    ``size`` is the data size of ``f`` entries and the devmajor/devminor are not kept.
    """

    path: str
    kind: str
    mode: int
    uid: int
    gid: int
    size: int
    linkname: str = ""


@dataclass(frozen=True)
class Capture:
    """What capture() wrote: the layer's diffID, its uncompressed size and its entries in order."""

    diff_id: str
    size: int
    entries: tuple[CapturedEntry, ...]


def capture(layer_dir: Path, out: BytesSink, *, on_progress: ProgressFn | None = None,
            mtime_clamp: int | None = None) -> Capture:
    """Write ``layer_dir`` as an uncompressed layer tar to ``out`` (not closed) and return it.

    ``layer_dir`` must not change during the capture (the overlay is unmounted, or the RUN
    has exited).  ``on_progress`` gets the total tar bytes written so far.  ``mtime_clamp``
    (SOURCE_DATE_EPOCH) caps every entry's mtime, as BuildKit's rewrite-timestamp does.
    Raises LayerError for a user file named ``.wh.*`` and for any OS error.
    """
    return _Capturer(Path(layer_dir), out, on_progress, mtime_clamp).run()


class _Capturer:
    def __init__(self, root: Path, out: BytesSink, on_progress: ProgressFn | None,
                 mtime_clamp: int | None = None) -> None:
        self._clamp = mtime_clamp
        self._root = os.fsencode(root)
        self._tar = LayerTarWriter(out, on_progress=on_progress)
        self._entries: list[CapturedEntry] = []
        self._links: dict[tuple[int, int], str] = {}

    def run(self) -> Capture:
        try:
            st = os.lstat(self._root)
        except OSError as e:
            raise LayerError(f"capture {os.fsdecode(self._root)}: {e.strerror}") from e
        if not stat.S_ISDIR(st.st_mode):
            raise LayerError(f"capture {os.fsdecode(self._root)}: not a directory")
        self._walk(b"")
        diff_id, size = self._tar.close()
        return Capture(diff_id=diff_id, size=size, entries=tuple(self._entries))

    def _walk(self, rel_dir: bytes) -> None:
        """Depth-first, pre-order, children sorted bytewise (iterative: no recursion limit)."""
        stack = [(rel_dir, name) for name in reversed(self._list(rel_dir))]
        while stack:
            parent, name = stack.pop()
            rel = os.path.join(parent, name) if parent else name
            if self._entry(rel, name):
                stack.extend((rel, child) for child in reversed(self._list(rel)))

    def _list(self, rel_dir: bytes) -> list[bytes]:
        full_dir = os.path.join(self._root, rel_dir) if rel_dir else self._root
        try:
            return sorted(os.listdir(full_dir))
        except OSError as e:
            raise LayerError(f"capture {_show(rel_dir or b'.')}: list directory: "
                             f"{e.strerror}") from e

    def _entry(self, rel: bytes, name: bytes) -> bool:
        """Write the entry for ``rel``; True if it is a directory to descend into."""
        full = os.path.join(self._root, rel)
        path = os.fsdecode(rel)
        try:
            st = os.lstat(full)
        except OSError as e:
            raise LayerError(f"capture {path}: lstat: {e.strerror}") from e
        if whiteout.is_whiteout_name(os.fsdecode(name)):
            raise LayerError(f"capture {path}: a file name starting with "
                             f"{whiteout.WHITEOUT_PREFIX!r} is reserved for whiteouts")
        mode = stat.S_IMODE(st.st_mode)
        mtime = int(st.st_mtime) if self._clamp is None else min(int(st.st_mtime), self._clamp)
        common = TarMeta(mode=mode, uid=st.st_uid, gid=st.st_gid, mtime=mtime)
        fmt = stat.S_IFMT(st.st_mode)
        if whiteout.is_overlay_whiteout(st):
            parent, base = os.path.split(path)
            wh = os.path.join(parent, whiteout.whiteout_name(base))
            common["mode"] = whiteout.WHITEOUT_TAR_MODE
            self._add(new_tarinfo(wh, typeflag=tarfile.REGTYPE, **common),
                      CapturedEntry(path, "w", whiteout.WHITEOUT_TAR_MODE, st.st_uid,
                                    st.st_gid, 0))
            return False
        if fmt == stat.S_IFSOCK:
            return False
        if fmt != stat.S_IFDIR and st.st_nlink > 1:
            first = self._links.setdefault((st.st_dev, st.st_ino), path)
            if first != path:
                info = new_tarinfo(path, typeflag=tarfile.LNKTYPE, linkname=first, **common)
                self._add(info, CapturedEntry(path, "h", mode, st.st_uid, st.st_gid, 0, first))
                return False
        if fmt == stat.S_IFDIR:
            info = new_tarinfo(path, typeflag=tarfile.DIRTYPE, **common)
            self._xattrs(info, full, path)
            self._add(info, CapturedEntry(path, "d", mode, st.st_uid, st.st_gid, 0))
            if whiteout.is_opaque(full):
                marker = new_tarinfo(os.path.join(path, whiteout.OPAQUE_MARKER),
                                     typeflag=tarfile.REGTYPE, mode=mode, uid=st.st_uid,
                                     gid=st.st_gid, mtime=0)
                self._add(marker, CapturedEntry(path, "o", mode, st.st_uid, st.st_gid, 0))
            return True
        if fmt == stat.S_IFREG:
            info = new_tarinfo(path, typeflag=tarfile.REGTYPE, size=st.st_size, **common)
            self._xattrs(info, full, path)
            self._add_file(info, full, CapturedEntry(path, "f", mode, st.st_uid, st.st_gid,
                                                     st.st_size))
            return False
        if fmt == stat.S_IFLNK:
            try:
                target = os.fsdecode(os.readlink(full))
            except OSError as e:
                raise LayerError(f"capture {path}: readlink: {e.strerror}") from e
            info = new_tarinfo(path, typeflag=tarfile.SYMTYPE, linkname=target, **common)
            self._add(info, CapturedEntry(path, "l", mode, st.st_uid, st.st_gid, 0, target))
            return False
        kinds = {stat.S_IFCHR: ("c", tarfile.CHRTYPE), stat.S_IFBLK: ("b", tarfile.BLKTYPE),
                 stat.S_IFIFO: ("p", tarfile.FIFOTYPE)}
        if fmt not in kinds:
            raise LayerError(f"capture {path}: unsupported file type {oct(fmt)}")
        kind, typeflag = kinds[fmt]
        major, minor = (0, 0) if kind == "p" else (os.major(st.st_rdev), os.minor(st.st_rdev))
        info = new_tarinfo(path, typeflag=typeflag, devmajor=major, devminor=minor, **common)
        self._add(info, CapturedEntry(path, kind, mode, st.st_uid, st.st_gid, 0))
        return False

    def _xattrs(self, info: tarfile.TarInfo, full: bytes, path: str) -> None:
        """Record ``security.capability`` (VFS_CAP v3 rewritten to v2, as docker does)."""
        try:
            value = os.getxattr(full, CAPABILITY_XATTR, follow_symlinks=False)
        except OSError as e:
            if e.errno in (errno.ENODATA, errno.EOPNOTSUPP):
                return
            raise LayerError(f"capture {path}: getxattr {CAPABILITY_XATTR}: "
                             f"{e.strerror}") from e
        value = _capability_v2(value)
        if value:
            info.pax_headers = {**info.pax_headers,
                                _PAX_XATTR + CAPABILITY_XATTR: value.decode("utf-8", "surrogateescape")}

    def _add_file(self, info: tarfile.TarInfo, full: bytes, entry: CapturedEntry) -> None:
        try:
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as e:
            raise LayerError(f"capture {entry.path}: open: {e.strerror}") from e
        with os.fdopen(fd, "rb") as f:
            try:
                self._add(info, entry, f)
            except OSError as e:
                raise LayerError(f"capture {entry.path}: copy data: {e.strerror}") from e

    def _add(self, info: tarfile.TarInfo, entry: CapturedEntry,
             data: BinaryIO | None = None) -> None:
        try:
            self._tar.add(info, data)
        except OSError as e:
            if data is not None:
                raise
            raise LayerError(f"capture {entry.path}: write: {e.strerror}") from e
        self._entries.append(entry)


def _capability_v2(value: bytes) -> bytes:
    """VFS_CAP_REVISION_3 (24 bytes, with rootid) → revision 2 (20 bytes); others unchanged."""
    if len(value) >= 20 and value[3] == 0x03:
        return bytes([value[0], value[1], value[2], 0x02]) + value[4:20]
    return value


def _show(rel: bytes) -> str:
    return os.fsdecode(rel)
