"""Small artefacts for the export tests, built in tmp: a rootfs, layer tars, archives by hand."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

from builder.oci.digest import sha256_bytes

HELLO = b"hello from pybuild\n"


def make_rootfs(root: Path, *, busybox: bool = False) -> Path:
    """A tiny rootfs: files, a dir, a symlink, a hardlink (and /bin/busybox + cat if asked)."""
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hello.txt").write_bytes(HELLO)
    (root / "etc" / "hello.link").symlink_to("hello.txt")
    os.link(root / "etc" / "hello.txt", root / "etc" / "hello.hard")
    (root / "data" / "sub").mkdir(parents=True)
    (root / "data" / "sub" / "x.bin").write_bytes(bytes(range(256)) * 4)
    (root / "data" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "data" / "run.sh").chmod(0o755)
    (root / "tmp").mkdir(mode=0o1777)
    (root / "tmp").chmod(0o1777)
    if busybox:
        (root / "bin").mkdir()
        found = shutil.which("busybox")
        if found is None:
            raise AssertionError("busybox is not installed: run the CI install step "
                                 "(apt-get install -y busybox-static) to get it")
        shutil.copy2(found, root / "bin" / "busybox")     # must be the static build
        os.link(root / "bin" / "busybox", root / "bin" / "cat")
        (root / "bin" / "sh").symlink_to("busybox")
    return root


def tar_dir(src: Path, out: Path, *, compress: str = "") -> Path:
    """``tar -C src -c .`` with root ownership; ``compress`` "" / "gz" / "bz2" / "xz"."""
    def owned(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        return ti
    with tarfile.open(out, f"w:{compress}" if compress else "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(src, arcname=".", filter=owned)
    return out


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer tar of regular files (parents added as dirs), docker-like padding."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for name, data in files.items():
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    ti = tarfile.TarInfo(d)
                    ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(ti)
                    dirs.add(d)
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o644
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def image_config(diff_ids: list[str], **extra: Any) -> bytes:
    cfg = {"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"]},
           "created": "2024-01-01T00:00:00Z",
           "history": [{"created_by": f"layer {i}"} for i in range(len(diff_ids))],
           "rootfs": {"type": "layers", "diff_ids": diff_ids}, **extra}
    return json.dumps(cfg).encode()


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode = len(data), 0o644
    tar.addfile(ti, io.BytesIO(data))


def add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname = tarfile.SYMTYPE, target
    tar.addfile(ti)


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def rewrite_archive(src: Path, dst: Path, *, drop: tuple[str, ...] = (),
                    replace: dict[str, bytes] | None = None) -> Path:
    """Copy an archive tar, dropping members and replacing the content of others."""
    replace = replace or {}
    with tarfile.open(src) as tin, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as tout:
        for m in tin.getmembers():
            name = m.name.removeprefix("./")
            if name in drop:
                continue
            if name in replace:
                add_bytes(tout, m.name, replace[name])
            elif m.isfile():
                tout.addfile(m, tin.extractfile(m))
            else:
                tout.addfile(m)
    return dst


def read_member(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def digest(data: bytes) -> str:
    return sha256_bytes(data)
