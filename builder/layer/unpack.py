"""Apply tar archives to directories, safely: the tar side of capture.py.

- ``unpack_layer``: one layer tar → a fresh directory in overlay format (whiteouts become char
  0:0 devices, opaque markers the ``trusted.overlay.opaque`` xattr), ready to be a lowerdir.
- ``extract_archive``: ``tar -x`` of a local archive into a rootfs directory (ADD).

Neither uses ``tarfile.extract``: members are read in stream mode and every entry is created
through RootDir (openat2 RESOLVE_IN_ROOT for the parent, no-follow ``*at`` calls for the name),
so nothing is ever written outside the target (oci-layers-registry.md §1.4, §1.9, §6).
"""

from __future__ import annotations

import lzma
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from builder.errors import LayerError
from builder.layer import whiteout
from builder.layer.capture import CapturedEntry
from builder.layer.compression import open_decompressed
from builder.layer.root import RootDir, clean, remove_all
from builder.oci.digest import CHUNK, HashingReader


@dataclass(frozen=True)
class Unpacked:
    """What unpack_layer() read: diffID and size of the whole tar stream, entries in tar order.

    Entries use capture.py's CapturedEntry (``w``/``o`` for whiteouts and opaque markers).
    """

    diff_id: str
    size: int
    entries: tuple[CapturedEntry, ...]


def _open_tar(stream: BinaryIO) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=stream, mode="r|", encoding="utf-8",
                            errors="surrogateescape")
    except tarfile.TarError as e:
        raise LayerError(f"read tar: {e}") from e


def _members(tar: tarfile.TarFile):
    try:
        for member in tar:
            _refuse_unsafe(member)
            yield member
            tar.members.clear()  # type: ignore[attr-defined]  # stream mode; not in typeshed  # stream mode: don't keep every header in memory
    except tarfile.TarError as e:
        raise LayerError(f"read tar: {e}") from e


def _refuse_unsafe(member: tarfile.TarInfo) -> None:
    """Entries no applier may take: sparse members (a 1 KiB header can claim terabytes of
    holes that would be written out in full — layers SHOULD NOT be sparse, OCI layer.md) and
    names or link targets with a NUL byte (no file can carry one)."""
    if member.issparse():
        raise LayerError(f"refusing sparse tar member {member.name!r} "
                         f"(claims {member.size} bytes; layers must not be sparse)")
    if "\0" in member.name or "\0" in member.linkname:
        raise LayerError(f"refusing tar member with a NUL byte in its name: {member.name!r}")


def unpack_layer(stream: BinaryIO, dest: Path) -> Unpacked:
    """Apply one uncompressed layer tar to ``dest`` (missing or empty) in overlay format.

    The whole stream is hashed (including the end padding) so the caller can compare
    ``diff_id`` with the expected diffID; ``stream`` is read to its end and not closed.
    Raises LayerError for unsafe names (absolute, ``..``, ``.wh.``/``.wh..``), a hardlink to a
    path not unpacked earlier in this layer, a change of the root's type, or any I/O error.
    Duplicate paths: the later entry wins.
    """
    dest = Path(dest)
    try:
        dest.mkdir(mode=0o755, exist_ok=True)
        if any(os.scandir(dest)):
            raise LayerError(f"unpack layer into {dest}: directory is not empty")
        os.chmod(dest, 0o755)       # a layer dir is 0755, as docker makes it; a "./" entry may say otherwise
    except OSError as e:
        raise LayerError(f"unpack layer into {dest}: {e.strerror}") from e
    reader = HashingReader(stream)
    entries: list[CapturedEntry] = []
    with RootDir(dest) as root:
        applier = _Applier(root, layer_mode=True)
        tar = _open_tar(reader)  # type: ignore[arg-type]
        for member in _members(tar):
            if member.name.startswith("/"):
                raise LayerError(f"unpack layer: absolute name {member.name!r}")
            rel = clean(member.name)
            base = rel.rsplit("/", 1)[-1]
            if whiteout.is_whiteout_name(base):
                entry = _whiteout(applier, member, rel, base)
            else:
                entry = applier.apply(member, rel, tar)
            if entry is not None:
                entries.append(entry)
        applier.finish()
        try:
            reader.drain()
        except OSError as e:
            raise LayerError(f"unpack layer: read: {e.strerror}") from e
    return Unpacked(diff_id=reader.digest, size=reader.size, entries=tuple(entries))


def _whiteout(applier: _Applier, member: tarfile.TarInfo, rel: str,
              base: str) -> CapturedEntry | None:
    """Turn a ``.wh.`` entry into its overlay form; None for skipped AUFS metadata."""
    parent = rel.rsplit("/", 1)[0] if "/" in rel else "."
    if not member.isreg():
        raise LayerError(f"unpack layer: whiteout {rel} is not a regular file")
    if whiteout.is_opaque_marker(base):
        applier.mark_opaque(parent)
        return CapturedEntry(parent, "o", member.mode & 0o7777, member.uid, member.gid, 0)
    if whiteout.is_whiteout_meta(base):
        return None  # .wh..wh.plnk & co: never materialised
    try:
        target = whiteout.whiteout_target(base)
    except ValueError as e:
        raise LayerError(f"unpack layer: {e}") from e
    assert target is not None
    path = target if parent == "." else f"{parent}/{target}"
    applier.whiteout(path, member)
    return CapturedEntry(path, "w", whiteout.WHITEOUT_TAR_MODE, member.uid, member.gid, 0)


def extract_archive(stream: BinaryIO, root: Path, dest: str) -> None:
    """``tar -x`` of an uncompressed tar ``stream`` into directory ``dest`` of rootfs ``root``.

    ``dest`` is relative to ``root`` (a leading ``/`` is allowed) and created with its parents
    (0755, root-owned).  Names are relative to ``dest`` (a leading ``/`` is stripped, a ``..``
    climbing out of ``dest`` is refused); symlinks met while resolving are clamped to ``root``.
    Existing dir + incoming dir: kept, attributes updated; anything else existing is removed
    first.  Whiteout names are plain files here.  Hardlink targets are relative to ``dest``.
    """
    with RootDir(root) as rootdir:
        base = clean(dest)
        os.close(rootdir.open_dir(base, create=True))
        applier = _Applier(rootdir, layer_mode=False, base=base)
        tar = _open_tar(stream)
        for member in _members(tar):
            rel = clean(member.name)
            applier.apply(member, rel, tar)
        applier.finish()


_KINDS = {tarfile.REGTYPE: "f", tarfile.DIRTYPE: "d", tarfile.SYMTYPE: "l",
          tarfile.LNKTYPE: "h", tarfile.CHRTYPE: "c", tarfile.BLKTYPE: "b",
          tarfile.FIFOTYPE: "p"}
_SKIP_XATTRS = ("security.selinux",)
_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _Applier:
    """Creates tar entries under ``base`` of a RootDir, the same way for both appliers.

    ``layer_mode``: a layer into a fresh dir (hardlinks only to paths of this layer, absolute
    link names refused); otherwise ``tar -x`` (link names relative to ``base``).
    """

    def __init__(self, root: RootDir, *, layer_mode: bool, base: str = ".") -> None:
        self.root = root
        self.layer_mode = layer_mode
        self.base = base
        self._files: set[str] = set()  # non-directories unpacked so far (hardlink targets)
        self._dir_times: list[tuple[str, int]] = []

    def _full(self, rel: str) -> str:
        if self.base == ".":
            return rel
        return self.base if rel == "." else f"{self.base}/{rel}"

    def apply(self, member: tarfile.TarInfo, rel: str, tar: tarfile.TarFile) -> CapturedEntry:
        full = self._full(rel)
        kind = "f" if member.isreg() else _KINDS.get(member.type)
        if kind is None:
            raise LayerError(f"{rel}: unsupported tar entry type {member.type!r}")
        entry = CapturedEntry(rel, kind, member.mode & 0o7777, member.uid, member.gid,
                              member.size if kind == "f" else 0,
                              member.linkname if kind in "lh" else "")
        if rel == ".":
            if kind != "d":
                raise LayerError(f"{member.name!r}: refusing to change the type of the root")
            pathfd = self.root.open_dir(full)
            try:
                fd = os.open(".", _OPEN_DIR, dir_fd=pathfd)
            finally:
                os.close(pathfd)
            self._attrs_fd(fd, member, full)
            self._dir_times.append((full, int(member.mtime)))
            return entry
        if kind == "c" and self.layer_mode and member.devmajor == member.devminor == 0:
            raise LayerError(f"{rel}: a char device 0:0 would read as an overlay whiteout")
        dirfd, name = self.root.parent_of(full, create=True)
        try:
            self._create(dirfd, name, full, kind, member, tar)
        except OSError as e:
            raise LayerError(f"unpack {rel}: {e.strerror}") from e
        finally:
            os.close(dirfd)
        if kind == "d":
            self._files.discard(full)
        else:
            self._files.add(full)
        return entry

    def _create(self, dirfd: int, name: str, full: str, kind: str, member: tarfile.TarInfo,
                tar: tarfile.TarFile) -> None:
        try:
            existing = os.lstat(name, dir_fd=dirfd)
        except FileNotFoundError:
            existing = None
        if kind == "h":
            src_fd, src_name = self._link_source(member, full)
            try:
                if existing is not None:
                    remove_all(dirfd, name)
                os.link(src_name, name, src_dir_fd=src_fd, dst_dir_fd=dirfd,
                        follow_symlinks=False)
            finally:
                os.close(src_fd)
            return
        if existing is not None and not (kind == "d" and stat.S_ISDIR(existing.st_mode)):
            remove_all(dirfd, name)
        perm = member.mode & 0o7777
        if kind == "f":
            fd = os.open(name, _OPEN_NEW, 0o600, dir_fd=dirfd)
            try:
                _copy(tar, member, fd)
                self._attrs_fd(fd, member, full, times=True)
            finally:
                os.close(fd)
        elif kind == "d":
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                os.mkdir(name, 0o700, dir_fd=dirfd)
            self._attrs_fd(os.open(name, _OPEN_DIR, dir_fd=dirfd), member, full)
            self._dir_times.append((full, int(member.mtime)))
        else:
            if kind == "l":
                os.symlink(member.linkname, name, dir_fd=dirfd)
            elif kind == "p":
                os.mkfifo(name, 0o600, dir_fd=dirfd)
            else:
                ftype = stat.S_IFCHR if kind == "c" else stat.S_IFBLK
                os.mknod(name, ftype | 0o600, os.makedev(member.devmajor, member.devminor),
                         dir_fd=dirfd)
            os.chown(name, member.uid, member.gid, dir_fd=dirfd, follow_symlinks=False)
            if kind != "l":
                os.chmod(name, perm, dir_fd=dirfd, follow_symlinks=False)
            os.utime(name, (member.mtime, member.mtime), dir_fd=dirfd, follow_symlinks=False)

    def _link_source(self, member: tarfile.TarInfo, full: str) -> tuple[int, str]:
        """(parent fd, name) of a hardlink's target, which must be inside the target tree."""
        if self.layer_mode and member.linkname.startswith("/"):
            raise LayerError(f"{member.name}: hardlink to absolute path {member.linkname!r}")
        target = self._full(clean(member.linkname))
        if self.layer_mode and target not in self._files:
            raise LayerError(f"{member.name}: hardlink to {member.linkname!r}, "
                             "which is not a file earlier in this layer")
        if target == full or target == ".":
            raise LayerError(f"{member.name}: hardlink to itself or to the root")
        return self.root.parent_of(target)

    def _attrs_fd(self, fd: int, member: tarfile.TarInfo, full: str, *,
                  times: bool = False) -> None:
        """lchown → chmod → xattrs (→ mtime) on an open file or directory; closes nothing."""
        try:
            os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, member.mode & 0o7777)
            for key, value in member.pax_headers.items():
                if not key.startswith("SCHILY.xattr."):
                    continue
                xattr = key[len("SCHILY.xattr."):]
                if whiteout.is_overlay_xattr(xattr) or xattr in _SKIP_XATTRS or not value:
                    continue
                os.setxattr(fd, xattr, value.encode("utf-8", "surrogateescape"))
            if times:
                os.utime(fd, (member.mtime, member.mtime))
        except OSError as e:
            raise LayerError(f"unpack {full}: set attributes: {e.strerror}") from e
        finally:
            if not times:
                os.close(fd)

    def whiteout(self, path: str, member: tarfile.TarInfo) -> None:
        """Record deletion of ``path`` as an overlay whiteout (a path of this layer wins)."""
        dirfd, name = self.root.parent_of(self._full(path), create=True)
        try:
            try:
                existing = os.lstat(name, dir_fd=dirfd)
            except FileNotFoundError:
                existing = None
            if existing is not None:
                if not whiteout.is_overlay_whiteout(existing):
                    return  # the same layer put something here: it shadows the lower anyway
                os.unlink(name, dir_fd=dirfd)
            whiteout.make_overlay_whiteout(dirfd, name)
            os.chown(name, member.uid, member.gid, dir_fd=dirfd, follow_symlinks=False)
            os.utime(name, (member.mtime, member.mtime), dir_fd=dirfd, follow_symlinks=False)
        except OSError as e:
            raise LayerError(f"unpack whiteout {path}: {e.strerror}") from e
        finally:
            os.close(dirfd)

    def mark_opaque(self, path: str) -> None:
        fd = self.root.open_dir(self._full(path), create=True)
        try:
            whiteout.mark_opaque(fd)
        except OSError as e:
            raise LayerError(f"unpack opaque marker {path}: {e.strerror}") from e
        finally:
            os.close(fd)

    def finish(self) -> None:
        """Set directory mtimes, deepest last-written first, now that all children exist."""
        for full, mtime in reversed(self._dir_times):
            try:
                if full == ".":
                    fd = os.open(".", _OPEN_DIR, dir_fd=self.root.fd)
                    try:
                        os.utime(fd, (mtime, mtime))
                    finally:
                        os.close(fd)
                    continue
                dirfd, name = self.root.parent_of(full)
                try:
                    os.utime(name, (mtime, mtime), dir_fd=dirfd, follow_symlinks=False)
                finally:
                    os.close(dirfd)
            except OSError as e:
                raise LayerError(f"unpack {full}: set mtime: {e.strerror}") from e


def _copy(tar: tarfile.TarFile, member: tarfile.TarInfo, fd: int) -> None:
    src = tar.extractfile(member)
    if src is None:
        raise LayerError(f"internal error: no data for {member.name}")
    try:
        while chunk := src.read(CHUNK):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
    except tarfile.TarError as e:        # the archive ends before the member's data does
        raise LayerError(f"read tar: {member.name}: {e}") from e


def open_maybe_compressed(path: Path) -> BinaryIO | None:
    """A stream of the tar inside ``path`` (plain, gzip, bzip2, xz, zstd if installed).

    None if the (decompressed) content does not start with a valid tar header (or is an empty
    archive, as docker treats it), i.e. ADD should copy the file instead.  The caller closes
    the returned stream.  Raises LayerError if ``path`` cannot be opened.
    """
    try:
        probe = open_decompressed(path)
    except OSError as e:
        raise LayerError(f"open archive {path}: {e.strerror}") from e
    except LayerError:          # zstd without the zstandard package: not an archive we read
        return None
    try:
        block = probe.read(tarfile.BLOCKSIZE)
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except (OSError, EOFError, lzma.LZMAError, tarfile.HeaderError, ValueError):
        probe.close()
        return None
    except Exception:  # zstandard.ZstdError and friends: not an archive we can read
        probe.close()
        return None
    probe.close()
    return open_decompressed(path)


__all__ = ["Unpacked", "unpack_layer", "extract_archive", "open_maybe_compressed"]
