"""``pybuild inspect --remote REF``: what an image in a registry is, without pulling it.

Reads the manifest (and, for an index, the index and the host platform's manifest) and the
config blob — all verified — but no layer.  Sizes are the compressed sizes the registry
stores.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from builder.errors import RegistryError
from builder.oci.manifest import INDEX_TYPES
from builder.registry.client import open_client
from builder.registry.pull import MAX_INDEX_DEPTH, choose_platform, read_index, read_manifest
from builder.registry.reference import parse_reference
from builder.store.store import Store


def inspect_remote(ref: str, *, insecure: bool = False, store: Store | None = None,
                   session: requests.Session | None = None, arch: str | None = None) -> dict[str, Any]:
    """A dict: reference, digest (of the manifest described), mediaType, manifest, index (or
    None) and index_digest, platform, config_digest, config (parsed; None if not JSON),
    layers [{digest, size, mediaType}], config_size, layers_size, total_size (layers + config,
    compressed).  Raises RegistryError."""
    target = parse_reference(ref)
    client = open_client(store, target, insecure=insecure, session=session)
    body, media, digest = client.get_manifest(target.path, target.reference)
    index = index_digest = platform = None
    for _ in range(MAX_INDEX_DEPTH):
        if media not in INDEX_TYPES:
            break
        index, index_digest = _json(body, target.full), digest
        entry = choose_platform(read_index(index, target), target, arch=arch)
        platform = entry.platform.to_json() if entry.platform is not None else None
        body, media, digest = client.get_manifest(target.path, entry.digest)
    else:
        raise RegistryError(f"{target.full}: indexes nested more than {MAX_INDEX_DEPTH} deep")
    manifest = _json(body, target.full)          # shown as the registry sent it
    parsed = read_manifest(manifest, target)
    cdesc = parsed.config
    config_bytes = client.get_blob_bytes(target.path, cdesc.digest, cdesc.size)
    try:
        config = json.loads(config_bytes)
    except ValueError:
        config = None
    layers = [{"digest": d.digest, "size": d.size, "mediaType": d.media_type} for d in parsed.layers]
    layers_size = sum(d.size for d in parsed.layers)
    if platform is None and isinstance(config, dict):
        platform = {k: config[k] for k in ("os", "architecture", "variant") if config.get(k)}
    return {
        "reference": target.full,
        "digest": digest,
        "mediaType": media,
        "manifest": manifest,
        "index": index,
        "index_digest": index_digest,
        "platform": platform,
        "config_digest": cdesc.digest,
        "config_mediaType": cdesc.media_type,
        "config": config,
        "config_size": cdesc.size,
        "layers": layers,
        "layers_size": layers_size,
        "total_size": layers_size + cdesc.size,
    }


def _json(body: bytes, name: str) -> dict[str, Any]:
    try:
        obj = json.loads(body)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        raise RegistryError(f"{name}: the manifest is not a JSON object")
    return obj
