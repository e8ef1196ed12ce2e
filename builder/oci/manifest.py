"""Manifests, indexes, descriptors and their media types (OCI image-spec manifest.md,
image-index.md, descriptor.md; the Docker schema2 equivalents), pure.

Each is a frozen dataclass with two ways in: the trusted constructor (what pybuild writes)
and a validating ``parse`` (what it reads: the store, an archive, a registry), which raises
ManifestError saying what is wrong; readers wrap it in their own error type.  ``to_bytes``
is the one serialiser: compact JSON, keys in the order docker and the spec write them
(``schemaVersion, mediaType, config, layers`` / ``mediaType, digest, size, annotations``).
Only modelled fields are written: a manifest that was read is kept as its exact bytes (its
digest is its name), never re-serialised.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from builder.errors import ManifestError
from builder.oci.digest import is_digest

MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST)
MANIFEST_TYPES = (MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST)

Annotations = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Platform:
    """The platform of an index entry.  ``items`` are its keys and values as read, in order
    (``os.version``, ``features`` … included), so ``to_json`` gives back the same object."""

    items: tuple[tuple[str, Any], ...]

    @property
    def os(self) -> str | None:
        return self._get("os")

    @property
    def architecture(self) -> str | None:
        return self._get("architecture")

    @property
    def variant(self) -> str | None:
        return self._get("variant")

    def _get(self, key: str) -> Any:
        return next((v for k, v in self.items if k == key), None)

    def to_json(self) -> dict[str, Any]:
        return dict(self.items)

    @classmethod
    def parse(cls, obj: Any, where: str) -> Platform:
        """Raises ManifestError if ``obj`` is not an object whose os, architecture and variant
        (when present) are strings."""
        if not isinstance(obj, dict) or not all(isinstance(obj.get(k, ""), str)
                                                for k in ("os", "architecture", "variant")):
            raise ManifestError(f"{where}: platform is not an object of strings")
        return cls(tuple(obj.items()))


@dataclass(frozen=True)
class Descriptor:
    """A reference to a blob: what it is, its digest, its size; an index entry also says
    which platform it is for.  ``media_type`` None: absent (old OCI layouts omit it; the blob
    then says what it is)."""

    media_type: str | None
    digest: str
    size: int
    annotations: Annotations = ()
    platform: Platform | None = None

    def annotation(self, key: str) -> str | None:
        return next((v for k, v in self.annotations if k == key), None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.media_type is not None:
            out["mediaType"] = self.media_type
        out["digest"] = self.digest
        out["size"] = self.size
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out

    @classmethod
    def parse(cls, obj: Any, where: str = "descriptor") -> Descriptor:
        """Raises ManifestError "<where> is not a valid descriptor" unless ``obj`` is an object
        with a sha256 ``digest``, a non-negative integer ``size``, a string ``mediaType`` if
        any (null is read as absent), string annotations and a platform object if any."""
        if not isinstance(obj, dict) or not isinstance(obj.get("digest"), str) \
                or not is_digest(obj["digest"]) or not _is_size(obj.get("size")) \
                or not isinstance(obj.get("mediaType", ""), (str, type(None))):
            raise ManifestError(f"{where} is not a valid descriptor")
        platform = obj.get("platform")
        return cls(media_type=obj.get("mediaType"), digest=obj["digest"], size=obj["size"],
                   annotations=_annotations(obj, where),
                   platform=None if platform is None else Platform.parse(platform, where))


@dataclass(frozen=True)
class Manifest:
    """An image manifest (schemaVersion 2, OCI or Docker schema2): a config and its layers,
    base first.  ``media_type`` None: the manifest has no mediaType field (OCI allows it)."""

    media_type: str | None
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Annotations = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schemaVersion": 2}
        if self.media_type is not None:
            out["mediaType"] = self.media_type
        out["config"] = self.config.to_json()
        out["layers"] = [d.to_json() for d in self.layers]
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    def to_bytes(self) -> bytes:
        return _dump(self.to_json())

    @classmethod
    def parse(cls, data: bytes | dict[str, Any]) -> Manifest:
        """Validate a manifest (its bytes, or the object they decode to).  Raises ManifestError:
        "manifest is not valid JSON: …", "not a schemaVersion 2 manifest", "manifest config is
        not a valid descriptor", "manifest layers[N] is not a valid descriptor", …"""
        obj = _object(data, "manifest")
        layers = obj.get("layers", [])
        if not isinstance(layers, list):
            raise ManifestError("manifest layers is not a list")
        return cls(media_type=_media_type(obj, "manifest"),
                   config=Descriptor.parse(obj.get("config"), "manifest config"),
                   layers=tuple(Descriptor.parse(d, f"manifest layers[{i}]") for i, d in enumerate(layers)),
                   annotations=_annotations(obj, "manifest"))


@dataclass(frozen=True)
class Index:
    """An image index (OCI) or manifest list (Docker): one descriptor per manifest."""

    media_type: str | None
    manifests: tuple[Descriptor, ...]
    annotations: Annotations = ()

    def for_platform(self, os_name: str, architecture: str) -> Descriptor | None:
        """The first entry for ``os_name``/``architecture`` (variants are not compared: the
        spec says the first match wins), or None."""
        return next((d for d in self.manifests if d.platform is not None
                     and d.platform.os == os_name and d.platform.architecture == architecture), None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schemaVersion": 2}
        if self.media_type is not None:
            out["mediaType"] = self.media_type
        out["manifests"] = [d.to_json() for d in self.manifests]
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    def to_bytes(self) -> bytes:
        return _dump(self.to_json())

    @classmethod
    def parse(cls, data: bytes | dict[str, Any]) -> Index:
        """Validate an index (its bytes, or the object they decode to).  Raises ManifestError:
        "index is not valid JSON: …", "not a schemaVersion 2 manifest", "index manifests is not
        a list", "index manifests[N] is not a valid descriptor", …"""
        obj = _object(data, "index")
        manifests = obj.get("manifests", [])
        if not isinstance(manifests, list):
            raise ManifestError("index manifests is not a list")
        return cls(media_type=_media_type(obj, "index"),
                   manifests=tuple(Descriptor.parse(d, f"index manifests[{i}]") for i, d in enumerate(manifests)),
                   annotations=_annotations(obj, "index"))


def manifest_bytes(*, config_digest: str, config_size: int,
                   layers: Sequence[tuple[str, int]]) -> bytes:
    """The store's manifest of an image: OCI, for uncompressed layers ``[(digest, size), …]``,
    base first."""
    return Manifest(media_type=MEDIA_OCI_MANIFEST,
                    config=Descriptor(MEDIA_OCI_CONFIG, config_digest, config_size),
                    layers=tuple(Descriptor(MEDIA_OCI_LAYER, d, s) for d, s in layers)).to_bytes()


def _dump(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _object(data: bytes | dict[str, Any], what: str) -> dict[str, Any]:
    if isinstance(data, (bytes, bytearray)):
        try:
            data = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ManifestError(f"{what} is not valid JSON: {e}") from e
    if not isinstance(data, dict) or data.get("schemaVersion") != 2:
        raise ManifestError("not a schemaVersion 2 manifest")
    return data


def _media_type(obj: dict[str, Any], what: str) -> str | None:
    media = obj.get("mediaType")
    if media is not None and not isinstance(media, str):
        raise ManifestError(f"{what} mediaType is not a string")
    return media


def _annotations(obj: dict[str, Any], where: str) -> Annotations:
    ann = obj.get("annotations")
    if ann is None:
        return ()
    if not isinstance(ann, dict) or not all(isinstance(v, str) for v in ann.values()):
        raise ManifestError(f"{where}: annotations must map strings to strings")
    return tuple(ann.items())


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
