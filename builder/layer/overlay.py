"""The only caller of mount(2): overlay unions and the few mounts a RUN sandbox needs.

An overlay is described by an ``OverlayMount`` value first (pure: its option string is what
``--explain`` shows), then mounted.  Lower layers are given as paths relative to ``cwd`` (the
store root) through the store's short ``l/<id>`` links, so ~250 layers fit in one page of
mount options; mounting happens in a child process, so the chdir is harmless.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass

from builder.errors import SandboxError

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

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


@dataclass(frozen=True)
class OverlayMount:
    """An overlay union: ``lowers`` topmost first, all paths relative to ``cwd`` or absolute."""

    lowers: tuple[str, ...]
    upper: str
    work: str
    target: str
    cwd: str

    @property
    def options(self) -> str:
        lower = ":".join(_escape(p) for p in self.lowers)
        return f"lowerdir={lower},upperdir={_escape(self.upper)},workdir={_escape(self.work)},{OVERLAY_FEATURES}"

    def check(self) -> None:
        if not self.lowers:
            raise SandboxError("an overlay needs at least one lower layer")
        if len(self.options) > os.sysconf("SC_PAGE_SIZE") - 1:
            # The kernel silently truncates longer option strings (see docs/): refuse instead.
            raise SandboxError(f"too many layers to mount ({len(self.lowers)} lower dirs): "
                               "the overlay options exceed one page")


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


def mount_overlay(m: OverlayMount) -> None:
    """Mount ``m`` in the current mount namespace.  Changes the process's cwd to ``m.cwd``."""
    m.check()
    os.chdir(m.cwd)
    mount("overlay", m.target, "overlay", 0, m.options)


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
