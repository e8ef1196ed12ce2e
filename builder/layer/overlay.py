"""The only caller of mount(2): overlay unions and the few mounts a RUN sandbox needs.

An overlay is described by an ``OverlayMount`` value first (pure: ``options`` is what
``--explain`` and ``pybuild mount`` show), then mounted.  Lower layers are given as paths
relative to ``cwd`` (the store root) through the store's short ``l/<id>`` links; mounting
happens in a child process (or restores the cwd), so the chdir is harmless.

Two ways to mount, chosen by ``OverlayMount.uses_mount_api``:

- mount(2) with ``lowerdir=a:b:…``, while the option string fits in one page (about 200
  short lowers).  The kernel copies at most one page and silently *truncates* longer strings,
  so this is checked before the call.
- the new mount API (fsopen/fsconfig/fsmount/move_mount, Linux ≥ 6.8 for ``lowerdir+``) above
  that: one ``fsconfig(FSCONFIG_SET_STRING, "lowerdir+", path)`` per lower, topmost first, up
  to overlayfs's limit of 500 lowers (OVL_MAX_STACK).

Why not the new API always: mount(2) keeps small stacks working on kernels older than 6.8,
keeps mountinfo and ``options`` exactly the familiar ``lowerdir=`` form (the --explain golden
files, docker's own layout), and makes ``options`` the literal string the kernel received.
The deep path is exercised by tests/test_deep.py (a 300-step build crosses the boundary).
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field
from typing import NoReturn

from builder.errors import SandboxError
from builder.layer import userns

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_STRICTATIME = 1 << 24
MNT_DETACH = 0x2

#: Options docker's overlay2 relies on, given explicitly so that module defaults cannot
#: turn on redirects (renamed dirs would lose their content in the layer) or metacopy
#: (copied-up files would carry no data).
OVERLAY_FEATURES = "index=off,redirect_dir=off,metacopy=off"
#: The same for a read-only union (no upper dir): the kernel cannot write redirects then and
#: only asks whether to follow them; "nofollow" says what happens (our layers hold none).
READ_ONLY_FEATURES = "index=off,redirect_dir=nofollow,metacopy=off"

#: In a user namespace (rootless builds) overlayfs keeps its own xattrs under ``user.overlay.``
#: (``userxattr``, Linux 5.11+), which refuses redirect_dir=off ("follow"): nofollow is the
#: same here, as pybuild's layers never hold redirects.
USERNS_FEATURES = "index=off,redirect_dir=nofollow,metacopy=off,userxattr"

#: overlayfs's OVL_MAX_STACK: the kernel refuses a 501st lower dir.
MAX_LOWERS = 500
#: fsconfig copies a string value with strndup_user(value, 256): longer ones are EINVAL.
MAX_FSCONFIG_VALUE = 255

# The new mount API.  Syscalls numbered 424 and up are the same on every architecture
# but alpha (x86_64 and aarch64 verified); glibc 2.36+ has wrappers, older ones do not,
# so they are called through syscall(2).
SYS_MOVE_MOUNT, SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 429, 430, 431, 432
FSOPEN_CLOEXEC = 0x1
FSCONFIG_SET_FLAG, FSCONFIG_SET_STRING, FSCONFIG_SET_FD, FSCONFIG_CMD_CREATE = 0, 1, 5, 6
FSMOUNT_CLOEXEC = 0x1
MOUNT_ATTR_RDONLY = 0x1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100

_libc = ctypes.CDLL(None, use_errno=True)     # the C library pybuild runs on (as sandbox.py)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.syscall.restype = ctypes.c_long


@dataclass(frozen=True, kw_only=True)
class OverlayMount:
    """An overlay union: ``lowers`` topmost first, all paths relative to ``cwd`` or absolute.

    ``upper`` and ``work`` are both set (a writable union, as a build step uses) or both None
    (a read-only union of the lowers alone, which the kernel allows only for two or more).
    ``source`` is the name mountinfo shows for the mount."""

    lowers: tuple[str, ...]
    upper: str | None = None
    work: str | None = None
    target: str
    cwd: str
    source: str = "overlay"
    #: mounted in a user namespace (pybuild runs rootless): overlay's xattrs are user.overlay.*
    userxattr: bool = field(default_factory=userns.in_user_namespace)

    @property
    def read_only(self) -> bool:
        return self.upper is None

    @property
    def features(self) -> str:
        if self.userxattr:
            return USERNS_FEATURES
        return READ_ONLY_FEATURES if self.read_only else OVERLAY_FEATURES

    @property
    def uses_mount_api(self) -> bool:
        """True when the classic option string would not fit in one page of mount(2) data."""
        return len(self._classic_options()) > os.sysconf("SC_PAGE_SIZE") - 1

    @property
    def options(self) -> str:
        """What is mounted, for people: the literal mount(2) data, or for the new mount API
        ``lowerdir+=<top> … lowerdir+=<bottom> (N lowers, new mount API),upperdir=…``."""
        if not self.uses_mount_api:
            return self._classic_options()
        lower = (f"lowerdir+={self.lowers[0]} … lowerdir+={self.lowers[-1]} "
                 f"({len(self.lowers)} lowers, new mount API)")
        return ",".join([lower, *(f"{k}={v}" for k, v in self._upper_params()), self.features])

    def check(self) -> None:
        """Refuse what the kernel would refuse (or, for mount(2), silently truncate)."""
        if not self.lowers:
            raise SandboxError("an overlay needs at least one lower layer")
        if (self.upper is None) != (self.work is None):
            raise SandboxError("internal error: an overlay needs both an upper and a work dir, or neither")
        if self.read_only and len(self.lowers) < 2:
            raise SandboxError("a read-only overlay needs at least two lower layers")
        if len(self.lowers) > MAX_LOWERS:
            raise SandboxError(f"too many layers to mount ({len(self.lowers)} lower dirs): "
                               f"overlayfs stacks at most {MAX_LOWERS} layers")

    def _classic_options(self) -> str:
        lower = ":".join(_escape(p) for p in self.lowers)
        upper = "".join(f",{k}={_escape(v)}" for k, v in self._upper_params())
        return f"lowerdir={lower}{upper},{self.features}"

    def _upper_params(self) -> list[tuple[str, str]]:
        if self.upper is None or self.work is None:
            return []
        return [("upperdir", self.upper), ("workdir", self.work)]


def _escape(path: str) -> str:
    return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    rc = _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data))
    if rc != 0:
        err = ctypes.get_errno()
        raise SandboxError(f"mount {fstype or 'bind'} on {target}: {os.strerror(err)}")


def umount(target: str, flags: int = 0) -> None:
    if _libc.umount2(_b(target), flags) != 0:
        err = ctypes.get_errno()
        raise SandboxError(f"umount {target}: {os.strerror(err)}")


def mount_overlay(m: OverlayMount, *, flags: int = 0) -> None:
    """Mount ``m`` in the current mount namespace, with mount ``flags`` (MS_NOSUID, MS_NODEV,
    MS_NOEXEC) from the start.  Changes the process's cwd to ``m.cwd`` (relative lowers,
    upper and work are resolved there)."""
    m.check()
    os.chdir(m.cwd)
    if m.uses_mount_api:
        _mount_overlay_api(m, flags)
    else:
        mount(m.source, m.target, "overlay", (MS_RDONLY if m.read_only else 0) | flags, m.options)


def _mount_overlay_api(m: OverlayMount, flags: int = 0) -> None:
    """fsopen → one fsconfig per parameter → create → fsmount → move_mount onto ``m.target``."""
    what = f"mount overlay on {m.target} ({len(m.lowers)} lowers, new mount API)"
    fd = _syscall(SYS_FSOPEN, b"overlay", FSOPEN_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise SandboxError(f"{what}: fsopen: {os.strerror(err)} (the new mount API needs Linux 5.2 or later)")
    try:
        features = [(k, v) for k, _, v in (f.partition("=") for f in m.features.split(","))]
        params = [("source", m.source), *(("lowerdir+", p) for p in m.lowers), *m._upper_params(), *features]
        for i, (key, value) in enumerate(params):
            # params[1] is the first lowerdir+: refused there, it is a kernel without it
            _fsconfig_string(fd, key, value, what=what,
                             hint=" (lowerdir+ needs Linux 6.8 or later)" if i == 1 else "")
        if _syscall(SYS_FSCONFIG, fd, FSCONFIG_CMD_CREATE, None, None, 0) < 0:
            _raise_fs_error(fd, f"{what}: create")
        # MOUNT_ATTR_NOSUID/NODEV/NOEXEC have the values of MS_NOSUID/NODEV/NOEXEC
        mfd = _syscall(SYS_FSMOUNT, fd, FSMOUNT_CLOEXEC, (MOUNT_ATTR_RDONLY if m.read_only else 0) | flags)
        if mfd < 0:
            _raise_fs_error(fd, f"{what}: fsmount")
        try:
            if _syscall(SYS_MOVE_MOUNT, mfd, b"", AT_FDCWD, os.fsencode(m.target), MOVE_MOUNT_F_EMPTY_PATH) < 0:
                _raise_fs_error(fd, f"{what}: move_mount")
        finally:
            os.close(mfd)
    finally:
        os.close(fd)


def _fsconfig_string(fd: int, key: str, value: str, *, what: str, hint: str) -> None:
    """One ``FSCONFIG_SET_STRING``; a path longer than fsconfig's 255-byte limit is passed as
    an O_PATH fd instead (FSCONFIG_SET_FD: overlayfs takes layers by fd since Linux 6.13)."""
    raw = os.fsencode(value)
    if len(raw) <= MAX_FSCONFIG_VALUE:
        if _syscall(SYS_FSCONFIG, fd, FSCONFIG_SET_STRING, key.encode(), raw, 0) < 0:
            _raise_fs_error(fd, f"{what}: {key}={value}", hint)
        return
    try:
        dfd = os.open(value, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise SandboxError(f"{what}: {key}={value}: {e.strerror}") from e
    try:
        if _syscall(SYS_FSCONFIG, fd, FSCONFIG_SET_FD, key.encode(), None, dfd) < 0:
            _raise_fs_error(fd, f"{what}: {key}={value}",
                            f" (a path over {MAX_FSCONFIG_VALUE} bytes is passed by fd: Linux 6.13 or later)")
    finally:
        os.close(dfd)


def _raise_fs_error(fd: int, action: str, hint: str = "") -> NoReturn:
    """Raise SandboxError for the failed call, with the messages the kernel logged on the
    filesystem context ``fd`` ("e overlay: too many lower directories, limit is 500")."""
    err = ctypes.get_errno()
    messages: list[str] = []
    while len(messages) < 16:
        try:
            line = os.read(fd, 4096)
        except OSError:                       # ENODATA: the log is empty
            break
        if not line:
            break
        text = line.decode(errors="replace").strip()
        messages.append(text[2:] if text[1:2] == " " and text[:1] in "ewi" else text)
    detail = f": {'; '.join(messages)}" if messages else ""
    raise SandboxError(f"{action}: {os.strerror(err)}{detail}{hint}")


def _syscall(number: int, *args: int | bytes | None) -> int:
    """syscall(2) with every integer widened to a C long (variadic: no argtypes)."""
    conv = [a if a is None or isinstance(a, bytes) else ctypes.c_long(a) for a in args]
    return _libc.syscall(ctypes.c_long(number), *conv)


def make_mounts_private() -> None:
    """After unshare(CLONE_NEWNS): stop our mounts propagating back to the host."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)


@dataclass(frozen=True)
class MountEntry:
    """One line of /proc/self/mountinfo: mount point, filesystem type, source, super options."""

    point: str
    fstype: str
    source: str
    options: str


def mounts() -> list[MountEntry]:
    """The mounts of this mount namespace, in /proc/self/mountinfo order (later is on top)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            out.append(MountEntry(_unescape(fields[4]), fields[sep + 1], _unescape(fields[sep + 2]),
                                  fields[sep + 3] if len(fields) > sep + 3 else ""))
    return out


def mounts_under(path: str) -> list[str]:
    """Mount points at or below ``path`` in this process's namespace, deepest first."""
    prefix = os.path.abspath(path)
    found = [m.point for m in mounts() if m.point == prefix or m.point.startswith(prefix + "/")]
    return sorted(found, key=len, reverse=True)


def _unescape(field: str) -> str:
    """mountinfo's octal escapes (``\\040`` for a space) → the name."""
    raw = field.encode()
    out, i = bytearray(), 0
    while i < len(raw):
        if raw[i:i + 1] == b"\\" and raw[i + 1:i + 4].isdigit():
            out.append(int(raw[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return os.fsdecode(bytes(out))


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)
