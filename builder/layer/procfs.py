"""The /proc a RUN sees: mounted fresh for its pid namespace, with runc's masked and read-only
paths (docker's defaults, moby oci/defaults.go), and /sys's masked paths.

- **masked** — a directory is covered by an empty read-only tmpfs, a file by a bind mount of
  the step's ``/dev/null``: ``/proc/kcore`` (the host's memory), ``/proc/keys`` (keys of the
  whole host), ``/proc/timer_list``, ``/proc/sched_debug`` (host processes and timers),
  ``/sys/firmware`` (ACPI tables, EFI variables), …
- **read-only** — bound onto themselves and remounted read-only: ``/proc/sys`` (every sysctl:
  ``kernel.core_pattern`` would run a host program as root, and the step shares the host's
  network namespace by default), ``/proc/sysrq-trigger`` (reboot, crash), ``/proc/irq``,
  ``/proc/bus``, ``/proc/fs``.

A path the running kernel does not have is skipped, as runc skips it.  These mounts live in
the command's own mount namespace (layer/confine.py) and on /proc and /sys, never on the
root: nothing here can reach a layer.  /sys itself is mounted read-only by the sandbox.
"""

from __future__ import annotations

import os
import stat

from builder.layer import overlay
from builder.layer.overlay import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT

#: Covered so that they read as empty (docker's MaskedPaths).
MASKED = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
          "/sys/firmware", "/sys/devices/virtual/powercap")
#: Visible but read-only (docker's ReadonlyPaths).
READ_ONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

_PROC_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC


def mount_proc(root: str) -> None:
    """Mount a new proc on ``root``/proc (call it as PID 1 of the step's pid namespace, so it
    shows the step's processes only), then apply the read-only and masked paths."""
    overlay.mount("proc", f"{root}/proc", "proc", _PROC_FLAGS)
    for rel in READ_ONLY:
        path = root + rel
        if _kind(path) is not None:
            overlay.mount(path, path, None, MS_BIND | MS_REC)
            overlay.mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | _PROC_FLAGS)
    for rel in MASKED:
        path = root + rel
        kind = _kind(path)
        if kind == "dir":
            overlay.mount("tmpfs", path, "tmpfs", MS_RDONLY)
        elif kind == "file":
            overlay.mount(f"{root}/dev/null", path, None, MS_BIND)


def _kind(path: str) -> str | None:
    """"dir", "file" (anything else that exists), or None when the kernel has no such path."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return "dir" if stat.S_ISDIR(st.st_mode) else "file"
