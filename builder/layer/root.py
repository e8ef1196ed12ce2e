"""Resolve paths inside a root directory without ever leaving it.

The parent of a path is opened with openat2(2) and RESOLVE_IN_ROOT, so symlinks along the way
(absolute ones included) are clamped to the root the way a chroot would see them; the final
name is then acted on with ``dir_fd=`` calls that never follow it.  Image-controlled path
strings are never handed to path-based calls on the host (oci-layers-registry.md §6).
"""

from __future__ import annotations

import ctypes
import errno
import os
import posixpath
import shutil
import stat
from pathlib import Path

from builder.errors import LayerError

_SYS_OPENAT2 = 437  # x86_64 and aarch64 (and every arch on the unified table except alpha)
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def openat2(dirfd: int, path: str | bytes, flags: int, resolve: int, mode: int = 0) -> int:
    """The openat2(2) syscall; returns a new fd or raises OSError."""
    how = _OpenHow(flags, mode, resolve)
    raw = os.fsencode(path)
    fd = _libc.syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dirfd), ctypes.c_char_p(raw),
                       ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), os.fsdecode(raw))
    return fd


def clean(rel: str) -> str:
    """Normalise a name relative to a root: strip leading ``/`` and ``./``, collapse ``.``/``..``.

    Returns ``"."`` for the root itself.  Raises LayerError if a ``..`` would climb above it.
    """
    parts: list[str] = []
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise LayerError(f"path {rel!r} escapes the root")
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts) or "."


class RootDir:
    """An open root directory (an O_PATH fd); every path given to it is relative to the root.

    Use as a context manager; fds returned by open_dir()/parent_of() belong to the caller,
    who must close them.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.fd = os.open(self.path, _DIR_FLAGS)
        except OSError as e:
            raise LayerError(f"open root {self.path}: {e.strerror}") from e

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> RootDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _resolve(self, rel: str) -> int:
        return openat2(self.fd, rel, _DIR_FLAGS, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

    def open_dir(self, rel: str, *, create: bool = False, mode: int = 0o755) -> int:
        """An O_PATH fd of directory ``rel`` (symlinks clamped inside the root).

        With ``create``, missing components are made like ``mkdir -p``: owned by root,
        permissions ``mode``.  Raises LayerError if a component is not a directory.
        """
        rel = clean(rel)
        try:
            return self._resolve(rel)
        except OSError as e:
            if not (create and e.errno == errno.ENOENT):
                raise LayerError(f"open directory {rel}: {e.strerror}") from e
        parts = rel.split("/")
        for i, part in enumerate(parts):
            prefix = "/".join(parts[: i + 1])
            try:
                os.close(self._resolve(prefix))
                continue
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise LayerError(f"create directory {rel}: {prefix}: {e.strerror}") from e
            parent = self._resolve("/".join(parts[:i]) or ".")
            try:
                os.mkdir(part, mode, dir_fd=parent)
                os.chown(part, 0, 0, dir_fd=parent, follow_symlinks=False)
                os.chmod(part, mode, dir_fd=parent, follow_symlinks=False)
            except OSError as e:  # EEXIST here: a dangling symlink
                raise LayerError(f"create directory {rel}: {prefix}: {e.strerror}") from e
            finally:
                os.close(parent)
        try:
            return self._resolve(rel)
        except OSError as e:
            raise LayerError(f"open directory {rel}: {e.strerror}") from e

    def parent_of(self, rel: str, *, create: bool = False) -> tuple[int, str]:
        """(fd of the parent directory, final name) of ``rel``; the caller closes the fd.

        The final name is never resolved.  Raises LayerError for the root itself.
        """
        rel = clean(rel)
        if rel == ".":
            raise LayerError("internal error: the root has no parent")
        parent, name = posixpath.split(rel)
        return self.open_dir(parent or ".", create=create), name

    def lstat(self, rel: str) -> os.stat_result | None:
        """lstat of ``rel`` (final component not followed), or None if it does not exist."""
        rel = clean(rel)
        if rel == ".":
            return os.stat(self.fd)
        try:
            dirfd, name = self.parent_of(rel)
        except LayerError:
            return None
        try:
            return os.lstat(name, dir_fd=dirfd)
        except FileNotFoundError:
            return None
        finally:
            os.close(dirfd)


def remove_all(dirfd: int, name: str) -> None:
    """Remove ``name`` in ``dirfd`` recursively, fd-relative, never following symlinks.

    A missing name is not an error.
    """
    try:
        os.unlink(name, dir_fd=dirfd)
        return
    except FileNotFoundError:
        return
    except IsADirectoryError:
        pass
    except PermissionError as e:  # Linux unlink(2) of a directory gives EISDIR, some FS EPERM
        if e.errno != errno.EPERM:
            raise
    shutil.rmtree(name, dir_fd=dirfd)


MAX_SYMLINKS = 255


def resolve_in_scope(root: RootDir, path: str) -> str:
    """``path`` with every symlink resolved inside the rootfs, docker's FollowSymlinkInScope.

    Classic docker resolves an ADD/COPY destination lexically: a link's target is joined to
    where the link is and ``..`` is applied to the *resolved* path, clamped at ``/``; missing
    components are kept as written (the copy creates them).  So ``/link -> /nonexistent/../../etc``
    is ``etc``, and a link to a path that does not exist yet is followed to that path (the
    kernel, resolving ``/nonexistent/..``, would fail instead).  The final component is
    resolved too: COPY onto a symlink writes where it points, as the classic builder does.
    Returns a symlink-free path relative to the root (``"."`` for the root itself)."""
    todo = [p for p in reversed(path.split("/")) if p not in ("", ".")]
    done: list[str] = []
    followed = 0
    while todo:
        part = todo.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = "/".join(done + [part])
        st = root.lstat(candidate)
        if st is None or not stat.S_ISLNK(st.st_mode):
            done.append(part)
            continue
        followed += 1
        if followed > MAX_SYMLINKS:
            raise LayerError(f"resolve {path}: too many levels of symbolic links")
        dirfd, name = root.parent_of(candidate)
        try:
            target = os.readlink(name, dir_fd=dirfd)
        except OSError as e:
            raise LayerError(f"resolve {path}: readlink {candidate}: {e.strerror}") from e
        finally:
            os.close(dirfd)
        if target.startswith("/"):
            done = []
        todo.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
    return "/".join(done) or "."
