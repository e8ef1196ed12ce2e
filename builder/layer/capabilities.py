"""Linux capabilities: their names, docker's default set, and dropping to it before a RUN execs.

A RUN keeps docker's default 14 capabilities (moby's ``DefaultCapabilities``) and nothing
else: the bounding set is cut to them, so no exec — of a setuid-root file or a file with
capabilities — can ever bring one of the others back; permitted and effective hold them for
root; inheritable and ambient are empty (docker leaves inheritable empty since 20.10.14,
CVE-2022-24769).  After that a ``USER`` other than root has none (the kernel clears permitted
and effective when uid 0 becomes another uid), exactly as in a docker container.

``no_new_privs`` stays off, as docker leaves it: a setuid binary inside the image still works
inside the step (it can only reach container root, within this bounding set).

One difference from docker, on purpose: a RUN on the host's network (``--network=default``)
loses CAP_NET_RAW as well.  docker's RUN containers have a network namespace of their own, so
a raw socket there sees only the container's traffic; pybuild's default RUN shares the host's,
where CAP_NET_RAW would let a step sniff and forge the host's packets (AF_PACKET).  With
``--network=none`` the step has its own namespace and keeps all 14, as docker.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

from builder.errors import SandboxError

#: Capability numbers (linux/capability.h), in order.
NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
NUMBER = {name: n for n, name in enumerate(NAMES)}

#: docker's default capabilities (moby oci/caps DefaultCapabilities), in docker's order.
DOCKER_DEFAULT = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
                  "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")

PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class CapabilitySet:
    """A set of capabilities by name; ``mask`` is its bit mask as /proc/PID/status shows it."""

    names: frozenset[str]

    @classmethod
    def of(cls, names: tuple[str, ...] | frozenset[str]) -> CapabilitySet:
        unknown = set(names) - set(NUMBER)
        if unknown:
            raise SandboxError(f"internal error: unknown capabilities {sorted(unknown)}")
        return cls(frozenset(names))

    @classmethod
    def from_mask(cls, mask: int) -> CapabilitySet:
        return cls(frozenset(name for n, name in enumerate(NAMES) if mask >> n & 1))

    @property
    def mask(self) -> int:
        return sum(1 << NUMBER[name] for name in self.names)

    def without(self, *names: str) -> CapabilitySet:
        return CapabilitySet(self.names - set(names))

    def sorted(self) -> list[str]:
        """The names in capability-number order."""
        return [name for name in NAMES if name in self.names]


def for_run(network: str) -> CapabilitySet:
    """What a RUN keeps: docker's default set; without NET_RAW on the host's network."""
    keep = CapabilitySet.of(DOCKER_DEFAULT)
    return keep if network == "none" else keep.without("NET_RAW")


def last_cap() -> int:
    """The highest capability number the running kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return len(NAMES) - 1


def drop_bounding(keep: CapabilitySet) -> None:
    """Remove every capability but ``keep`` from the bounding set (needs CAP_SETPCAP), and
    clear the ambient set."""
    for n in range(last_cap() + 1):
        if n < len(NAMES) and NAMES[n] in keep.names:
            continue
        if _libc.prctl(PR_CAPBSET_DROP, n, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            raise SandboxError(f"drop capability {n} from the bounding set: {os.strerror(err)}")
    if _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise SandboxError(f"clear the ambient capabilities: {os.strerror(err)}")


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def set_process(keep: CapabilitySet) -> None:
    """Permitted and effective become ``keep``, inheritable empty (capset(2))."""
    header = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    for i in range(2):
        word = keep.mask >> (32 * i) & 0xFFFFFFFF
        data[i].effective = data[i].permitted = word
        data[i].inheritable = 0
    if _libc.capset(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise SandboxError(f"capset: {os.strerror(err)}")


@dataclass(frozen=True)
class ProcessCapabilities:
    """The five sets of a process, from /proc/PID/status."""

    inheritable: CapabilitySet
    permitted: CapabilitySet
    effective: CapabilitySet
    bounding: CapabilitySet
    ambient: CapabilitySet


def of_process(pid: int | str = "self") -> ProcessCapabilities:
    """The capability sets of process ``pid`` (``self`` by default)."""
    fields: dict[str, CapabilitySet] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
                fields[key] = CapabilitySet.from_mask(int(value.strip(), 16))
    empty = CapabilitySet(frozenset())
    return ProcessCapabilities(fields.get("CapInh", empty), fields.get("CapPrm", empty),
                               fields.get("CapEff", empty), fields.get("CapBnd", empty),
                               fields.get("CapAmb", empty))
