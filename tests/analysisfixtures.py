"""Layers for the analysis tests, written as entry lists (pure) or as real layer tars and
image archives in tmp: files with content, directories, whiteouts and opaque markers."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path

import zstandard

from builder.analysis.entries import DIR, REG, Entry


def f(path: str, data: bytes | str, mode: int = 0o644) -> Entry:
    """A regular file of ``data``."""
    raw = data.encode() if isinstance(data, str) else data
    return Entry(path, REG, len(raw), mode, digest="sha256:" + hashlib.sha256(raw).hexdigest())


def d(path: str, mode: int = 0o755) -> Entry:
    return Entry(path, DIR, 0, mode | 0o040000)


def wh(path: str) -> Entry:
    """The whiteout deleting ``path``."""
    parent, _, name = path.rpartition("/")
    return Entry(f"{parent}/.wh.{name}" if parent else f".wh.{name}", REG, 0, 0o600,
                 digest="sha256:" + hashlib.sha256(b"").hexdigest())


def opq(directory: str) -> Entry:
    return Entry(f"{directory}/.wh..wh..opq", REG, 0, 0o600, digest="sha256:" + hashlib.sha256(b"").hexdigest())


# -- real tars -----------------------------------------------------------------------------------
#: (path, content or None for a directory or a symlink target "->x", mode)
Member = tuple[str, "bytes | str | None", int]


def layer_tar(members: Sequence[Member]) -> bytes:
    """A layer tar: ``(path, bytes, mode)`` a file, ``(path, None, mode)`` a directory,
    ``(path, "->target", 0o777)`` a symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data, mode in members:
            ti = tarfile.TarInfo(path)
            ti.mode, ti.mtime = mode, 0
            if data is None:
                ti.type = tarfile.DIRTYPE
                tar.addfile(ti)
            elif isinstance(data, str) and data.startswith("->"):
                ti.type, ti.linkname = tarfile.SYMTYPE, data[2:]
                tar.addfile(ti)
            else:
                raw = data.encode() if isinstance(data, str) else data
                ti.size = len(raw)
                tar.addfile(ti, io.BytesIO(raw))
    return buf.getvalue()


def compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def config_of(layers: Sequence[bytes], commands: Sequence[str]) -> bytes:
    """An image config for uncompressed ``layers`` (their diff_ids), one history entry each."""
    return json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]},
        "history": [{"created_by": f"/bin/sh -c {c}"} for c in commands]}).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode = len(data), 0o644
    tar.addfile(ti, io.BytesIO(data))


def docker_archive(out: Path, layers: Sequence[bytes], commands: Sequence[str], *,
                   compression: str = "none", order: Sequence[int] | None = None) -> Path:
    """A docker-archive whose manifest lists the layers ``order`` (indexes into ``layers``,
    default all once: a repeated index lists one blob twice, as containerd's exports do)."""
    order = list(range(len(layers))) if order is None else list(order)
    blobs = [compress(x, compression) for x in layers]
    config = config_of([layers[i] for i in order], [commands[i] for i in order])
    names = [f"blobs/sha256/{hashlib.sha256(b).hexdigest()}" for b in blobs]
    with tarfile.open(out, "w") as tar:
        for name, blob in dict(zip(names, blobs)).items():
            _add(tar, name, blob)
        config_name = f"blobs/sha256/{hashlib.sha256(config).hexdigest()}"
        _add(tar, config_name, config)
        _add(tar, "manifest.json", json.dumps([{"Config": config_name, "RepoTags": ["t:1"],
                                                 "Layers": [names[i] for i in order]}]).encode())
    return out


def oci_layout(out: Path, layers: Sequence[bytes], commands: Sequence[str], *, compression: str = "gzip",
               as_tar: bool = True) -> Path:
    """An OCI image layout (a tar, or a directory when ``as_tar`` is False)."""
    media = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
             "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
             "none": "application/vnd.oci.image.layer.v1.tar"}[compression]
    blobs = [compress(x, compression) for x in layers]
    config = config_of(layers, commands)
    files: dict[str, bytes] = {}

    def put(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        files[f"blobs/sha256/{digest[7:]}"] = data
        return digest
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config),
                   "size": len(config)},
        "layers": [{"mediaType": media, "digest": put(b), "size": len(b)} for b in blobs]}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest),
         "size": len(manifest)}]}).encode()
    files["index.json"] = index
    files["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    if as_tar:
        with tarfile.open(out, "w") as tar:
            for name, data in files.items():
                _add(tar, name, data)
    else:
        for name, data in files.items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(data)
    return out
