"""``RUN --mount``, inside the sandbox child: mount points, the mounts, and what stays behind.

The parent prepares every source on the host (a cache dir, a context path, a secret's bytes, a
forwarded ssh socket, an image's read-only union) and describes it as a ``RunMount``; the
child, in its private mount namespace and before it chroots, makes each target exist in the
merged root and mounts the source there.  Nothing written below a mount point reaches the
upper dir, so nothing below one is ever in a layer.

What does reach the layer is what BuildKit leaves (moby/buildkit executor MountStubsCleaner,
as docker 20.10's BuildKit does it): a target that did not exist is created — its missing
parent dirs 0755 and the target itself, a dir for a dir source or an empty file for a file
(a secret, a bound file, a socket) — and after the command only the empty *files* among
those created targets are removed; created dirs stay, empty, in the layer.

Every target is resolved inside the root (symlinks clamped, ``layer/root.py``) and mounted
through an ``O_PATH`` fd (``/proc/self/fd/N``), so a symlink in the image never turns a
mount into one on the host.  Secrets live only in a tmpfs private to the child.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import socket
import stat
import struct
from dataclasses import dataclass, replace

from builder.errors import SandboxError
from builder.layer import overlay
from builder.layer.overlay import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REMOUNT, OverlayMount
from builder.layer.root import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RootDir, openat2, resolve_in_scope

_O_PATH = os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW


@dataclass(frozen=True)
class RunMount:
    """One mount of a RUN, ready on the host.  ``kind``:

    - ``bind``: ``source`` (a host path, or with ``image`` a path inside that image's union)
      on the target; ``readonly``, or writable with writes kept (a cache dir); ``inner``: the
      path inside ``source`` to mount instead, resolved with ``source`` as its root (a cache's
      ``source=``: a symlink a RUN left in a cache never leads out of it);
    - ``overlay``: ``source`` as the lower dir of a fresh overlay whose upper dir, under
      ``scratch``, is thrown away (``rw`` bind mounts: writes are discarded);
    - ``tmpfs``: a new tmpfs of ``size`` bytes (None: the kernel's default);
    - ``secret``: a file holding ``data``, ``mode``/``uid``/``gid``, read-only.
    ``directory`` says what to create when the target is missing."""

    kind: str
    target: str
    source: str = ""
    image: OverlayMount | None = None
    readonly: bool = True
    directory: bool = True
    data: bytes = b""
    mode: int = 0o400
    uid: int = 0
    gid: int = 0
    size: int | None = None
    scratch: str = ""
    inner: str = ""


@dataclass(frozen=True)
class Stub:
    """A target the child created (relative to the root), and whether it is a file."""

    rel: str
    is_file: bool


def mount_all(merged: str, mounts: tuple[RunMount, ...], work: str) -> list[Stub]:
    """Mount every RUN mount under ``merged`` (parents before children); ``work`` is a private
    dir of the child for image unions and the secrets tmpfs.  Returns the stubs created."""
    stubs: list[Stub] = []
    secrets_dir = None
    with RootDir(merged) as root:
        for n, m in enumerate(sorted(mounts, key=lambda m: m.target.count("/"))):
            if m.image is not None:             # a file or a dir: known once the image is mounted
                m = _image_source(m, work, n)
            rel, stub = _target(root, m)
            if stub is not None:
                stubs.append(stub)
            if m.kind == "secret" and secrets_dir is None:
                secrets_dir = os.path.join(work, "secrets")
                os.mkdir(secrets_dir, 0o700)
                overlay.mount("tmpfs", secrets_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700")
            fd = _open_target(root, rel, m.target)
            try:
                _mount_one(m, f"/proc/self/fd/{fd}", work, n, secrets_dir)
            finally:
                os.close(fd)
            if m.readonly and m.kind in ("bind", "secret"):
                # the fd still names what the mount covers: remount the new top by its path,
                # symlink-free (resolved in the root above) and before anything runs there
                _read_only(os.path.join(merged, rel))
    return stubs


def remove_stubs(merged: str, stubs: list[Stub]) -> None:
    """After the command, with the RUN mounts gone: remove the created targets that are empty
    files (BuildKit's MountStubsCleaner); created dirs stay."""
    with RootDir(merged) as root:
        for stub in reversed(stubs):
            if not stub.is_file:
                continue
            st = root.lstat(stub.rel)
            if st is None or not stat.S_ISREG(st.st_mode) or st.st_size != 0:
                continue
            dirfd, name = root.parent_of(stub.rel)
            try:
                os.unlink(name, dir_fd=dirfd)
            finally:
                os.close(dirfd)


def _target(root: RootDir, m: RunMount) -> tuple[str, Stub | None]:
    """The target resolved inside the root, created (parents 0755, then a dir or an empty
    file) when missing."""
    rel = resolve_in_scope(root, m.target)
    if rel == ".":
        raise SandboxError(f"invalid mount target {m.target!r}")
    if root.lstat(rel) is not None:
        return rel, None
    dirfd, name = root.parent_of(rel, create=True)
    try:
        if m.directory:
            os.mkdir(name, 0o755, dir_fd=dirfd)
        else:
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o644, dir_fd=dirfd))
    except OSError as e:
        raise SandboxError(f"create mount point {m.target}: {e.strerror}") from e
    finally:
        os.close(dirfd)
    return rel, Stub(rel, not m.directory)


def _open_target(root: RootDir, rel: str, shown: str) -> int:
    dirfd, name = root.parent_of(rel)
    try:
        return os.open(name, _O_PATH, dir_fd=dirfd)
    except OSError as e:
        raise SandboxError(f"mount point {shown}: {e.strerror}") from e
    finally:
        os.close(dirfd)


def _mount_one(m: RunMount, target: str, work: str, n: int, secrets_dir: str | None) -> None:
    where = f"RUN --mount target {m.target}"
    if m.kind == "tmpfs":
        overlay.mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV,
                      f"size={m.size}" if m.size is not None else None)
        return
    if m.kind == "secret":
        assert secrets_dir is not None
        path = os.path.join(secrets_dir, str(n))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, m.data)
            os.fchown(fd, m.uid, m.gid)
            os.fchmod(fd, m.mode)
        finally:
            os.close(fd)
        overlay.mount(path, target, None, MS_BIND)
        return
    source = m.source
    if m.kind == "overlay":
        upper, workdir = os.path.join(m.scratch, "upper"), os.path.join(m.scratch, "work")
        overlay.mount("overlay", target, "overlay", 0,
                      f"lowerdir={_escape(source)},upperdir={_escape(upper)},workdir={_escape(workdir)}")
        return
    if m.inner:
        with RootDir(source) as root:
            try:
                fd = openat2(root.fd, m.inner, _O_PATH & ~os.O_NOFOLLOW, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
            except OSError as e:
                raise SandboxError(f"{where}: {m.inner}: {e.strerror}") from e
        try:
            overlay.mount(f"/proc/self/fd/{fd}", target, None, MS_BIND)
        finally:
            os.close(fd)
        return
    overlay.mount(source, target, None, MS_BIND)


def _image_source(m: RunMount, work: str, n: int) -> RunMount:
    """``m`` with its image's union mounted in ``work`` and ``source`` the path in it
    (resolved inside the image), ``directory`` what that path is."""
    assert m.image is not None
    union = os.path.join(work, f"image-{n}")
    os.mkdir(union, 0o700)
    overlay.mount_overlay(m.image if m.image.target == union else _at(m.image, union))
    with RootDir(union) as image_root:
        inner = resolve_in_scope(image_root, m.source or "/")
        st = image_root.lstat(inner)
    if st is None:
        raise SandboxError(f"RUN --mount target {m.target}: {m.source} not found in the source image")
    source = union if inner == "." else os.path.join(union, inner)
    if m.kind == "overlay" and not stat.S_ISDIR(st.st_mode):   # rw, a file: a copy thrown away after
        copy = os.path.join(m.scratch, "file")
        shutil.copy2(source, copy, follow_symlinks=False)
        return replace(m, kind="bind", source=copy, image=None, directory=False, readonly=False)
    return replace(m, source=source, image=None, directory=stat.S_ISDIR(st.st_mode))


def _read_only(path: str) -> None:
    overlay.mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _at(image: OverlayMount, target: str) -> OverlayMount:
    return replace(image, target=target)


def _escape(path: str) -> str:
    return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")


def loopback_up() -> None:
    """In a new network namespace: bring ``lo`` up (SIOCSIFFLAGS), the only interface there."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        try:
            flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), siocgifflags, request))[1]
            fcntl.ioctl(s.fileno(), siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise SandboxError(f"bring up loopback in the step's network namespace: {e.strerror}") from e
