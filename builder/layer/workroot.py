"""The copy snapshotter's working root: an image's layers applied to one plain directory.

``apply_layer`` puts a stored layer dir (overlay format) on top of the root as overlayfs would
show it: a whiteout removes the path, an opaque directory drops what was below it, anything
else replaces what is there.  Files are copied, never linked, since the steps that run in the
root write to its files in place and a committed layer dir must never change; and names that
share an inode in a layer become separate files, since overlay (``index=off``, as docker runs
it) copies up one name of a hardlinked lower file alone: a write through one name never shows
through another.  ``split_hardlinks`` does the same to the links a step made, once its layer
is taken.

``MountPoints`` stands in for the RUN sandbox's init layer: the mount points (/dev, /proc,
/sys, /etc and its resolv.conf, hosts, hostname) a RUN needs are made where the image lacks
them, an entry of the wrong type at a file's place is moved aside, and all of it is undone
after the RUN; the parents' times are put back each time.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import LayerError
from builder.layer import userns, whiteout
from builder.layer.copyup import copy_xattrs, make_node
from builder.layer.root import RootDir, remove_all

#: What a RUN needs in its root, as the init layer provides it (layer/sandbox.py INIT_*).
MOUNT_DIRS = ("dev", "proc", "sys", "etc")
MOUNT_FILES = ("etc/resolv.conf", "etc/hosts", "etc/hostname")


def apply_layer(layer: Path, root: Path) -> None:
    """Apply the overlay-format layer dir ``layer`` on top of the working root ``root``."""
    dir_times: list[tuple[str, int]] = []
    with RootDir(root) as dst:
        pending = [""]
        while pending:
            rel_dir = pending.pop()
            for name in sorted(os.listdir(layer / rel_dir if rel_dir else layer)):
                rel = f"{rel_dir}/{name}" if rel_dir else name
                src = str(layer / rel)
                st = os.lstat(src)
                dirfd, final = dst.parent_of(rel)
                try:
                    if _apply_entry(src, st, dirfd, final, rel):
                        dir_times.append((rel, st.st_mtime_ns))
                        pending.append(rel)
                except OSError as e:
                    device = stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                    raise LayerError(f"copy snapshotter: apply {rel} to the working root: {e.strerror}"
                                     f"{userns.denied_hint(e, owner=(st.st_uid, st.st_gid), device=device)}") from e
                finally:
                    os.close(dirfd)
        for rel, mtime in reversed(dir_times):
            dirfd, final = dst.parent_of(rel)
            try:
                os.utime(final, ns=(mtime, mtime), dir_fd=dirfd, follow_symlinks=False)
            finally:
                os.close(dirfd)


def _apply_entry(src: str, st: os.stat_result, dirfd: int, name: str, rel: str) -> bool:
    """One entry of a layer onto the root; True for a directory to descend into."""
    try:
        old = os.lstat(name, dir_fd=dirfd)
    except FileNotFoundError:
        old = None
    if whiteout.is_overlay_whiteout(st):
        if old is not None:
            remove_all(dirfd, name)
        return False
    if stat.S_ISDIR(st.st_mode):
        if old is not None and (not stat.S_ISDIR(old.st_mode) or whiteout.is_opaque(src)):
            remove_all(dirfd, name)
            old = None
        if old is None:
            os.mkdir(name, 0o700, dir_fd=dirfd)
        _own(src, st, dirfd, name)
        return True
    if old is not None:
        remove_all(dirfd, name)
    _copy_non_dir(src, st, dirfd, name)
    return False


def _copy_non_dir(src: str, st: os.stat_result, dirfd: int, name: str) -> None:
    if not make_node(src, st, dirfd, name):
        return
    _own(src, st, dirfd, name)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dirfd, follow_symlinks=False)


def _own(src: str, st: os.stat_result, dirfd: int, name: str) -> None:
    os.chown(name, st.st_uid, st.st_gid, dir_fd=dirfd, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dirfd)
        copy_xattrs(src, f"/proc/self/fd/{dirfd}/{name}")


def split_hardlinks(root: Path, names: list[str]) -> list[str]:
    """Give each of ``names`` (regular files of the root that share inodes) an inode of its
    own, keeping content, owner, mode, xattrs and times; every parent keeps its times.
    Returns the paths changed (every name, and the parents of those copied), to be walked again."""
    touched: set[str] = set()
    with RootDir(root) as dst:
        for rel in names:
            dirfd, name = dst.parent_of(rel)
            try:
                st = os.lstat(name, dir_fd=dirfd)
                if not stat.S_ISREG(st.st_mode) or st.st_nlink < 2:
                    continue                    # the last name of its set: alone already
                parent_st = os.stat(dirfd)
                tmp = f".pybuild-split-{secrets.token_hex(6)}"
                _copy_non_dir(f"/proc/self/fd/{dirfd}/{name}", st, dirfd, tmp)
                os.rename(tmp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)
                os.utime(f"/proc/self/fd/{dirfd}", ns=(parent_st.st_atime_ns, parent_st.st_mtime_ns))
            except OSError as e:
                raise LayerError(f"copy snapshotter: split hardlink {rel}: {e.strerror}") from e
            finally:
                os.close(dirfd)
            touched.add(rel.rpartition("/")[0])
    return sorted((touched | set(names)) - {""})     # the last name of a set lost a link too


@dataclass
class MountPoints:
    """What ``make_mount_points`` added to a root, to be undone by ``remove``."""

    root: Path
    dirs: list[str] = field(default_factory=list)        # made (missing in the image)
    files: list[str] = field(default_factory=list)       # made (missing, or moved aside)
    aside: dict[str, str] = field(default_factory=dict)  # path → where the image's entry waits

    @property
    def paths(self) -> set[str]:
        """Every path that is ours while the RUN runs, not the image's: to leave out of the
        walks compared (a made dir the RUN put something in is the RUN's, and not left out)."""
        return set(self.files) | set(self.aside.values()) | {d for d in self.dirs if not self._holds_more(d)}

    @property
    def parents(self) -> list[str]:
        """Directories of the image whose times were put back (to be walked again)."""
        return sorted({p.rpartition("/")[0] for p in self.dirs + self.files} - {""} - set(self.dirs))

    @property
    def touched(self) -> list[str]:
        """What ``remove`` changed beside what it removed (to be walked again): the parents,
        the made dirs a RUN kept, and the entries moved back (a rename moves their ctime)."""
        return sorted(set(self.parents) | set(self.dirs) | set(self.aside))

    def _holds_more(self, rel: str) -> bool:
        """A made dir that a RUN put something in is the RUN's now (overlay copies it up)."""
        ours = {f.rpartition("/")[2] for f in self.files if f.rpartition("/")[0] == rel}
        return any(name not in ours for name in os.listdir(self.root / rel))

    def remove(self) -> None:
        """Undo ``make_mount_points``: placeholders out, moved entries back, made dirs out if
        empty; every parent keeps the times it had before."""
        with RootDir(self.root) as dst:
            for rel in reversed(self.files):
                _keeping_parent_times(dst, rel, lambda fd, name: _unlink_missing_ok(fd, name))
            for rel, hidden in self.aside.items():
                _keeping_parent_times(dst, rel, lambda fd, name, hidden=hidden: os.rename(
                    hidden.rpartition("/")[2], name, src_dir_fd=fd, dst_dir_fd=fd))
            for rel in reversed(self.dirs):
                if not os.listdir(self.root / rel):
                    _keeping_parent_times(dst, rel, lambda fd, name: os.rmdir(name, dir_fd=fd))


def make_mount_points(root: Path) -> MountPoints:
    """Make sure the RUN sandbox's mount points exist in ``root`` (see the module docstring).
    Raises LayerError where a mount dir of the image is not a directory (the overlay
    snapshotter's init layer hides it; the copy snapshotter cannot)."""
    made = MountPoints(root)
    with RootDir(root) as dst:
        for rel in MOUNT_DIRS:
            st = dst.lstat(rel)
            if st is None:
                _keeping_parent_times(dst, rel, lambda fd, name: _mkdir_root_owned(fd, name))
                made.dirs.append(rel)
            elif not stat.S_ISDIR(st.st_mode):
                raise LayerError(f"copy snapshotter: /{rel} is not a directory in this image, and a RUN "
                                 f"needs a mount point there (use --snapshotter overlay)")
        for rel in MOUNT_FILES:
            st = dst.lstat(rel)
            if st is not None and stat.S_ISREG(st.st_mode):
                continue
            if st is not None:
                hidden = f"{rel.rpartition('/')[0]}/.pybuild-aside-{secrets.token_hex(6)}"
                _keeping_parent_times(dst, rel, lambda fd, name, hidden=hidden: os.rename(
                    name, hidden.rpartition("/")[2], src_dir_fd=fd, dst_dir_fd=fd))
                made.aside[rel] = hidden
            _keeping_parent_times(dst, rel, lambda fd, name: os.close(os.open(
                name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=fd)))
            made.files.append(rel)
    return made


def _keeping_parent_times(dst: RootDir, rel: str, change) -> None:
    """``change(parent fd, name)``, then the parent's atime and mtime as they were."""
    dirfd, name = dst.parent_of(rel)
    try:
        before = os.stat(dirfd)
        change(dirfd, name)
        os.utime(f"/proc/self/fd/{dirfd}", ns=(before.st_atime_ns, before.st_mtime_ns))  # O_PATH: by name
    except OSError as e:
        raise LayerError(f"copy snapshotter: mount point /{rel}: {e.strerror}") from e
    finally:
        os.close(dirfd)


def _mkdir_root_owned(dirfd: int, name: str) -> None:
    os.mkdir(name, 0o755, dir_fd=dirfd)
    os.chown(name, 0, 0, dir_fd=dirfd, follow_symlinks=False)
    os.chmod(name, 0o755, dir_fd=dirfd)


def _unlink_missing_ok(dirfd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dirfd)
    except FileNotFoundError:
        pass
