"""The minimal /dev of a RUN, as docker's: a 64 MiB tmpfs holding null, zero, full, random,
urandom and tty, the fd/stdin/stdout/stderr/ptmx links, a private devpts, /dev/shm and
/dev/mqueue.

One thing differs, because pybuild has no device cgroup (docker's way to let a container
``mknod`` a disk yet never open it): the /dev tmpfs is mounted ``nodev``, and each of the six
device nodes is bound onto itself first, so the node keeps a mount of its own that still
opens.  A node a RUN creates in /dev — like one it creates anywhere else in its root
(layer/confine.py ``seal_devices``) — can be made, listed and saved in a layer, but opening it
fails with EACCES: it never reaches a device of the host.  (In docker's device cgroup a new
node of an allowed device — a second /dev/null — would open; here none does.)

Everything here is mounted on the /dev the init layer provides, so nothing reaches a layer.
"""

from __future__ import annotations

import os

from builder.layer import hostbinds, overlay, userns
from builder.layer.overlay import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_REMOUNT, MS_STRICTATIME

#: (name, major, minor): docker's default devices, mode 0666 and owned by root.
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
         ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"))
_DEV_FLAGS = MS_NOSUID | MS_STRICTATIME
_SPECIAL = MS_NOSUID | MS_NODEV | MS_NOEXEC


def mount_dev(root: str) -> None:
    """Mount the step's /dev on ``root``/dev (in the sandbox's mount namespace)."""
    dev = f"{root}/dev"
    overlay.mount("tmpfs", dev, "tmpfs", _DEV_FLAGS, "mode=755,size=65536k")
    for name, major, minor in DEVICES:
        path = f"{dev}/{name}"
        hostbinds.make_device(path, major, minor)       # mknod; rootless: the host's node bound
        overlay.mount(path, path, None, MS_BIND)       # a mount of its own: opens once /dev is nodev
    for name, target in LINKS:
        os.symlink(target, f"{dev}/{name}")
    os.mkdir(f"{dev}/pts", 0o755)
    tty_group = ",gid=5" if userns.gid_mapped(5) else ""     # docker's tty group (rootless: if mapped)
    overlay.mount("devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                  "newinstance,ptmxmode=0666,mode=0620" + tty_group)
    os.mkdir(f"{dev}/shm", 0o1777)
    overlay.mount("shm", f"{dev}/shm", "tmpfs", _SPECIAL, "mode=1777,size=65536k")
    os.mkdir(f"{dev}/mqueue", 0o1777)
    overlay.mount("mqueue", f"{dev}/mqueue", "mqueue", _SPECIAL)     # the step's own ipc namespace
    overlay.mount(None, dev, None, MS_REMOUNT | MS_BIND | _DEV_FLAGS | MS_NODEV)
