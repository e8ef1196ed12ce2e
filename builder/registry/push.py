"""The write side: ``push`` sends an image from the store to a registry.

Each layer goes out as its compressed blob: the one recorded for its diffID (kept from a pull,
or made by an earlier push) or, the first time, gzip made once (mtime 0, so deterministic) and
kept in the store.  A blob the registry already has (HEAD) is skipped; one it holds in another
repository we know of is mounted; anything else is uploaded (monolithic PUT when small, one
streamed PATCH then PUT when large).  Then the config, then the manifest: OCI media types by
default, Docker schema2 with ``fmt="docker"``.
"""

from __future__ import annotations

import gzip
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field

import requests

from builder.errors import RegistryError
from builder.oci.config import parse_config
from builder.oci.digest import CHUNK, HashingWriter, short_id
from builder.oci.manifest import MEDIA_DOCKER_MANIFEST, MEDIA_OCI_MANIFEST, Descriptor, Manifest
from builder.registry.client import RegistryClient, open_client
from builder.registry.records import CompressedBlob, compressed_blob, remember_compressed, remember_repo, repos_holding
from builder.registry.reference import RegistryRef, parse_reference
from builder.store.store import Store

FORMATS = ("oci", "docker")
MONOLITHIC_MAX = 8 << 20          # bytes; larger blobs are streamed with PATCH
_CONFIG_TYPES = {"oci": "application/vnd.oci.image.config.v1+json",
                 "docker": "application/vnd.docker.container.image.v1+json"}
_MANIFEST_TYPES = {"oci": MEDIA_OCI_MANIFEST, "docker": MEDIA_DOCKER_MANIFEST}
_LAYER_TYPES = {
    ("oci", "gzip"): "application/vnd.oci.image.layer.v1.tar+gzip",
    ("oci", "zstd"): "application/vnd.oci.image.layer.v1.tar+zstd",
    ("oci", "none"): "application/vnd.oci.image.layer.v1.tar",
    ("docker", "gzip"): "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ("docker", "none"): "application/vnd.docker.image.rootfs.diff.tar",
}


@dataclass
class PushResult:
    ref: RegistryRef
    manifest_digest: str = ""
    uploaded: list[str] = field(default_factory=list)     # blob digests sent
    existed: list[str] = field(default_factory=list)      # already in the repository
    mounted: list[str] = field(default_factory=list)      # mounted from another repository


def push(store: Store, image: str, dest: str | None = None, *, fmt: str = "oci",
         insecure: bool = False, session: requests.Session | None = None,
         monolithic_max: int = MONOLITHIC_MAX, bar=None) -> PushResult:
    """Push store image ``image`` (tag or ID) to ``dest`` (default: ``image`` read as a
    reference).  Raises RegistryError; the registry may then hold some blobs but no manifest.
    Layers not compressed yet are gzipped in parallel threads (zlib releases the GIL, so
    every core works); ``bar(description, total)`` draws one progress bar per upload."""
    if fmt not in FORMATS:
        raise RegistryError(f"unknown manifest format {fmt!r} (expected oci or docker)")
    image_id = store.resolve(image)
    ref = parse_reference(dest or image)
    if ref.digest:
        raise RegistryError(f"push {ref.full}: push to a tag, not a digest")
    config = store.image_config(image_id)
    diff_ids = parse_config(config).diff_ids
    client = open_client(store, ref, insecure=insecure, session=session)
    result = PushResult(ref)
    with store.in_use():
        with ThreadPoolExecutor(max(1, min(len(diff_ids), os.cpu_count() or 1))) as pool:
            blobs = list(pool.map(lambda d: compressed_layer(store, d), diff_ids))
        for blob in blobs:
            if (fmt, blob.compression) not in _LAYER_TYPES:
                raise RegistryError(f"push {ref.full}: a {blob.compression} layer cannot go in a "
                                    f"{fmt} manifest; use --format oci")
            send_blob(client, store, ref, blob.digest, blob.size, result, monolithic_max, bar)
        send_blob(client, store, ref, image_id, len(config), result, monolithic_max)
    body = Manifest(media_type=_MANIFEST_TYPES[fmt],
                    config=Descriptor(_CONFIG_TYPES[fmt], image_id, len(config)),
                    layers=tuple(Descriptor(_LAYER_TYPES[(fmt, b.compression)], b.digest, b.size)
                                 for b in blobs)).to_bytes()
    result.manifest_digest = client.put_manifest(ref.path, ref.reference, body, _MANIFEST_TYPES[fmt])
    store.put_blob_bytes(body)
    return result


def send_blob(client: RegistryClient, store: Store, ref: RegistryRef, digest: str, size: int,
              result: PushResult, monolithic_max: int, bar=None) -> None:
    """Make the repository hold blob ``digest`` (stored in ``store``): nothing if it has it,
    a cross-repository mount if another repository of that registry does, else an upload."""
    if client.has_blob(ref.path, digest):
        result.existed.append(digest)
    else:
        for source in repos_holding(store, ref.domain, digest):
            if source != ref.path and client.mount_blob(ref.path, digest, source):
                result.mounted.append(digest)
                break
        else:
            with (bar(short_id(digest), size) if bar else nullcontext(None)) as done:
                client.upload_blob(ref.path, digest, size, store.blob_path(digest),
                                   monolithic_max=monolithic_max, on_progress=done)
            result.uploaded.append(digest)
    remember_repo(store, ref.domain, digest, ref.path)


class _Sink:
    """What GzipFile writes into: hashed and counted on the way to the file."""

    def __init__(self, out) -> None:
        self.writer = HashingWriter(out)

    def write(self, data: bytes) -> int:
        return self.writer.write(data)

    def flush(self) -> None:
        pass


def compressed_layer(store: Store, diff_id: str) -> CompressedBlob:
    """The compressed blob of a stored layer: the recorded one, or gzip made now (once) and kept
    in the store.  Idempotent; a pulled layer is never recompressed."""
    blob = compressed_blob(store, diff_id)
    if blob is not None:
        return blob
    fd, tmp = store.temp_file("gz")
    try:
        with os.fdopen(fd, "wb") as out, store.open_blob(diff_id) as src:
            sink = _Sink(out)
            with gzip.GzipFile(fileobj=sink, mode="wb", mtime=0, compresslevel=6) as gz:
                while chunk := src.read(CHUNK):
                    gz.write(chunk)
        blob = CompressedBlob(sink.writer.digest, sink.writer.size, "gzip")
        store.put_blob_file(tmp, blob.digest)
    finally:
        tmp.unlink(missing_ok=True)
    remember_compressed(store, diff_id, blob)
    return blob
