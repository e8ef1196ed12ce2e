"""What the running kernel offers pybuild, found by trying it (for ``pybuild info``).

Each probe makes the smallest call that tells the feature apart — a syscall that is missing
answers ENOSYS, one that is there answers anything else — and never changes the host: the
user-namespace probe mounts only inside a throw-away child, on a scratch dir it then removes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tempfile
from dataclasses import dataclass

SYS_OPENAT2 = 437               # the same number on every architecture (424 and up are shared)
SYS_MOUNT_SETATTR = 442
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
AT_FDCWD = -100

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


@dataclass(frozen=True)
class Feature:
    """One kernel feature: whether it is there, and a few words on what it is for."""

    name: str
    available: bool
    detail: str


def release() -> str:
    u = os.uname()
    return f"{u.sysname} {u.release} {u.machine}"


def features() -> list[Feature]:
    return [
        Feature("openat2", _has_syscall(SYS_OPENAT2, AT_FDCWD, b"/", None, 0),
                "RESOLVE_IN_ROOT: ADD/COPY resolve paths inside the image (Linux 5.6)"),
        Feature("overlay in a user namespace", overlay_in_userns(),
                "rootless builds on overlayfs, with userxattr (Linux 5.11)"),
        Feature("idmapped mounts", _has_syscall(SYS_MOUNT_SETATTR, -1, None, 0, None, 0),
                "mount_setattr(MOUNT_ATTR_IDMAP) (Linux 5.12)"),
        Feature("seccomp filters", _seccomp_filters(), "the RUN's syscall filter"),
    ]


def _has_syscall(number: int, *args: int | bytes | None) -> bool:
    """False only when the kernel answers ENOSYS (the arguments are made to fail otherwise)."""
    conv = [a if a is None or isinstance(a, bytes) else ctypes.c_long(a) for a in args]
    rc = _libc.syscall(ctypes.c_long(number), *conv)
    if rc < 0:
        return ctypes.get_errno() != errno.ENOSYS
    if number == SYS_OPENAT2:
        os.close(rc)
    return True


def _seccomp_filters() -> bool:
    try:
        with open("/proc/self/status") as f:
            return any(line.startswith("Seccomp:") for line in f)
    except OSError:
        return False


def overlay_in_userns() -> bool:
    """Can a new user namespace (mapping this process's uid to root) mount overlayfs?  Tried
    in a forked child on a scratch dir; the mount dies with the child."""
    scratch = tempfile.mkdtemp(prefix="pybuild-probe-")
    try:
        for sub in ("lower", "upper", "work", "merged"):
            os.mkdir(os.path.join(scratch, sub))
        uid, gid = os.geteuid(), os.getegid()
        pid = os.fork()
        if pid == 0:                                        # child: never returns
            ok = False
            try:
                if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0:
                    _write("/proc/self/uid_map", f"0 {uid} 1")
                    _write("/proc/self/setgroups", "deny")
                    _write("/proc/self/gid_map", f"0 {gid} 1")
                    data = (f"lowerdir={scratch}/lower,upperdir={scratch}/upper,"
                            f"workdir={scratch}/work,userxattr").encode()
                    ok = _libc.mount(b"overlay", f"{scratch}/merged".encode(), b"overlay", 0, data) == 0
            finally:
                os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
