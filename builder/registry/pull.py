"""The read side: ``pull`` brings an image from a registry into the store.

Manifest (an index is narrowed to linux/<host arch>), then the config (its digest is the image
ID), then the layers the store lacks, downloaded in parallel and each verified (size and
digest) before anything is stored; then they are unpacked in parallel through
``store_layer_from_tar``, which verifies every diffID.  A layer whose chain ID is already in
the store is not fetched.  Compressed blobs are kept, so a later push sends the same bytes.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from builder.errors import ArchiveError, ManifestError, RegistryError
from builder.oci.config import host_architecture, parse_config
from builder.oci.digest import chain_ids, short_id
from builder.oci.manifest import INDEX_TYPES, Descriptor, Index, Manifest, Platform
from builder.registry.client import open_client
from builder.registry.records import CompressedBlob, remember_compressed, remember_repo
from builder.registry.reference import RegistryRef, parse_reference
from builder.store.ingest import store_layer_from_tar
from builder.store.store import Store

#: layer media type → compression (nondistributable variants included)
LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": "none",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar": "none",
}
MAX_INDEX_DEPTH = 4

#: ``bar(description, total)`` → context manager yielding ``done(bytes_so_far)`` (BuildLog.bar)
ProgressBar = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]


@dataclass
class PullResult:
    image_id: str
    tag: str | None                      # the store tag set (familiar form), None for @digest
    manifest_digest: str
    fetched: list[str] = field(default_factory=list)     # layer blob digests downloaded
    present: list[str] = field(default_factory=list)     # layers already in the store


def pull(store: Store, reference: str | RegistryRef, *, insecure: bool = False,
         session: requests.Session | None = None, workers: int = 4,
         bar: ProgressBar | None = None) -> PullResult:
    """Pull ``reference`` into ``store`` and tag it with its familiar name; returns what was done.

    Raises RegistryError on any failure; the store then holds no new image, tag or layer
    (a failure while unpacking a verified blob may leave earlier layers, which prune removes)."""
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    client = open_client(store, ref, insecure=insecure, session=session)
    body, media, digest = client.get_manifest(ref.path, ref.reference)
    for _ in range(MAX_INDEX_DEPTH):
        if media not in INDEX_TYPES:
            break
        child = choose_platform(read_index(body, ref), ref)
        body, media, digest = client.get_manifest(ref.path, child.digest)
    else:
        raise RegistryError(f"{ref.full}: indexes nested more than {MAX_INDEX_DEPTH} deep")
    manifest = read_manifest(body, ref)
    config_desc, layers = manifest.config, manifest.layers
    config = client.get_blob_bytes(ref.path, config_desc.digest, config_desc.size)
    try:
        cfg = parse_config(config)
    except ArchiveError as e:
        raise RegistryError(f"{ref.full}: {e}") from e
    if len(layers) != len(cfg.diff_ids):
        raise RegistryError(f"{ref.full}: the manifest lists {len(layers)} layers, the config "
                            f"{len(cfg.diff_ids)} diff_ids")
    for i, d in enumerate(layers):
        if d.media_type not in LAYER_TYPES:
            raise RegistryError(f"{ref.full}: layer {i} has unsupported media type {d.media_type!r}")
    chains = chain_ids(cfg.diff_ids)
    result = PullResult(config_desc.digest, None, digest)
    with store.in_use():
        todo = [i for i, c in enumerate(chains) if not store.has_layer(c)]
        result.present = [layers[i].digest for i in range(len(layers)) if i not in todo]
        scratch = store.scratch_dir("pull")
        try:
            files = _download(client, ref, layers, todo, scratch, workers, bar)
            with ThreadPoolExecutor(max(1, min(workers, len(todo) or 1))) as pool:
                list(pool.map(lambda i: _store_layer(store, ref, layers[i], files[i], cfg.diff_ids[i],
                                                     chains[i - 1] if i else None, i), todo))
            image_id = store.put_config(config, cfg.diff_ids)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    for d in (*layers, config_desc):
        remember_repo(store, ref.domain, d.digest, ref.path)
    result.fetched = [layers[i].digest for i in todo]
    if ref.tag and not ref.digest:
        store.set_tag(ref.familiar, image_id)
        result.tag = ref.familiar
    return result


def _download(client, ref: RegistryRef, layers: Sequence[Descriptor], todo: list[int], scratch: Path,
              workers: int, bar: ProgressBar | None) -> dict[int, Path]:
    """Fetch the blobs of layers ``todo`` into ``scratch`` in parallel; all or nothing."""
    def one(i: int) -> Path:
        d = layers[i]
        dest = scratch / f"layer-{i}"
        with (bar(short_id(d.digest), d.size) if bar else nullcontext(None)) as done:
            client.fetch_blob(ref.path, d.digest, d.size, dest, on_progress=done)
        return dest
    if not todo:
        return {}
    with ThreadPoolExecutor(max(1, min(workers, len(todo)))) as pool:
        futures = {i: pool.submit(one, i) for i in todo}
        for future in futures.values():
            error = future.exception()
            if error is not None:
                raise error
        return {i: f.result() for i, f in futures.items()}


def _store_layer(store: Store, ref: RegistryRef, desc: Descriptor, path: Path, diff_id: str,
                 parent: str | None, index: int) -> None:
    label = f"{ref.full} layer {index} ({desc.digest})"
    try:
        with open(path, "rb") as f:
            store_layer_from_tar(store, f, parent_chain=parent, expected_diff_id=diff_id,
                                 expected_digest=desc.digest, label=label)
    except ArchiveError as e:
        raise RegistryError(str(e)) from e
    compression = LAYER_TYPES[desc.media_type or ""]
    if compression != "none":                 # keep the registry's bytes for the next push
        store.put_blob_file(path, desc.digest)
        remember_compressed(store, diff_id, CompressedBlob(desc.digest, desc.size, compression))


def choose_platform(index: Index, ref: RegistryRef, *, os_name: str = "linux",
                    arch: str | None = None) -> Descriptor:
    """The first entry of an index for ``os_name``/``arch`` (default: the host's), skipping
    attestation entries (``unknown/unknown``).  Variants are not compared: the first entry of
    the architecture wins, as the spec recommends."""
    arch = arch or host_architecture()
    seen: list[str] = []
    for m in index.manifests:
        p = m.platform or _NO_PLATFORM
        if p.os == "unknown" or m.annotation("vnd.docker.reference.type") == "attestation-manifest":
            continue
        seen.append(f"{p.os}/{p.architecture}" + (f"/{p.variant}" if p.variant else ""))
        if p.os == os_name and p.architecture == arch:
            return m
    raise RegistryError(f"{ref.full}: no {os_name}/{arch} image in the index "
                        f"(it has: {', '.join(seen) or 'nothing usable'})")


_NO_PLATFORM = Platform(())


def read_index(data: bytes | dict[str, Any], ref: RegistryRef) -> Index:
    """Validate an index the registry sent; RegistryError "<ref>: <what is wrong>" if it is not one."""
    try:
        return Index.parse(data)
    except ManifestError as e:
        raise RegistryError(f"{ref.full}: {e}") from e


def read_manifest(data: bytes | dict[str, Any], ref: RegistryRef) -> Manifest:
    """Validate an image manifest the registry sent; RegistryError "<ref>: <what is wrong>"
    ("not a schemaVersion 2 manifest", "manifest layers[2] is not a valid descriptor", …)."""
    try:
        return Manifest.parse(data)
    except ManifestError as e:
        raise RegistryError(f"{ref.full}: {e}") from e
