"""Confinement of a RUN (and of ``pybuild run``), as docker confines a container by default.

The sandbox (layer/sandbox.py) gives each step its own mount, pid, uts and ipc namespaces (and
with ``--network=none`` a network namespace); this module adds what makes the step's root a
boundary against a hostile Buildfile author, in the order the RUN child applies it:

1. ``seal_devices`` — once every mount of the root is in place: ``nodev`` on each of them (the
   overlay root, RUN --mount binds and caches), keeping their other flags.  A device node a
   step makes (mknod is allowed, as in docker) never opens a device of the host.
2. ``enter_root`` — in the command's process: a mount namespace of its own, a fresh /proc with
   the masked and read-only paths (layer/procfs.py), then ``pivot_root`` into the root and the
   old root *detached*: the host's tree is not under the step's root, nor anywhere in its
   mount namespace, so no ``chroot``/``..`` trick and no ``/proc/PID/root`` leads back to it.
3. ``drop_to`` — just before exec: the bounding set cut to docker's 14 capabilities
   (layer/capabilities.py), docker's seccomp profile installed (layer/seccomp.py,
   layer/seccomp_profile.py), the user and groups of USER, then permitted and effective set
   to what is left (nothing, for a user other than root).

``prepare`` compiles the filter in the sandbox child, where a failure is a clean SandboxError;
everything after the fork is kernel calls.  ``describe`` says what is in force, for
``pybuild info``.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

from builder.errors import SandboxError
from builder.layer import capabilities, devfs, overlay, procfs, seccomp, seccomp_profile, userns
from builder.layer.capabilities import CapabilitySet
from builder.layer.overlay import MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REMOUNT

CLONE_NEWNS = 0x00020000
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME = 1 << 10, 1 << 11, 1 << 21, 1 << 24
#: statvfs(3)'s f_flag bit → the mount(2) flag that keeps it
_KEPT_FLAGS = ((os.ST_RDONLY, MS_RDONLY), (os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV),
               (os.ST_NOEXEC, MS_NOEXEC), (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME),
               (os.ST_RELATIME, MS_RELATIME))

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Confinement:
    """What a step's command is confined by: the capabilities it keeps and its seccomp filter."""

    capabilities: CapabilitySet
    filter: seccomp.Filter


def prepare(network: str) -> Confinement:
    """The confinement of a step on ``network`` ("none" or the host's): docker's default
    capabilities (less NET_RAW on the host's network) and docker's seccomp profile for them."""
    keep = capabilities.for_run(network)
    rules = seccomp_profile.rules(keep.names, os.uname().machine)
    return Confinement(keep, seccomp.compile_filter(rules))


# -- 1. in the sandbox child, with the root's mounts in place ---------------------------------
def seal_devices(root: str) -> None:
    """Add ``nodev`` to every mount at or under ``root`` but /dev's (layer/devfs.py makes
    that one nodev itself, keeping its own device nodes working)."""
    dev = os.path.join(root, "dev")
    for point in overlay.mounts_under(root):
        if point == dev or point.startswith(dev + "/"):
            continue
        add_flags(point, MS_NODEV)


def add_flags(point: str, flags: int) -> None:
    """Remount the mount at ``point`` with ``flags`` added to the ones it has (a bind remount
    replaces every per-mount flag, so the others — ro, nosuid, noexec, atime — are given back)."""
    have = os.statvfs(point).f_flag
    keep = sum(ms_bit for st_bit, ms_bit in _KEPT_FLAGS if have & st_bit)
    if not have & (os.ST_NOATIME | os.ST_RELATIME):
        keep |= MS_STRICTATIME
    overlay.mount(None, point, None, MS_REMOUNT | MS_BIND | keep | flags)


# -- 2. in the command's process (PID 1 of the step) -------------------------------------------
def enter_root(root: str) -> None:
    """Leave the sandbox child's mount namespace for one of this process's own, mount /proc,
    and make ``root`` the root: ``pivot_root(".", ".")`` stacks the old root on the new one,
    and the lazy unmount takes it away (runc's way; no directory for it in the layer)."""
    if _libc.unshare(CLONE_NEWNS) != 0:
        raise SandboxError(f"unshare the command's mount namespace: {os.strerror(ctypes.get_errno())}")
    procfs.mount_proc(root)
    os.chdir(root)
    if _libc.pivot_root(b".", b".") != 0:
        err = ctypes.get_errno()
        raise SandboxError(f"pivot_root into {root}: {os.strerror(err)} (is pybuild itself in a chroot?)")
    overlay.umount(".", MNT_DETACH)
    os.chdir("/")


# -- 3. just before exec -----------------------------------------------------------------------
def drop_to(confinement: Confinement, *, uid: int, gid: int, groups: list[int]) -> None:
    """Cut the bounding set, install the seccomp filter (it needs CAP_SYS_ADMIN, still held:
    no_new_privs stays off, as in docker), become ``uid``/``gid`` with ``groups``; permitted
    and effective are then ``confinement.capabilities`` for root and empty for anyone else."""
    keep = confinement.capabilities
    capabilities.drop_bounding(keep)
    confinement.filter.install()
    capabilities.set_process(keep)
    userns.set_groups(groups)             # where setgroups is denied (one id mapped), keep them
    os.setgid(gid)
    os.setuid(uid)


# -- for pybuild info ---------------------------------------------------------------------------
def describe() -> dict[str, object]:
    """What confines a RUN on this machine, as plain data (``pybuild info``)."""
    out: dict[str, object] = {
        "namespaces": ["mount", "pid", "uts", "ipc"],
        "network": {"default": "the host's network namespace", "none": "a new network namespace, loopback only"},
        "root": "pivot_root into the union, the old root detached",
        "nodev": "every mount of the root but the runtime's own devices",
        "capabilities": {"none": capabilities.for_run("none").sorted(),
                         "default": capabilities.for_run("default").sorted()},
        "no_new_privs": False,
        "proc_masked": [p for p in procfs.MASKED if os.path.lexists(p)],
        "proc_read_only": [p for p in procfs.READ_ONLY if os.path.lexists(p)],
        "devices": [name for name, _, _ in devfs.DEVICES],
    }
    try:
        f = prepare("none").filter
        out["seccomp"] = {"profile": "docker's default", "rules": f.rules, "instructions": f.instructions,
                          "denied": "EPERM", "enosys_above": f.newest, "libseccomp": seccomp.version()}
    except SandboxError as e:
        out["seccomp"] = {"error": str(e)}
    return out
