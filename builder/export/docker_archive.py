"""``save`` and ``load``: image archives that docker, skopeo, umoci and pybuild all read.

``save`` writes ONE tar that is both an OCI image layout (see oci_layout.py) and a
docker-archive: ``manifest.json`` = ``[{"Config", "RepoTags", "Layers"}]`` pointing into
``blobs/sha256/``, plus a ``repositories`` file, as docker >= 25 writes it.  docker 20.10..29
load it from manifest.json; skopeo/podman/umoci read the layout.  ``fmt="oci"`` writes the very
same file: it already is a complete OCI layout, and the extra docker files are allowed by the
spec ("must be ignored").

``load`` reads docker-archives (docker <= 24: ``<id>.json``, ``<v1id>/layer.tar``; docker >= 25:
``blobs/sha256/…``) through manifest.json, and pure OCI layout tars through index.json.
Legacy v1 archives (no manifest.json, no index.json) are refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.errors import ArchiveError
from builder.export.archive import ArchiveReader, read_archive, write_archive
from builder.export.oci_layout import SavedImage, blob_name, is_layout, load_layout, saved_image, write_layout
from builder.export.reference import TaggedRef, parse_tagged
from builder.oci.digest import hex_of, sha256_bytes
from builder.store.ingest import store_image
from builder.store.store import Store, normalize_tag

MANIFEST_FILE = "manifest.json"
REPOSITORIES_FILE = "repositories"
FORMATS = ("docker", "oci")
_BLOB_PATH = re.compile(r"^(?:\./)?blobs/sha256/([0-9a-f]{64})$")


@dataclass(frozen=True)
class ArchiveEntry:
    """One image of docker's ``manifest.json`` (a list of these): where its config and layer
    tars are in the archive, base first, and the tags it carries (none: untagged)."""

    config: str
    repo_tags: tuple[str, ...]
    layers: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """``{"Config", "RepoTags", "Layers"}``, as docker writes it (RepoTags null if none)."""
        return {"Config": self.config, "RepoTags": list(self.repo_tags) or None, "Layers": list(self.layers)}

    @classmethod
    def parse(cls, item: Any, where: str) -> ArchiveEntry:
        """Raises ArchiveError "<where> is not an object", "… has no Config", "… has no Layers
        list" or "<where>: RepoTags is not a list of strings"."""
        if not isinstance(item, dict):
            raise ArchiveError(f"{where} is not an object")
        config = item.get("Config")
        layers = item.get("Layers")
        tags = item.get("RepoTags") or []
        if not isinstance(config, str) or not config:
            raise ArchiveError(f"{where} has no Config")
        if not isinstance(layers, list) or not all(isinstance(p, str) for p in layers):
            raise ArchiveError(f"{where} has no Layers list")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ArchiveError(f"{where}: RepoTags is not a list of strings")
        return cls(config, tuple(tags), tuple(layers))


def save(store: Store, refs: list[str], out_path: str | Path, *, fmt: str = "docker",
         on_progress: Callable[[int], None] | None = None) -> None:
    """Write the images named by ``refs`` (tags or image IDs) into one archive at ``out_path``.

    A ref that is a tag is saved under that tag; an image ID is saved untagged.  The archive is
    written to a temp file and renamed, so ``out_path`` is whole or untouched.  Layers are
    streamed from the store; shared blobs are written once.  ``fmt`` is "docker" or "oci" and
    both give the same bytes (see the module docstring)."""
    if fmt not in FORMATS:
        raise ArchiveError(f"unknown archive format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if not refs:
        raise ArchiveError("save: no images given")
    images = _collect(store, refs)
    with write_archive(out_path) as out:
        write_layout(out, store, images, on_progress)
        out.add_bytes(MANIFEST_FILE, _json([_archive_entry(img).to_json() for img in images]))
        out.add_bytes(REPOSITORIES_FILE, _json(_repositories(images)))


def _collect(store: Store, refs: list[str]) -> list[SavedImage]:
    """Resolve refs, grouping the tags of one image together, in the order first named."""
    tags = store.tags()
    order: list[str] = []
    names: dict[str, list[TaggedRef]] = {}
    for ref in refs:
        image_id = store.resolve(ref)
        if image_id not in names:
            order.append(image_id)
            names[image_id] = []
        if normalize_tag(ref) in tags:
            tagged = parse_tagged(normalize_tag(ref))
            if tagged not in names[image_id]:
                names[image_id].append(tagged)
    return [saved_image(store, i, tuple(names[i])) for i in order]


def _archive_entry(img: SavedImage) -> ArchiveEntry:
    return ArchiveEntry(config=blob_name(img.image_id), repo_tags=tuple(r.familiar for r in img.refs),
                        layers=tuple(blob_name(d.digest) for d in img.layers))


def _repositories(images: list[SavedImage]) -> dict[str, dict[str, str]]:
    """``{"webapp": {"latest": <top layer hex>}}``: only legacy tools read it."""
    repos: dict[str, dict[str, str]] = {}
    for img in images:
        if not img.layers:
            continue
        for ref in img.refs:
            repos.setdefault(ref.familiar_name, {})[ref.tag] = hex_of(img.layers[-1].digest)
    return repos


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# -- load ------------------------------------------------------------------------------------
def load(store: Store, in_path: str | Path) -> list[tuple[str, str]]:
    """Load every image of a docker-archive or OCI layout tar (plain or compressed) into
    ``store``; returns (ref, image ID) per tag in archive order, with ref = the image ID for an
    image without a name (it is stored untagged).

    Every layer is verified (diffID against the config's rootfs.diff_ids, blob digest where
    the archive names one); a failure raises ArchiveError and tags nothing of that image.
    Layers already in the store (same chain ID) are verified but not unpacked again."""
    with read_archive(in_path) as reader:
        if reader.has(MANIFEST_FILE):
            return _load_docker(store, reader)
        if is_layout(reader):
            return load_layout(store, reader)
    raise ArchiveError(f"{in_path}: invalid archive: it contains neither a manifest.json nor an "
                       f"OCI index.json (legacy v1 archives are not supported)")


def _load_docker(store: Store, reader: ArchiveReader) -> list[tuple[str, str]]:
    items = reader.read_json(MANIFEST_FILE)
    if not isinstance(items, list) or not items:
        raise ArchiveError(f"{reader.path}: invalid archive: manifest.json lists no images")
    loaded: list[tuple[str, str]] = []
    for n, item in enumerate(items):
        entry = ArchiveEntry.parse(item, f"{reader.path}: invalid archive: manifest.json entry {n}")
        config_path = entry.config
        tags = [parse_tagged(t, default_tag=None) for t in entry.repo_tags]   # fail before storing
        config = reader.read(config_path)
        image_id = sha256_bytes(config)
        named = _BLOB_PATH.match(config_path)
        if named and named.group(1) != hex_of(image_id):
            raise ArchiveError(f"{reader.path}: invalid archive: config {config_path} has digest "
                               f"{image_id}")
        layers = [((lambda p=p: reader.open(p)), _digest_in_path(p)) for p in entry.layers]
        try:
            image_id = store_image(store, config, layers)
        except ArchiveError as e:
            raise ArchiveError(f"{reader.path}: image {n} ({config_path}): {e}") from e
        for tag in tags:
            store.set_tag(tag.familiar, image_id)
            loaded.append((tag.familiar, image_id))
        if not tags:
            loaded.append((image_id, image_id))
    return loaded


def _digest_in_path(path: str) -> str | None:
    """``blobs/sha256/<hex>`` names its content; ``<v1id>/layer.tar`` does not."""
    m = _BLOB_PATH.match(path)
    return f"sha256:{m.group(1)}" if m else None
