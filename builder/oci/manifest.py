"""Manifests, indexes and their media types (OCI image-spec manifest.md, image-index.md; the
Docker schema2 equivalents), pure."""

from __future__ import annotations

import json

MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST)
MANIFEST_TYPES = (MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST)

def manifest_bytes(*, config_digest: str, config_size: int,
                   layers: list[tuple[str, int]]) -> bytes:
    """An OCI image manifest for uncompressed layers ``[(digest, size), …]``, base first."""
    obj = {
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": MEDIA_OCI_LAYER, "digest": d, "size": s} for d, s in layers],
    }
    return json.dumps(obj, separators=(",", ":")).encode()
