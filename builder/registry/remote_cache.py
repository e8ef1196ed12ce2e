"""A build cache shared through a registry (``--cache-to REF`` / ``--cache-from REF``), as
BuildKit's registry cache and kaniko's cache repo do it.

The cache is one OCI image manifest at ``REF``:

    config  application/vnd.pybuild.cache.config.v1+json
            {"entries": {<step key>: {"config": <digest>}},
             "configs": {<config digest>: <size>},
             "layers":  {<diffID>: {"digest", "size", "mediaType"}}}
    layers  every compressed layer blob those configs name, then every intermediate image
            config blob (so the registry keeps them and a reader knows their sizes)

``export_cache`` pushes it (layers compressed once and reused, blobs the registry has are
skipped — push's machinery); ``RemoteCache`` reads it lazily and, for a step key, makes the
local ``BuildCache`` able to serve it: the config blob and only the layers not already whole
in the store are fetched, every digest and diffID verified before anything is stored.
Failures while reading are warnings and cache misses, never build failures.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterable
from typing import Any

import requests

from builder.errors import ManifestError, PybuildError, RegistryError
from builder.oci.config import parse_config
from builder.oci.digest import chain_ids, is_digest, sha256_bytes, short_id
from builder.oci.manifest import INDEX_TYPES, MEDIA_OCI_MANIFEST, Descriptor, Manifest
from builder.registry.client import RegistryClient, open_client
from builder.registry.pull import LAYER_TYPES, read_manifest
from builder.registry.push import MONOLITHIC_MAX, PushResult, compressed_layer, send_blob
from builder.registry.records import CompressedBlob, remember_compressed, remember_repo
from builder.registry.reference import RegistryRef, parse_reference
from builder.store.cache import BuildCache
from builder.store.ingest import store_layer_from_tar
from builder.store.store import Store

CACHE_CONFIG_TYPE = "application/vnd.pybuild.cache.config.v1+json"
IMAGE_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
_OCI_LAYER = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
              "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
              "none": "application/vnd.oci.image.layer.v1.tar"}

Warn = Callable[[str], None]


def _stderr_warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def export_cache(store: Store, keys: Iterable[str], ref: str, *, insecure: bool = False,
                 session: requests.Session | None = None,
                 monolithic_max: int = MONOLITHIC_MAX) -> str:
    """Push the local cache entries of ``keys`` (each must be servable locally) to ``ref`` as
    one OCI manifest; returns the manifest digest.  Raises RegistryError."""
    target = parse_reference(ref)
    if target.digest:
        raise RegistryError(f"cache export to {target.full}: export to a tag, not a digest")
    cache = BuildCache(store)
    entries: dict[str, dict[str, Any]] = {}
    configs: dict[str, bytes] = {}
    for key in keys:
        if key in entries:
            continue
        if not is_digest(key):
            raise RegistryError(f"cache export: {key!r} is not a step key (sha256:<hex>)")
        hit = cache.lookup(key)
        if hit is None:
            raise RegistryError(f"cache export: no usable local cache entry for step {key}")
        digest = sha256_bytes(hit)
        entries[key] = {"config": digest}
        configs[digest] = hit
    client = open_client(store, target, insecure=insecure, session=session)
    result = PushResult(target)
    layers: dict[str, CompressedBlob] = {}           # diffID → compressed blob, first use order
    with store.in_use():
        for config in configs.values():
            for diff_id in parse_config(config).diff_ids:
                if diff_id not in layers:
                    layers[diff_id] = compressed_layer(store, diff_id)
        sent: set[str] = set()
        for blob in layers.values():
            if blob.digest not in sent:
                send_blob(client, store, target, blob.digest, blob.size, result, monolithic_max)
                sent.add(blob.digest)
        for digest, config in configs.items():
            store.put_blob_bytes(config)
            send_blob(client, store, target, digest, len(config), result, monolithic_max)
        cache_config = json.dumps({
            "entries": entries,
            "configs": {d: len(c) for d, c in configs.items()},
            "layers": {d: _layer_descriptor(b).to_json() for d, b in layers.items()},
        }, sort_keys=True, separators=(",", ":")).encode()
        cache_digest = store.put_blob_bytes(cache_config)
        send_blob(client, store, target, cache_digest, len(cache_config), result, monolithic_max)
    descriptors: list[Descriptor] = []
    seen: set[str] = set()
    for b in layers.values():
        if b.digest not in seen:
            seen.add(b.digest)
            descriptors.append(_layer_descriptor(b))
    descriptors += [Descriptor(IMAGE_CONFIG_TYPE, d, len(c)) for d, c in configs.items()]
    manifest = Manifest(media_type=MEDIA_OCI_MANIFEST,
                        config=Descriptor(CACHE_CONFIG_TYPE, cache_digest, len(cache_config)),
                        layers=tuple(descriptors))
    return client.put_manifest(target.path, target.reference, manifest.to_bytes(), MEDIA_OCI_MANIFEST)


def _layer_descriptor(blob: CompressedBlob) -> Descriptor:
    return Descriptor(_OCI_LAYER[blob.compression], blob.digest, blob.size)


class RemoteCache:
    """The cache at ``ref``, read once on first use.  ``fetch(key)`` makes a remote entry a
    local one; any failure is a warning (through ``warn``) and a miss."""

    def __init__(self, store: Store, ref: str, *, insecure: bool = False,
                 session: requests.Session | None = None, warn: Warn | None = None) -> None:
        self.store = store
        self.ref_text = ref
        self.insecure = insecure
        self.session = session
        self.warn = warn or _stderr_warn
        self.cache = BuildCache(store)
        self._loaded = False
        self._client: RegistryClient | None = None
        self._ref: RegistryRef | None = None
        self.entries: dict[str, dict[str, Any]] = {}
        self.configs: dict[str, int] = {}
        self.layers: dict[str, Descriptor] = {}          # diffID → its compressed blob
        self.fetched: list[str] = []          # blob digests downloaded (configs and layers)

    # -- loading ---------------------------------------------------------------------------
    def load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            self._load()
        except (RegistryError, PybuildError, ValueError, KeyError, TypeError, AttributeError) as e:
            self.entries, self.configs, self.layers = {}, {}, {}
            self.warn(f"cache from {self.ref_text}: {e}; building without it")

    def _load(self) -> None:
        ref = parse_reference(self.ref_text)
        client = open_client(self.store, ref, insecure=self.insecure, session=self.session)
        body, media, _digest = client.get_manifest(ref.path, ref.reference)
        if media in INDEX_TYPES:
            raise RegistryError(f"{ref.full} is an image index, not a pybuild cache")
        config = read_manifest(body, ref).config
        if config.media_type != CACHE_CONFIG_TYPE:
            raise RegistryError(f"{ref.full} is not a pybuild cache (config type "
                                f"{config.media_type!r})")
        data = client.get_blob_bytes(ref.path, config.digest, config.size)
        self.fetched.append(config.digest)
        obj = json.loads(data)
        entries, configs, layers = obj["entries"], obj["configs"], obj["layers"]
        if not all(isinstance(x, dict) for x in (entries, configs, layers)):
            raise RegistryError(f"{ref.full}: malformed cache config")
        self.entries = {k: v for k, v in entries.items()
                        if is_digest(k) and isinstance(v, dict) and is_digest(str(v.get("config")))
                        and isinstance(configs.get(v["config"]), int)}
        self.configs = configs
        self.layers = {d: desc for d, desc in ((d, _descriptor_or_none(v)) for d, v in layers.items())
                       if is_digest(d) and desc is not None and desc.media_type in LAYER_TYPES}
        self._client, self._ref = client, ref

    def keys(self) -> list[str]:
        self.load()
        return list(self.entries)

    def __contains__(self, key: str) -> bool:
        self.load()
        return key in self.entries

    # -- fetching --------------------------------------------------------------------------
    def fetch(self, key: str) -> bool:
        """Make step ``key`` a local cache hit if the remote cache has it; True if it now is."""
        self.load()
        entry = self.entries.get(key)
        if entry is None:
            return False
        if self.cache.lookup(key) is not None:
            return True
        try:
            with self.store.in_use():
                config = self._config(entry["config"])
                self._layers(config)
            self.cache.record(key, config)
            return True
        except (RegistryError, PybuildError, OSError) as e:
            self.warn(f"cache from {self.ref_text}: step {short_id(key)}: {e}; running the step")
            return False

    def _config(self, digest: str) -> bytes:
        if self.store.has_blob(digest):
            data = self.store.read_blob(digest)
            if sha256_bytes(data) == digest:
                return data
        assert self._client is not None and self._ref is not None
        data = self._client.get_blob_bytes(self._ref.path, digest, self.configs[digest])
        self.fetched.append(digest)
        parse_config(data)                   # an image config, or ArchiveError
        self.store.put_blob_bytes(data)
        return data

    def _layers(self, config: bytes) -> None:
        assert self._client is not None and self._ref is not None
        client, ref = self._client, self._ref
        diff_ids = parse_config(config).diff_ids
        chains = chain_ids(diff_ids)
        for i, (diff_id, chain) in enumerate(zip(diff_ids, chains)):
            if self.cache.layer_is_whole(chain):
                continue
            desc = self.layers.get(diff_id)
            if desc is None:
                raise RegistryError(f"the cache has no blob for layer {diff_id}")
            scratch = self.store.scratch_dir("cache")
            try:
                path = scratch / "blob"
                client.fetch_blob(ref.path, desc.digest, desc.size, path)
                self.fetched.append(desc.digest)
                label = f"{ref.full} cache layer {desc.digest}"
                with open(path, "rb") as f:
                    try:
                        store_layer_from_tar(self.store, f, parent_chain=chains[i - 1] if i else None,
                                             expected_diff_id=diff_id, expected_digest=desc.digest,
                                             label=label)
                    except PybuildError as e:
                        raise RegistryError(str(e)) from e
                compression = LAYER_TYPES[desc.media_type or ""]
                if compression != "none":     # keep the registry's bytes for the next push
                    self.store.put_blob_file(path, desc.digest)
                    remember_compressed(self.store, diff_id,
                                        CompressedBlob(desc.digest, desc.size, compression))
                remember_repo(self.store, ref.domain, desc.digest, ref.path)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)


def _descriptor_or_none(obj: Any) -> Descriptor | None:
    """A layer descriptor of the cache config, or None for one that is not valid (skipped)."""
    try:
        return Descriptor.parse(obj)
    except ManifestError:
        return None
