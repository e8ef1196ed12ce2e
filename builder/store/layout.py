"""Where everything lives under a store root: the one place that spells the store's paths.

Layout under the root (default /var/lib/pybuild, or $PYBUILD_ROOT):

    blobs/sha256/<hex>          every blob by digest: layer tars (uncompressed, so digest = diffID),
                                image configs (digest = image ID), manifests, compressed layers
    blobs/fingerprints/<hex>    [size, mtime_ns, inode] of a blob when the store last knew it whole
    layers/<chain-hex>/diff/    the layer unpacked in overlay format (whiteouts as 0:0 char
                                devices, opaque dirs by xattr), mounted as a lowerdir as it is
    layers/<chain-hex>/meta.json  {"diff_id", "parent", "size"}: the layer's identity
    l/<16 hex>                  short symlink to a layer's diff dir, to keep mount options short
    images/<id-hex>             the manifest digest of each stored image
    tags.json                   {"name:tag": "sha256:<image id>"}
    cache/<key hex>             build-cache entries (cache.py)
    cache/.contexts/<…>.json    remembered sha256 of one context's files (filehashes.FileHashes)
    cache/.parsed/<key>         remembered parses of Buildfiles (parsecache.py)
    cache/.<kind>-<key>         memos: small remembered answers (COPY --from: .copyfrom-<key>;
                                what a COPY's last layer holds: .copylayer-<key>)
    containers/<name>/          kept containers: meta.json, upper/, work/, merged/ (runtime)
    registry/…                  what the store remembers about registries (registry/records.py)
    mnt/empty                   an empty dir: the second lower of a one-layer ``pybuild mount``
    tmp/                        scratch on the same filesystem, so commits are a rename; names
                                ``live-<pid>-…`` say which process owns them
    lock, gc.lock               flock(2) files (store.py)

``StoreLayout`` names these and lists the directories; it creates, writes and removes nothing
(``Store``, which extends it, does).  Paths are absolute unless a name says ``short`` or
relative: those are relative to the root, as overlay mount options (cwd = root) want them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from builder.oci.digest import hex_of, is_digest

SHORT_ID = 16
#: Relative to the root, as a lower dir of a mount: see ``empty_lower_path``.
EMPTY_LOWER = "mnt/empty"
#: The file of a kept container that says what it is (its image, command, creation time).
CONTAINER_META = "meta.json"
#: The two entries of a layer's dir (``layer_root``): its unpacked tree and its identity.
LAYER_DIFF = "diff"
LAYER_META = "meta.json"
#: The directories every store has (``Store()`` creates them).
DIRS = ("blobs/sha256", "blobs/fingerprints", "layers", "l", "images", "tmp", "cache")


class StoreLayout:
    """The names of everything under ``root``; see the module docstring for the tree."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).absolute()

    # -- blobs -------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / hex_of(digest)

    def fingerprint_path(self, digest: str) -> Path:
        return self.fingerprint_of_entry(self.blob_path(digest))

    def fingerprint_of_entry(self, entry: Path) -> Path:
        """The fingerprint file of an entry of ``blob_entries()``, whatever its name."""
        return self.root / "blobs" / "fingerprints" / entry.name

    def blob_entries(self) -> list[Path]:
        """Every entry of blobs/sha256, sorted, whatever its name or type (``check`` reports
        the ones that are not blobs)."""
        return sorted((self.root / "blobs" / "sha256").iterdir())

    def blob_digests(self) -> list[str]:
        """The digest of every entry of blobs/sha256 whose name is one, sorted."""
        return [d for d in ("sha256:" + p.name for p in self.blob_entries()) if is_digest(d)]

    # -- layers ------------------------------------------------------------------------------
    def layer_root(self, chain_id: str) -> Path:
        return self.root / "layers" / hex_of(chain_id)

    def layer_dir(self, chain_id: str) -> Path:
        """The unpacked overlay-format directory of a committed layer."""
        return self.layer_root(chain_id) / LAYER_DIFF

    def layer_meta_path(self, chain_id: str) -> Path:
        return self.layer_root(chain_id) / LAYER_META

    def short_layer_path(self, chain_id: str) -> str:
        """``l/<16 hex>``: a short path (relative to the store root) to the layer's diff dir."""
        return f"l/{hex_of(chain_id)[:SHORT_ID]}"

    def link_path(self, chain_id: str) -> Path:
        """The ``l/<16 hex>`` symlink of a layer (absolute)."""
        return self.root / self.short_layer_path(chain_id)

    def link_target(self, chain_id: str) -> str:
        """What the ``l/`` link of a layer holds: ``../layers/<chain hex>/diff``."""
        return f"../layers/{hex_of(chain_id)}/{LAYER_DIFF}"

    def layer_entries(self) -> list[Path]:
        """Every entry of layers/, sorted, whatever its name or state."""
        return sorted((self.root / "layers").iterdir())

    def stored_layers(self) -> list[str]:
        """The chain ID of every committed layer (a digest-named dir with its meta.json), sorted."""
        return [c for c in ("sha256:" + d.name for d in self.layer_entries())
                if is_digest(c) and self.layer_meta_path(c).is_file()]

    def link_entries(self) -> list[Path]:
        """Every entry of l/, sorted."""
        return sorted((self.root / "l").iterdir())

    # -- images and tags ---------------------------------------------------------------------
    def image_record_path(self, image_id: str) -> Path:
        """``images/<id hex>``: holds the manifest digest of a stored image."""
        return self.root / "images" / hex_of(image_id)

    def image_ids(self) -> list[str]:
        """``sha256:<name>`` of every entry of images/, sorted (names are not checked)."""
        return sorted("sha256:" + p.name for p in (self.root / "images").iterdir())

    def tags_path(self) -> Path:
        return self.root / "tags.json"

    # -- build cache -------------------------------------------------------------------------
    def cache_entry_path(self, key: str) -> Path:
        """The build-cache entry of step ``key`` (``sha256:<hex>``)."""
        return self.root / "cache" / hex_of(key)

    def cache_entries(self) -> list[Path]:
        """Every build-cache entry (hex-named files of cache/; not file hashes or memos), sorted."""
        return sorted(p for p in (self.root / "cache").glob("[0-9a-f]*") if is_digest("sha256:" + p.name))

    def context_index_path(self, context: str) -> Path:
        """cache/.contexts/<sha256(context)[:32]>.json: the remembered hashes of one build
        context's files (store/filehashes.py)."""
        name = hashlib.sha256(context.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return self.root / "cache" / ".contexts" / f"{name}.json"

    def parsed_path(self, key: str) -> Path:
        """cache/.parsed/<key>: a remembered parse of a Buildfile (store/parsecache.py)."""
        return self.root / "cache" / ".parsed" / key

    def parsed_paths(self) -> list[Path]:
        return sorted((self.root / "cache" / ".parsed").glob("*"))

    def context_indexes(self) -> list[Path]:
        return sorted((self.root / "cache" / ".contexts").glob("*.json"))

    def memo_path(self, kind: str, key: str) -> Path:
        """``cache/.<kind>-<key>``: a small remembered answer (COPY --from keeps the checksum
        of its sources as kind ``copyfrom``).  Memos are cache: ``prune --all`` drops them.
        Raises ValueError for a kind or key that would not be one file name."""
        if not kind or not key or "/" in kind + key or "-" in kind or "\0" in kind + key:
            raise ValueError(f"bad memo name: kind {kind!r}, key {key!r}")
        return self.root / "cache" / f".{kind}-{key}"

    def memo_paths(self) -> list[Path]:
        """Every memo (``cache/.<kind>-<key>``) of every kind, sorted."""
        return sorted((self.root / "cache").glob(".*-*"))

    # -- containers --------------------------------------------------------------------------
    def container_dir(self, name: str) -> Path:
        """``containers/<name>``: where kept container ``name`` lives (it may not exist)."""
        return self.root / "containers" / name

    def container_meta_path(self, name: str) -> Path:
        return self.container_dir(name) / CONTAINER_META

    def container_names(self) -> list[str]:
        """The names of the kept containers (dirs of containers/ with a meta.json), sorted."""
        root = self.root / "containers"
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if (p / CONTAINER_META).is_file())

    # -- registry records, mounts ------------------------------------------------------------
    def registry_record_path(self, *parts: str) -> Path:
        """``registry/<parts…>``: a record registry/records.py keeps (its parent may not exist)."""
        return self.root.joinpath("registry", *parts)

    def empty_lower_path(self) -> Path:
        """``mnt/empty`` (absolute; ``EMPTY_LOWER`` relative): a lower dir that must stay empty."""
        return self.root / EMPTY_LOWER

    # -- scratch -----------------------------------------------------------------------------
    def tmp_dir(self) -> Path:
        """tmp/: scratch on the store's filesystem.  Name entries with ``live_prefix``."""
        return self.root / "tmp"

    def scratch_entries(self) -> list[tuple[Path, bool]]:
        """Every entry of tmp/, sorted, with whether its owner (``live-<pid>-…``) still runs."""
        return [(e, e.name.startswith("live-") and _owner_alive(e))
                for e in sorted(self.tmp_dir().iterdir())]

    def lock_path(self) -> Path:
        return self.root / "lock"

    def cache_mounts_root(self) -> Path:
        """cache-mounts/: the directories of RUN --mount=type=cache (store/cachemounts.py)."""
        return self.root / "cache-mounts"

    def build_record_path(self, name: str) -> Path:
        """builds/<sha256(name)>.json: the last build of ``name`` (a tag, or a Buildfile), step by
        step, for saying why a step misses the cache (build/cachemiss.py)."""
        (self.root / "builds").mkdir(exist_ok=True)
        return self.root / "builds" / (hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest() + ".json")

    def auth_path(self) -> Path:
        """auth.json: registry credentials stored by ``pybuild login`` (docker's config shape)."""
        return self.root / "auth.json"

    def gc_lock_path(self) -> Path:
        return self.root / "gc.lock"


def live_prefix(what: str) -> str:
    """``live-<our pid>-<what>-``: the start of a tmp/ name, so that a concurrent ``Store()``
    does not sweep it while we live."""
    return f"live-{os.getpid()}-{what}-"


def _owner_alive(entry: Path) -> bool:
    try:
        pid = int(entry.name.split("-")[1])
    except (IndexError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
