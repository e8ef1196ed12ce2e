"""What the store holds and what can go: ``pybuild df`` and ``pybuild prune``.

Reachability, from the roots down: tagged images (and images kept containers run), then
their configs, manifests, layers (every chain ID of their diffIDs, parents included) and
layer blobs; build-cache entries keep the intermediate configs they point at and those
configs' layers.  Untagged images that nothing names are *dangling*.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import ArchiveError, StoreError
from builder.oci.config import parse_config
from builder.oci.digest import chain_ids
from builder.store import cachemounts
from builder.store.cachemounts import CacheMountInfo, tree_size
from builder.store.store import Store, remove_entry


@dataclass
class Reach:
    images: set[str] = field(default_factory=set)
    blobs: set[str] = field(default_factory=set)
    layers: set[str] = field(default_factory=set)

    def add_config(self, store: Store, config_digest: str) -> bool:
        """Mark a config and its layers; False if the config is missing or unreadable."""
        try:
            cfg = parse_config(store.read_blob(config_digest))
        except (StoreError, ArchiveError):
            return False
        self.blobs.add(config_digest)
        for diff, chain in zip(cfg.diff_ids, chain_ids(cfg.diff_ids)):
            self.blobs.add(diff)
            self.layers.add(chain)
        return True


@dataclass(frozen=True)
class Usage:
    images: int
    dangling_images: int
    layers: int
    layer_bytes: int                # tar bytes of every stored layer
    cache_entries: int
    cache_only_bytes: int           # layers only the build cache keeps
    containers: int
    container_bytes: int
    reclaimable_bytes: int          # what `prune` would free (without --all)
    cache_mounts: tuple[CacheMountInfo, ...] = ()   # RUN --mount=type=cache dirs


def _roots(store: Store, *, with_cache: bool) -> tuple[Reach, list[str]]:
    reach = Reach()
    named = set(store.tags().values())
    for name in store.container_names():
        try:
            named.add(json.loads(store.container_meta_path(name).read_text())["image"])
        except (OSError, ValueError, KeyError):
            continue
    dangling = [i for i in store.image_ids() if i not in named]
    for image_id in named:
        if store.has_image(image_id):
            reach.images.add(image_id)
            reach.add_config(store, image_id)
            reach.blobs.add(store.image_manifest_digest(image_id))
    if with_cache:
        for entry in store.cache_entries():
            try:
                reach.add_config(store, json.loads(entry.read_text())["config"])
            except (OSError, ValueError, KeyError):
                continue
    return reach, dangling


def usage(store: Store) -> Usage:
    keep, dangling = _roots(store, with_cache=False)
    keep_all, _ = _roots(store, with_cache=True)
    layers = store.stored_layers()
    size = {c: store.layer_info(c).size for c in layers}
    containers = store.container_names()
    return Usage(
        images=len(store.image_ids()), dangling_images=len(dangling), layers=len(layers),
        layer_bytes=sum(size.values()),
        cache_entries=len(store.cache_entries()),
        cache_only_bytes=sum(size[c] for c in layers if c in keep_all.layers and c not in keep.layers),
        containers=len(containers),
        container_bytes=sum(tree_size(store.container_dir(c) / "upper") for c in containers),
        reclaimable_bytes=sum(size[c] for c in layers if c not in keep_all.layers),
        cache_mounts=tuple(cachemounts.listing(store)))


def prune(store: Store, *, all_cache: bool = False, cache_mounts: bool = False) -> dict[str, int]:
    """Remove dangling images, cache entries that no longer resolve (all of them with
    ``all_cache``), then every layer and blob nothing reachable names, and with
    ``cache_mounts`` every RUN cache mount.  Takes the store's collecting lock, so it waits for
    running builds and no build starts meanwhile."""
    removed = {"images": 0, "cache_entries": 0, "layers": 0, "blobs": 0, "bytes": 0, "cache_mounts": 0}
    with store.collecting():
        if cache_mounts:
            removed["cache_mounts"], freed = cachemounts.prune(store)
            removed["bytes"] += freed
        _, dangling = _roots(store, with_cache=False)
        for image_id in dangling:
            store.remove_image(image_id)
            removed["images"] += 1
        for entry in store.cache_entries():
            if all_cache or not _entry_resolves(store, entry):
                entry.unlink(missing_ok=True)
                removed["cache_entries"] += 1
        if all_cache:
            for index in store.context_indexes():          # remembered context file hashes
                index.unlink(missing_ok=True)
            for memo in store.memo_paths():             # COPY --from checksums and the like
                remove_entry(memo)
            for parsed in store.parsed_paths():         # remembered Buildfile parses
                parsed.unlink(missing_ok=True)
        reach, _ = _roots(store, with_cache=True)
        with store.lock():
            for chain in store.stored_layers():
                if chain not in reach.layers:
                    removed["bytes"] += store.layer_info(chain).size
                    store.link_path(chain).unlink(missing_ok=True)
                    shutil.rmtree(store.layer_root(chain))
                    removed["layers"] += 1
            for digest in store.blob_digests():
                if digest not in reach.blobs:
                    store.remove_blob(digest)
                    removed["blobs"] += 1
            for memo in store.memo_paths():
                if not _memo_resolves(store, memo):
                    remove_entry(memo)
    return removed


def _memo_resolves(store: Store, memo: Path) -> bool:
    """False for a memo that names a layer (``{"chain": …}``: build/copyreuse.py) the store
    no longer has; memos of other shapes are kept."""
    try:
        named = json.loads(memo.read_bytes())
    except (OSError, ValueError):
        return False
    chain = named.get("chain") if isinstance(named, dict) else None
    return not isinstance(chain, str) or store.has_layer(chain)


def _entry_resolves(store: Store, entry: Path) -> bool:
    try:
        config = json.loads(entry.read_text())["config"]
        cfg = parse_config(store.read_blob(config))
    except (OSError, ValueError, KeyError, StoreError, ArchiveError):
        return False
    return all(store.has_layer(c) for c in chain_ids(cfg.diff_ids))
