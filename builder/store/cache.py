"""The build cache: step keys → the image config a step produced.

Key of a step = sha256(the config digest of the image before the step, "\\n", the step's
description as canonical JSON (build/steps.py), and for ADD/COPY a checksum of every source's
path, type, mode, size, mtime (kept in the layer), link target and content).  Chaining on
the *result* of the previous step (as docker's classic builder chains on the parent image ID)
means that a step which runs again — because its description changed, or its entry was
pruned — gives a new config digest, so every step after it runs again too, and nothing before
it does.

An entry is ``cache/<key hex>`` = {"config": <digest of the resulting config blob>}.
``lookup`` serves it only if that config and every layer it names are whole in the store
(blob present, its size/mtime/inode fingerprint unchanged since the store recorded it — or, if
that changed, its sha256 still right); otherwise the entry is dropped.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from builder.errors import StoreError
from builder.oci.config import parse_config
from builder.oci.digest import chain_ids, sha256_file
from builder.store.store import Store


def step_key(parent_config_digest: str, definition: str) -> str:
    return "sha256:" + hashlib.sha256(f"{parent_config_digest}\n{definition}".encode(
        "utf-8", "surrogateescape")).hexdigest()


class BuildCache:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._whole: set[str] = set()        # layers checked in this build: once is enough

    def lookup(self, key: str) -> bytes | None:
        """The exact config bytes step ``key`` produced, if the store still holds it whole."""
        path = self.store.cache_entry_path(key)
        try:
            entry = json.loads(path.read_text())
            config = self.store.read_blob(entry["config"])
        except (FileNotFoundError, ValueError, KeyError, StoreError):
            path.unlink(missing_ok=True)
            return None
        for chain in chain_ids(parse_config(config).diff_ids):
            if not self.layer_is_whole(chain):
                path.unlink(missing_ok=True)
                return None
        return config

    def record(self, key: str, config: bytes) -> None:
        """Remember that the step ``key`` produced ``config`` (stored as a blob)."""
        digest = self.store.put_blob_bytes(config)
        self.store.atomic_write(self.store.cache_entry_path(key),
                                json.dumps({"config": digest}).encode(), durable=False)

    def layer_is_whole(self, chain: str) -> bool:
        """The layer's dir and blob are there and the blob still hashes to its diffID."""
        if chain in self._whole:
            return True
        if self._check_layer(chain):
            self._whole.add(chain)
            return True
        return False

    def _check_layer(self, chain: str) -> bool:
        if not self.store.has_layer(chain):
            return False
        info = self.store.layer_info(chain)
        blob = self.store.blob_path(info.diff_id)
        try:
            st = os.stat(blob)
        except FileNotFoundError:
            return False
        if st.st_size != info.size:
            return False
        if self.store.blob_fingerprint(info.diff_id) == _fingerprint(st):
            return True
        if sha256_file(blob)[0] != info.diff_id:          # changed on disk: check it fully
            return False
        self.store.remember_fingerprint(info.diff_id, _fingerprint(st))
        return True

    def entries(self) -> list[Path]:
        """Every entry of the cache, sorted (``Store.cache_entries``)."""
        return self.store.cache_entries()


def _fingerprint(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino]
