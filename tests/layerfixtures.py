"""Shared helpers for the layer tests: real overlay mounts and hand-built tars."""

from __future__ import annotations

import contextlib
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.layer import whiteout

#: A valid VFS_CAP_REVISION_2 blob (no capabilities set), 20 bytes.
CAP_V2 = b"\x01\x00\x00\x02\x00\x04\x00\x00" + b"\x00" * 12

#: Root is needed (mknod, overlay, chown); without it the test FAILS via conftest's
#: ``root_required`` fixture — CI runs as root, and nothing may skip there.
needs_root = pytest.mark.usefixtures("root_required")


@dataclass
class Overlay:
    lower: Path
    upper: Path
    merged: Path


@contextlib.contextmanager
def overlay(tmp: Path, lower: Path | None = None) -> Iterator[Overlay]:
    """Mount an overlay on ``tmp/merged`` (lower ``tmp/lower`` unless given); always unmounted."""
    lower = lower or tmp / "lower"
    upper, work, merged = tmp / "upper", tmp / "work", tmp / "merged"
    for d in (lower, upper, work, merged):
        d.mkdir(exist_ok=True)
    opts = (f"lowerdir={lower},upperdir={upper},workdir={work},"
            "index=off,redirect_dir=off,metacopy=off")
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], check=True)
    try:
        yield Overlay(lower, upper, merged)
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def member(name: str, kind: bytes = tarfile.REGTYPE, *, data: bytes = b"", mode: int = 0o644,
           uid: int = 0, gid: int = 0, mtime: int = 1_600_000_000, linkname: str = "",
           dev: tuple[int, int] = (0, 0), pax: dict[str, str] | None = None
           ) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = mtime
    info.linkname = linkname
    info.devmajor, info.devminor = dev
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if pax:
        info.pax_headers = dict(pax)
    return info, data


def make_tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    """A PAX tar of the given members, in order (duplicates and hostile names allowed)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def kinds(entries) -> list[tuple[str, str]]:
    return [(e.kind, e.path) for e in entries]


def make_layer_dir(path: Path, spec: dict[str, str]) -> Path:
    """An overlay-format layer dir made by hand.  spec: rel path → "d" dir, "do" opaque dir,
    "f:<text>" file, "w" whiteout (char 0:0), "l:<target>" symlink."""
    path.mkdir()
    for rel, kind in sorted(spec.items()):
        p = path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if kind in ("d", "do"):
            p.mkdir(exist_ok=True)
            if kind == "do":
                os.setxattr(p, whiteout.OPAQUE_XATTR, whiteout.OPAQUE_VALUE)
        elif kind == "w":
            os.mknod(p, stat.S_IFCHR, os.makedev(0, 0))
        elif kind.startswith("l:"):
            os.symlink(kind[2:], p)
        else:
            p.write_text(kind[2:])
    return path
