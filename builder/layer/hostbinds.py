"""What a RUN sandbox takes from the host by bind mount when pybuild runs in a user namespace.

Two things of the sandbox cannot be made there: device nodes (mknod of a real device needs
CAP_MKNOD in the initial namespace) and sysfs (only the owner of the network namespace may mount
it, and a RUN keeps the host's network).  As runc and podman do rootless, the host's own nodes
are bind-mounted onto empty files, and the host's /sys is bind-mounted read-only.  As root,
nodes are made and sysfs is mounted, as before.  Either way nothing here reaches a layer: it
all lives in the step's private mount namespace, above the init layer's mount points.
"""

from __future__ import annotations

import os
import stat

from builder.errors import SandboxError
from builder.layer import overlay, userns
from builder.layer.overlay import MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT

MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_RELATIME = 1 << 21
#: statvfs f_flag bits → the mount flags a remount must repeat: in a user namespace the kernel
#: locks these flags of a mount it inherited, and refuses a remount that would clear them.
_LOCKED = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
           (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME))


def make_device(path: str, major: int, minor: int) -> None:
    """The sandbox's device node ``path`` (in its /dev tmpfs), mode 0666: made with mknod as
    root; in a user namespace an empty file with the host's node of that name bound on it."""
    if not userns.in_user_namespace():
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(path, 0o666)
        return
    host = os.path.join("/dev", os.path.basename(path))
    try:
        st = os.stat(host)
    except OSError as e:
        raise SandboxError(f"bind the host's {host} into the sandbox: {e.strerror}") from e
    if not stat.S_ISCHR(st.st_mode) or (os.major(st.st_rdev), os.minor(st.st_rdev)) != (major, minor):
        raise SandboxError(f"bind the host's {host} into the sandbox: it is not char device {major},{minor}")
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
    overlay.mount(host, path, None, MS_BIND)


def mount_sys(target: str) -> None:
    """/sys of the sandbox on ``target``, read-only: a new sysfs as root; in a user namespace
    the host's /sys (with what is mounted below it) bound and made read-only."""
    if not userns.in_user_namespace():
        overlay.mount("sysfs", target, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        # read-only as a mount too (the superblock may be the host's): the flags said again,
        # since a bind remount sets exactly the flags it is given
        overlay.mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        return
    overlay.mount("/sys", target, None, MS_BIND | MS_REC)
    flags = os.statvfs(target).f_flag
    kept = 0
    for st_flag, ms_flag in _LOCKED:
        if flags & st_flag:
            kept |= ms_flag
    overlay.mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)


def unmount_sys(target: str) -> None:
    """Before the sandbox's mounts are taken down one by one: in a user namespace, detach the
    bound /sys tree whole, since the kernel locks the host's mounts below it to it (one of
    them alone cannot be unmounted, EINVAL).  As root, nothing (sysfs has no submounts)."""
    if userns.in_user_namespace():
        overlay.umount(target, MNT_DETACH)
