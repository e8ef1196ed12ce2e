"""Mount points under the benchmark's dirs, and removing a dir only once nothing is mounted there.

Every builder (and the floor) keeps its storage under the benchmark's temp dir; these two
functions are how that dir, or a part of it, is given back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root`` (from /proc/self/mountinfo), deepest first."""
    prefix = os.path.abspath(root)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def unmount_under(root: Path) -> None:
    """Lazily unmount every mount point at or below ``root``, deepest first."""
    for point in mounts_under(root):
        subprocess.run(["umount", "-l", point], capture_output=True)


def remove_tree(path: Path) -> None:
    """Unmount whatever is left below ``path``, then remove it — but never while something
    is still mounted there (rmtree would reach into the mounted file system)."""
    if not path.exists():
        return
    unmount_under(path)
    left = mounts_under(path)
    if left:
        print(f"bench: not removing {path}: still mounted: {', '.join(left)}", file=sys.stderr)
        return
    shutil.rmtree(path, ignore_errors=True)
