"""What the store remembers about registries, under ``<store>/registry/``:

    compressed/<diffID hex>.json   {"digest", "size", "compression"}: the compressed blob of a
                                   layer (in blobs/sha256/ too), made once by push or kept from a
                                   pull, so the same bytes go out every time
    repos/<host>/<digest hex>.json ["team/base", …]: repositories of that registry known to hold
                                   the blob (we pushed or pulled it there), for cross-repo mounts

Records are hints: a missing or stale one only costs a recompression or a failed mount.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from builder.oci.digest import hex_of
from builder.store.store import Store

COMPRESSIONS = ("gzip", "none", "zstd")


@dataclass(frozen=True)
class CompressedBlob:
    digest: str
    size: int
    compression: str          # one of COMPRESSIONS


def _record(store: Store, *parts: str) -> Path:
    """The record file at ``registry/<parts…>``; its directory is made if missing."""
    path = store.registry_record_path(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def compressed_blob(store: Store, diff_id: str) -> CompressedBlob | None:
    """The recorded compressed blob of layer ``diff_id``, if it is still in the store."""
    try:
        obj = json.loads(_record(store, "compressed", f"{hex_of(diff_id)}.json").read_text())
        blob = CompressedBlob(obj["digest"], int(obj["size"]), obj["compression"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    if blob.compression not in COMPRESSIONS or not store.has_blob(blob.digest):
        return None
    return blob


def remember_compressed(store: Store, diff_id: str, blob: CompressedBlob) -> None:
    data = json.dumps({"digest": blob.digest, "size": blob.size, "compression": blob.compression})
    store.atomic_write(_record(store, "compressed", f"{hex_of(diff_id)}.json"), data.encode(), durable=False)


def repos_holding(store: Store, host: str, digest: str) -> list[str]:
    try:
        repos = json.loads(_record(store, "repos", _safe(host), f"{hex_of(digest)}.json").read_text())
    except (FileNotFoundError, ValueError):
        return []
    return [r for r in repos if isinstance(r, str)] if isinstance(repos, list) else []


def remember_repo(store: Store, host: str, digest: str, repo: str) -> None:
    with store.lock():
        repos = repos_holding(store, host, digest)
        if repo in repos:
            return
        repos = [repo] + repos[:15]
        store.atomic_write(_record(store, "repos", _safe(host), f"{hex_of(digest)}.json"),
                           json.dumps(repos).encode(), durable=False)


def _safe(host: str) -> str:
    return host.replace("/", "_").replace(":", "_")
