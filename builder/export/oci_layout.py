"""OCI image layout (image-spec image-layout.md) inside an archive tar: write side and read side.

Written: ``oci-layout``, ``blobs/sha256/<hex>`` for every config, manifest and layer (the exact
stored bytes, layers streamed from the store), and ``index.json`` with one manifest descriptor
per tag, annotated ``io.containerd.image.name`` (full reference) and
``org.opencontainers.image.ref.name`` (the tag alone, which umoci and skopeo look up), as
docker >= 25 writes it.  An untagged image gets one descriptor without annotations.

Read: ``index.json`` → manifest (nested indexes resolved to linux/<host arch>) → config and
layers, every blob checked against its descriptor's digest (and size, for JSON blobs).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, BinaryIO, cast

from builder.errors import ArchiveError, ManifestError
from builder.export.archive import ArchiveReader, ArchiveWriter
from builder.export.reference import TaggedRef, parse_tagged
from builder.oci.config import host_architecture
from builder.oci.digest import hex_of, sha256_bytes
from builder.oci.manifest import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    Descriptor,
    Index,
    Manifest,
)
from builder.store.ingest import store_image
from builder.store.store import Store

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LAYOUT_VERSION = "1.0.0"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class SavedImage:
    """One image as it goes into an archive: exact stored bytes and the names it is saved under."""

    image_id: str
    config: bytes
    manifest: bytes                           # the exact stored bytes (their digest names it)
    parsed: Manifest                          # the same manifest, typed
    refs: tuple[TaggedRef, ...]               # empty: saved untagged

    @property
    def manifest_digest(self) -> str:
        return sha256_bytes(self.manifest)

    @property
    def layers(self) -> tuple[Descriptor, ...]:
        """The layer blobs, base first."""
        return self.parsed.layers


def blob_name(digest: str) -> str:
    return f"blobs/sha256/{hex_of(digest)}"


def saved_image(store: Store, image_id: str, refs: tuple[TaggedRef, ...]) -> SavedImage:
    """Collect an image's stored config, manifest and layer descriptors for saving."""
    config = store.image_config(image_id)
    manifest = store.image_manifest(image_id)
    try:
        parsed = Manifest.parse(manifest)
    except ManifestError as e:
        raise ArchiveError(f"save {image_id}: the stored manifest: {e}") from e
    for layer in parsed.layers:
        if not store.has_blob(layer.digest):
            raise ArchiveError(f"save {image_id}: layer blob {layer.digest} is missing from the store")
    return SavedImage(image_id, config, manifest, parsed, refs)


def write_layout(out: ArchiveWriter, store: Store, images: list[SavedImage],
                 on_progress: Callable[[int], None] | None = None) -> None:
    """Write the OCI layout part of an archive (blobs are written once even when shared).
    ``on_progress(bytes_so_far)`` is called as layer bytes are copied (for a progress bar)."""
    copied = 0
    out.add_bytes(LAYOUT_FILE, _json({"imageLayoutVersion": LAYOUT_VERSION}))
    out.add_dir("blobs/sha256")
    descriptors: list[Descriptor] = []
    for img in images:
        out.add_bytes(blob_name(img.image_id), img.config)
        for layer in img.layers:
            name = blob_name(layer.digest)
            if out.has(name):
                continue
            with store.open_blob(layer.digest) as f:
                size = _file_size(f)
                out.add_stream(name, cast(BinaryIO, _Progress(f, copied, on_progress)) if on_progress else f, size)
                copied += size
        out.add_bytes(blob_name(img.manifest_digest), img.manifest)
        base = Descriptor(img.parsed.media_type or MEDIA_OCI_MANIFEST, img.manifest_digest, len(img.manifest))
        if not img.refs:
            descriptors.append(base)
        for ref in img.refs:
            descriptors.append(replace(base, annotations=((ANNOTATION_IMAGE_NAME, ref.full),
                                                          (ANNOTATION_REF_NAME, ref.tag))))
    out.add_bytes(INDEX_FILE, Index(MEDIA_OCI_INDEX, tuple(descriptors)).to_bytes())


class _Progress:
    """A reader that reports the running total of bytes read through it."""

    def __init__(self, src: Any, start: int, report: Callable[[int], None]) -> None:
        self._src, self._done, self._report = src, start, report

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self._done += len(data)
        self._report(self._done)
        return data


def _file_size(f: Any) -> int:
    return os.fstat(f.fileno()).st_size


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# -- read side -------------------------------------------------------------------------------
def is_layout(reader: ArchiveReader) -> bool:
    if not (reader.has(LAYOUT_FILE) and reader.has(INDEX_FILE)):
        return False
    layout = reader.read_json(LAYOUT_FILE)
    return isinstance(layout, dict) and layout.get("imageLayoutVersion") == LAYOUT_VERSION


def load_layout(store: Store, reader: ArchiveReader) -> list[tuple[str, str]]:
    """Load every image named by ``index.json``; returns (ref, image ID) per tag, or
    (image ID, image ID) for an image without a name."""
    index = _read_index(reader, None, INDEX_FILE, INDEX_FILE)
    loaded: list[tuple[str, str]] = []
    by_manifest: dict[str, str] = {}
    for desc in index.manifests:
        manifest_desc = _pick_manifest(reader, desc, depth=0)
        digest = manifest_desc.digest
        if digest not in by_manifest:
            by_manifest[digest] = _load_manifest(store, reader, manifest_desc)
        image_id = by_manifest[digest]
        ref = _name_of(desc)
        if ref is None:
            loaded.append((image_id, image_id))
        else:
            store.set_tag(ref.familiar, image_id)
            loaded.append((ref.familiar, image_id))
    return loaded


def _name_of(desc: Descriptor) -> TaggedRef | None:
    """containerd's rule: the full name first, then ``ref.name`` if it is a whole reference.
    A bare tag (``latest``) in ``ref.name`` names no repository: the image stays untagged."""
    full = desc.annotation(ANNOTATION_IMAGE_NAME)
    if full:
        return parse_tagged(full)
    ref_name = desc.annotation(ANNOTATION_REF_NAME)
    if ref_name and ("/" in ref_name or ":" in ref_name):
        return parse_tagged(ref_name)
    return None


def _read_index(reader: ArchiveReader, desc: Descriptor | None, name: str, what: str) -> Index:
    """The index at ``name`` (verified against ``desc`` when given); it must list a manifest."""
    try:
        index = Index.parse(_read_blob_json(reader, desc, name))
    except ManifestError as e:
        raise ArchiveError(f"invalid archive: {what}: {e}") from e
    if not index.manifests:
        raise ArchiveError(f"invalid archive: {what} lists no manifests")
    return index


def _pick_manifest(reader: ArchiveReader, desc: Descriptor, *, depth: int) -> Descriptor:
    """Resolve a descriptor to an image manifest descriptor; an index picks linux/<host arch>."""
    media = desc.media_type
    if media is None:              # optional in old layouts: the blob says what it is
        blob = _read_blob_json(reader, desc, blob_name(desc.digest))
        media = blob.get("mediaType") if isinstance(blob, dict) else None
        if media is None and isinstance(blob, dict):
            media = MEDIA_OCI_INDEX if "manifests" in blob else MEDIA_OCI_MANIFEST
    if media in MANIFEST_TYPES:
        return desc
    if media not in INDEX_TYPES:
        raise ArchiveError(f"invalid archive: unsupported manifest media type {media!r}")
    if depth > 4:
        raise ArchiveError("invalid archive: indexes nested too deeply")
    index = _read_index(reader, desc, blob_name(desc.digest), f"index {desc.digest}")
    arch = host_architecture()
    found = index.for_platform("linux", arch)
    if found is None:
        raise ArchiveError(f"invalid archive: index {desc.digest} has no image for linux/{arch}")
    return _pick_manifest(reader, found, depth=depth + 1)


def _load_manifest(store: Store, reader: ArchiveReader, desc: Descriptor) -> str:
    try:
        manifest = Manifest.parse(_read_blob_json(reader, desc, blob_name(desc.digest)))
    except ManifestError as e:
        raise ArchiveError(f"invalid archive: manifest {desc.digest}: {e}") from e
    config = _read_blob(reader, manifest.config, blob_name(manifest.config.digest))
    layers = [(functools.partial(reader.open, blob_name(d.digest)), d.digest) for d in manifest.layers]
    return store_image(store, config, layers)


def _read_blob(reader: ArchiveReader, desc: Descriptor | None, name: str) -> bytes:
    """The blob at ``name``, checked against ``desc``'s digest and size when given."""
    data = reader.read(name)
    if desc is not None:
        got = sha256_bytes(data)
        if got != desc.digest:
            raise ArchiveError(f"invalid archive: {name}: digest {got} does not match its "
                               f"descriptor {desc.digest}")
        if desc.size != len(data):
            raise ArchiveError(f"invalid archive: {name}: size {len(data)} does not match its "
                               f"descriptor ({desc.size})")
    return data


def _read_blob_json(reader: ArchiveReader, desc: Descriptor | None, name: str) -> Any:
    data = _read_blob(reader, desc, name)
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArchiveError(f"invalid archive: {name} is not valid JSON: {e}") from e
