"""``pybuild check``: verify every invariant of the store, and repair what is safe to repair.

What is checked (each failure is one ``Problem``, one line of output):

- blobs: every file under ``blobs/sha256`` hashes to its name (hashed while read; with
  ``fast`` a blob whose fingerprint is the one recorded when it was stored is skipped);
- layers: every ``layers/<chain>`` has a readable meta.json whose chain ID is
  ``chain_id(parent, diff_id)`` and names the dir, whose parent layer exists, whose diff_id
  blob exists, and whose ``diff/`` re-captures to the diffID (capture.py into a hasher).
  Layers not made by capture (pulled, loaded) re-capture differently byte for byte; for
  those the blob is unpacked into a scratch dir and both dirs are captured with every mtime
  clamped to 0: equal tars mean the dir holds exactly what the blob says, file contents,
  modes, owners, xattrs and whiteouts included;
- ``l/`` links: each points at an existing layer's ``diff`` dir;
- images: ``images/<id>`` names a manifest blob whose config digest is the image ID, whose
  layers are the config's diffIDs with their sizes, every blob and layer dir present;
- tags: each points at a stored image;
- ``tmp/``: no staging left by a writer that is gone.  Opening the store (``Store()``) sweeps
  such staging when no one holds the lock (the store's crash recovery), so this reports only
  what that sweep could not remove.

Repair (``repair=True``) removes what is broken *and* unreferenced: a corrupt or misnamed
blob no image needs, a broken layer dir no image needs (with its ``l/`` link), dangling links,
stale staging, broken images no tag names, tags to missing images.  What it cannot remove
stays a problem (``repaired=False``), so the exit code still says the store is not whole.

The check holds the collecting lock (as prune does): no build runs while it looks.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from builder.errors import ArchiveError, LayerError, ManifestError, StoreError
from builder.layer.capture import capture
from builder.layer.unpack import unpack_layer
from builder.oci.config import parse_config
from builder.oci.digest import HashingWriter, chain_id, chain_ids, is_digest, sha256_file
from builder.oci.manifest import Manifest
from builder.store.store import Store, remove_entry


@dataclass(frozen=True)
class Problem:
    """One broken thing: ``where`` (a store-relative path), ``what`` is wrong, and, after a
    repair, whether it was removed."""

    where: str
    what: str
    repaired: bool = False

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}"
        return text + " (removed)" if self.repaired else text


@dataclass(frozen=True)
class _Refs:
    """What the stored images (tagged or not) name: the things repair must never remove."""

    blobs: frozenset[str]
    layers: frozenset[str]


def check_store(store: Store, *, repair: bool = False, fast: bool = False) -> list[Problem]:
    """Every problem found, in a stable order; empty means the store is whole."""
    with store.collecting():
        return _Checker(store, repair=repair, fast=fast).run()


class _Checker:
    def __init__(self, store: Store, *, repair: bool, fast: bool) -> None:
        self.store = store
        self.root = store.root
        self.repair = repair
        self.fast = fast
        self.problems: list[Problem] = []
        self.bad_blobs: set[str] = set()
        self.bad_layers: set[str] = set()
        self._blob_paths: dict[str, Path] = {}      # bad blob → its entry of blobs/sha256

    def run(self) -> list[Problem]:
        self._stale_scratch()
        self._blobs()
        refs = self._refs()
        self._layers(refs)
        self._links()
        broken_images = self._images()
        self._tags(broken_images)
        self._remove_unreferenced(refs)
        return self.problems

    def _report(self, path: Path, what: str, repaired: bool = False) -> None:
        self.problems.append(Problem(os.path.relpath(path, self.root), what, repaired))

    # -- tmp/ --------------------------------------------------------------------------------
    def _stale_scratch(self) -> None:
        for entry, alive in self.store.scratch_entries():
            if alive:
                continue
            removed = False
            if self.repair:
                remove_entry(entry)
                removed = not os.path.lexists(entry)
            self._report(entry, "staging left by a writer that is gone", removed)

    # -- blobs -------------------------------------------------------------------------------
    def _blobs(self) -> None:
        for path in self.store.blob_entries():
            digest = "sha256:" + path.name
            if not is_digest(digest) or not path.is_file() or path.is_symlink():
                self.bad_blobs.add(digest)
                self._blob_paths[digest] = path
                self._report(path, "not a blob (name is not a sha256 digest, or not a file)")
                continue
            if self.fast:
                st = os.stat(path)
                if self.store.blob_fingerprint(digest) == [st.st_size, st.st_mtime_ns, st.st_ino]:
                    continue
            actual = sha256_file(path)[0]
            if actual != digest:
                self.bad_blobs.add(digest)
                self._blob_paths[digest] = path
                self._report(path, f"content hashes to {actual}, not to its name")

    # -- what images name --------------------------------------------------------------------
    def _refs(self) -> _Refs:
        blobs: set[str] = set()
        layers: set[str] = set()
        for image_id in self.store.image_ids():
            blobs.add(image_id)
            try:
                blobs.add(self.store.image_manifest_digest(image_id))
                cfg = _config(self.store, image_id)
            except (OSError, ValueError, StoreError, ArchiveError):
                continue
            blobs.update(cfg.diff_ids)
            layers.update(chain_ids(cfg.diff_ids))
        return _Refs(frozenset(blobs), frozenset(layers))

    # -- layers ------------------------------------------------------------------------------
    def _layers(self, refs: _Refs) -> None:
        for d in self.store.layer_entries():
            chain = "sha256:" + d.name
            what = self._layer_problem(d, chain)
            if what is None:
                continue
            self.bad_layers.add(chain)
            removed = False
            if self.repair and chain not in refs.layers:
                if is_digest(chain):
                    self.store.link_path(chain).unlink(missing_ok=True)
                remove_entry(d)
                removed = not os.path.lexists(d)
            self._report(d, what, removed)

    def _layer_problem(self, d: Path, chain: str) -> str | None:
        if not is_digest(chain) or not d.is_dir() or d.is_symlink():
            return "not a layer dir (name is not a sha256 digest, or not a dir)"
        try:
            meta = json.loads(self.store.layer_meta_path(chain).read_text())
            diff_id, parent, size = meta["diff_id"], meta["parent"], meta["size"]
        except FileNotFoundError:
            return "meta.json is missing (a half-made layer)"
        except (OSError, ValueError, KeyError, TypeError) as e:
            return f"meta.json is unreadable: {e}"
        if not is_digest(diff_id) or (parent is not None and not is_digest(parent)):
            return "meta.json: diff_id or parent is not a digest"
        if chain_id(parent, diff_id) != chain:
            return f"meta.json: chain_id(parent, diff_id) is {chain_id(parent, diff_id)}, not the dir's name"
        if parent is not None and not self.store.has_layer(parent):
            return f"parent layer {parent} is missing"
        diff = self.store.layer_dir(chain)
        if not diff.is_dir() or diff.is_symlink():
            return "diff/ is missing"
        blob = self.store.blob_path(diff_id)
        if not blob.is_file() or diff_id in self.bad_blobs:
            return f"its layer blob {diff_id} is missing or corrupt"
        if blob.stat().st_size != size:
            return f"meta.json size {size} != blob size {blob.stat().st_size}"
        return self._diff_problem(diff, diff_id)

    def _diff_problem(self, diff: Path, diff_id: str) -> str | None:
        """None if ``diff`` holds exactly what blob ``diff_id`` holds (see the module doc)."""
        try:
            if capture(diff, HashingWriter(None)).diff_id == diff_id:
                return None
            ours = capture(diff, HashingWriter(None), mtime_clamp=0).diff_id
            scratch = self.store.scratch_dir("check")
            try:
                with self.store.open_blob(diff_id) as f:
                    unpack_layer(f, scratch / "diff")
                theirs = capture(scratch / "diff", HashingWriter(None), mtime_clamp=0).diff_id
            finally:
                remove_entry(scratch)
        except (LayerError, StoreError) as e:
            return f"diff/ could not be compared with its blob: {e}"
        return None if ours == theirs else f"diff/ does not hold what layer blob {diff_id} holds"

    # -- l/ ----------------------------------------------------------------------------------
    def _links(self) -> None:
        for link in self.store.link_entries():
            try:
                target = os.readlink(link)
            except OSError:
                target = None
            chain = "sha256:" + (target.split("/")[-2] if target and target.count("/") >= 2 else "")
            has_dir = is_digest(chain) and self.store.layer_dir(chain).is_dir()
            whole = (has_dir and target == self.store.link_target(chain)
                     and chain[7:].startswith(link.name) and chain not in self.bad_layers)
            if whole:
                continue
            removed = False
            if self.repair and not has_dir:
                link.unlink(missing_ok=True)
                removed = True
            self._report(link, f"link to {target!r}: no such layer, or a broken one", removed)

    # -- images and tags ---------------------------------------------------------------------
    def _images(self) -> set[str]:
        broken = set()
        tagged = set(self.store.tags().values())
        for image_id in self.store.image_ids():
            what = self._image_problem(image_id)
            if what is None:
                continue
            broken.add(image_id)
            path = self.store.image_record_path(image_id)
            removed = False
            if self.repair and image_id not in tagged and not _named_by_container(self.store, image_id):
                path.unlink(missing_ok=True)
                removed = True
            self._report(path, what, removed)
        return broken

    def _image_problem(self, image_id: str) -> str | None:
        if not is_digest(image_id):
            return "not an image (name is not a sha256 digest)"
        try:
            manifest_digest = self.store.image_manifest_digest(image_id)
            if not is_digest(manifest_digest) or not self.store.has_blob(manifest_digest):
                return f"manifest blob {manifest_digest!r} is missing"
            if manifest_digest in self.bad_blobs:
                return f"manifest blob {manifest_digest} is corrupt"
            if not self.store.has_blob(image_id) or image_id in self.bad_blobs:
                return "config blob is missing or corrupt"
            raw = json.loads(self.store.read_blob(manifest_digest))
            cfg = _config(self.store, image_id)
        except (OSError, ValueError, StoreError, ArchiveError) as e:
            return f"unreadable: {e}"
        try:
            manifest = Manifest.parse(raw)
        except ManifestError:
            return "manifest is malformed"
        if manifest.config.digest != image_id:
            return "manifest names another config"
        layers = [(d.digest, d.size) for d in manifest.layers]
        if [d for d, _ in layers] != list(cfg.diff_ids):
            return "manifest layers differ from the config's diffIDs"
        for (diff, size), chain in zip(layers, chain_ids(cfg.diff_ids)):
            if not self.store.has_blob(diff) or diff in self.bad_blobs:
                return f"layer blob {diff} is missing or corrupt"
            if self.store.blob_path(diff).stat().st_size != size:
                return f"layer blob {diff}: manifest size {size} is wrong"
            if not self.store.has_layer(chain) or chain in self.bad_layers:
                return f"layer dir {chain} is missing or broken"
        return None

    def _tags(self, broken_images: set[str]) -> None:
        tags = self.store.tags()
        gone = {}
        for ref, image_id in sorted(tags.items()):
            if not self.store.has_image(image_id):
                gone[ref] = image_id
            elif image_id in broken_images:
                self.problems.append(Problem(f"tags.json {ref}", f"image {image_id} is broken"))
        if self.repair and gone:
            for ref in gone:
                self.store.remove_tag(ref)
        for ref, image_id in gone.items():
            self.problems.append(Problem(f"tags.json {ref}", f"no such image {image_id}", self.repair))

    # -- repair of blobs, last: only now is it known what still names them --------------------
    def _remove_unreferenced(self, refs: _Refs) -> None:
        if not self.repair:
            return
        fixed = []
        for i, p in enumerate(self.problems):
            digest = "sha256:" + Path(p.where).name
            if not p.where.startswith("blobs/sha256/") or digest in refs.blobs or p.repaired:
                continue
            self.store.remove_blob_entry(self._blob_paths[digest])
            fixed.append(i)
        for i in fixed:
            self.problems[i] = Problem(self.problems[i].where, self.problems[i].what, True)


def _config(store: Store, image_id: str):
    return parse_config(store.read_blob(image_id))


def _named_by_container(store: Store, image_id: str) -> bool:
    for name in store.container_names():
        try:
            if json.loads(store.container_meta_path(name).read_text()).get("image") == image_id:
                return True
        except (OSError, ValueError, AttributeError):
            continue
    return False
