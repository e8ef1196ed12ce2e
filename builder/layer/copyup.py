"""Overlay's copy-up, by hand: what a step changed in the copy snapshotter's working root,
written as the upper dir overlay would have left for it.

From a diff (snapshot.py) of the working root and the root itself: every changed entry is
copied (data, owner, mode, xattrs, mtime), every parent of a changed or deleted path is a
directory with the parent's metadata (overlay copies parents up, and later changes land on the
copy, so the upper dir ends with the merged view's metadata), a deleted path is a 0:0 char
device, and a directory made where something was deleted carries the opaque xattr.  Names
that share an inode in the working root share one in the upper dir, as the step made them.

The upper dir is then captured (capture.py) and committed like overlay's: the layer's bytes
come from the same code, so they are the same bytes.  Files are copied, never linked: the
working root is written to by later steps, and a committed layer dir must never change.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from builder.errors import LayerError
from builder.layer import userns, whiteout
from builder.layer.root import RootDir
from builder.layer.snapshot import Changes, Snapshot
from builder.oci.digest import CHUNK

_SKIP_XATTRS = ("security.selinux",)


def write_upper(root: str, changes: Changes, after: Snapshot, upper: Path) -> None:
    """Write ``changes`` of working root ``root`` (whose walk is ``after``) into the empty
    directory ``upper``, in overlay format."""
    changed = set(changes.changed)
    deleted = set(changes.deleted)
    parents = {p for rel in changed | deleted for p in _ancestors(rel)} - changed
    dir_times: list[tuple[str, int]] = []
    first_of: dict[int, str] = {}          # inode in the working root → its first upper path
    with RootDir(upper) as up:
        for rel in sorted(parents | changed | deleted):
            dirfd, name = up.parent_of(rel)
            try:
                if rel in deleted:
                    _make_whiteout(dirfd, name, rel)
                    continue
                entry = after[rel]
                if entry.is_dir:
                    os.mkdir(name, 0o700, dir_fd=dirfd)
                    _attrs(root, rel, dirfd, name, entry.uid, entry.gid, entry.mode)
                    if rel in changes.opaque:
                        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
                        try:
                            whiteout.mark_opaque(fd)
                        finally:
                            os.close(fd)
                    dir_times.append((rel, entry.mtime_ns))
                    continue
                if entry.nlink > 1 and entry.ino in first_of:
                    link_dir, link_name = up.parent_of(first_of[entry.ino])
                    try:
                        os.link(link_name, name, src_dir_fd=link_dir, dst_dir_fd=dirfd, follow_symlinks=False)
                    finally:
                        os.close(link_dir)
                    continue
                first_of[entry.ino] = rel
                _copy_entry(root, rel, entry.fmt, dirfd, name)
                if entry.fmt != stat.S_IFSOCK:
                    os.utime(name, ns=(entry.mtime_ns, entry.mtime_ns), dir_fd=dirfd, follow_symlinks=False)
            except OSError as e:
                raise LayerError(f"copy {rel} into the upper dir: {e.strerror}{userns.denied_hint(e, device=True)}") \
                    from e
            finally:
                os.close(dirfd)
        for rel, mtime in reversed(dir_times):     # children first: they changed the parents' mtime
            dirfd, name = up.parent_of(rel)
            try:
                os.utime(name, ns=(mtime, mtime), dir_fd=dirfd, follow_symlinks=False)
            finally:
                os.close(dirfd)


def _make_whiteout(dirfd: int, name: str, rel: str) -> None:
    try:
        whiteout.make_overlay_whiteout(dirfd, name)
    except PermissionError as e:
        raise LayerError(f"record the deletion of {rel}: {e.strerror}: the store's filesystem refuses "
                         f"whiteouts (0:0 char devices; overlayfs does): keep the store on another "
                         f"filesystem (--root, $PYBUILD_ROOT)") from e


def _ancestors(rel: str) -> list[str]:
    parts = rel.split("/")[:-1]
    return ["/".join(parts[:i + 1]) for i in range(len(parts))]


def _copy_entry(root: str, rel: str, fmt: int, dirfd: int, name: str) -> None:
    """Make ``name`` in ``dirfd`` a copy of the working root's non-directory ``rel``."""
    src = os.path.join(root, rel)
    st = os.lstat(src)
    if make_node(src, st, dirfd, name):
        _attrs(root, rel, dirfd, name, st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), link=fmt == stat.S_IFLNK)


def make_node(src: str, st: os.stat_result, dirfd: int, name: str) -> bool:
    """Make ``name`` in ``dirfd`` a new non-directory like ``src`` (stat ``st``): a regular
    file's data, a symlink's target, a fifo or a device node, mode 0600 until its owner's
    attributes are set.  False for a socket, which no tar writer keeps: nothing is made."""
    fmt = stat.S_IFMT(st.st_mode)
    if fmt == stat.S_IFREG:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dirfd)
        try:
            source = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                copy_data(source, fd)
            finally:
                os.close(source)
        finally:
            os.close(fd)
    elif fmt == stat.S_IFLNK:
        os.symlink(os.readlink(src), name, dir_fd=dirfd)
    elif fmt == stat.S_IFIFO:
        os.mkfifo(name, 0o600, dir_fd=dirfd)
    elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
        os.mknod(name, fmt | 0o600, st.st_rdev, dir_fd=dirfd)
    else:
        return False
    return True


def _attrs(root: str, rel: str, dirfd: int, name: str, uid: int, gid: int, mode: int, *, link: bool = False) -> None:
    """Owner, then mode (a chown clears set-id bits), then xattrs but overlay's own."""
    os.chown(name, uid, gid, dir_fd=dirfd, follow_symlinks=False)
    if link:
        return
    os.chmod(name, mode, dir_fd=dirfd)
    copy_xattrs(os.path.join(root, rel), f"/proc/self/fd/{dirfd}/{name}")


def copy_xattrs(src: str, dst: str) -> None:
    """The xattrs of ``src`` on ``dst`` (neither followed), but overlay's and SELinux's."""
    try:
        keys = os.listxattr(src, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return
        raise
    for key in keys:
        if whiteout.is_overlay_xattr(key) or key in _SKIP_XATTRS:
            continue
        os.setxattr(dst, key, os.getxattr(src, key, follow_symlinks=False), follow_symlinks=False)


def copy_data(source: int, target: int) -> None:
    """All of ``source`` into ``target`` (both at offset 0): copy_file_range where the kernel
    can (a reflink on filesystems that share extents), else read and write."""
    try:
        while os.copy_file_range(source, target, CHUNK):
            pass
        return
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
    os.lseek(source, 0, os.SEEK_SET)
    os.lseek(target, 0, os.SEEK_SET)
    os.ftruncate(target, 0)
    while chunk := os.read(source, CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(target, view):]
