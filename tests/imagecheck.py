"""Invariant checks every producer test runs (go-containerregistry's `validate`, for us),
and readers of a stored image in the conformance format."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from listing import tar_lines, tree_lines

from builder.layer import overlay, sandbox
from builder.layer.overlay import OverlayMount
from builder.oci.config import parse_config
from builder.oci.digest import chain_ids, sha256_bytes, sha256_file
from builder.store.store import Store


def validate_image(store: Store, image_id: str) -> None:
    """Every invariant of a stored image; raises AssertionError naming the broken one."""
    config = store.image_config(image_id)
    assert sha256_bytes(config) == image_id, "image ID is not the sha256 of the config bytes"
    cfg = parse_config(config)
    non_empty = [h for h in cfg.history if not h.empty_layer]
    assert len(non_empty) == len(cfg.diff_ids), \
        f"{len(non_empty)} non-empty history entries for {len(cfg.diff_ids)} layers"
    manifest = json.loads(store.image_manifest(image_id))
    assert manifest["config"]["digest"] == image_id
    assert manifest["config"]["size"] == len(config)
    assert [d["digest"] for d in manifest["layers"]] == list(cfg.diff_ids)
    parent = None
    for diff, chain, desc in zip(cfg.diff_ids, chain_ids(cfg.diff_ids), manifest["layers"]):
        digest, size = sha256_file(store.blob_path(diff))
        assert digest == diff, f"layer blob {diff} does not hash to its digest"
        assert size == desc["size"], f"layer {diff}: manifest size {desc['size']} != {size}"
        info = store.layer_info(chain)
        assert (info.diff_id, info.parent) == (diff, parent), f"layer {chain} metadata is wrong"
        assert store.layer_dir(chain).is_dir(), f"layer {chain} has no unpacked dir"
        parent = chain


def layer_lines(store: Store, image_id: str, skip: int) -> list[list[str]]:
    """The conformance-format lines of each layer after the first ``skip`` layers."""
    cfg = parse_config(store.image_config(image_id))
    out = []
    for diff in cfg.diff_ids[skip:]:
        with store.open_blob(diff) as f:
            out.append(tar_lines(f))
    return out


def rootfs_lines(store: Store, image_id: str) -> list[str]:
    """The image's root filesystem (all layers, union semantics) in the conformance format."""
    return chain_rootfs_lines(store, chain_ids(parse_config(store.image_config(image_id)).diff_ids))


def chain_rootfs_lines(store: Store, chains: list[str]) -> list[str]:
    """The union of the stored layers ``chains`` (base first) in the conformance format."""
    with tempfile.TemporaryDirectory(dir=store.root / "tmp") as tmp:
        for sub in ("upper", "work", "merged"):
            os.mkdir(os.path.join(tmp, sub))
        mount = OverlayMount(lowers=tuple(store.short_layer_path(c) for c in reversed(chains)),
                             upper=f"{tmp}/upper", work=f"{tmp}/work", target=f"{tmp}/merged",
                             cwd=str(store.root))
        return sandbox.call_in_root(mount, lambda merged: tree_lines(Path(merged)))


def history_lines(store: Store, image_id: str, skip: int) -> list[str]:
    cfg = parse_config(store.image_config(image_id))
    return [f"{'empty' if h.empty_layer else 'layer'}  {h.created_by}" for h in cfg.history[skip:]]


def mask_source_hash(line: str) -> str:
    """ADD/COPY's ``file:<hex>`` is each builder's own checksum; compare everything else."""
    return re.sub(r"\b(file|dir|multi):[0-9a-f]{64}\b", r"\1:<hash>", line)


def config_view(store: Store, image_id: str) -> dict:
    """The keys of expected/config.json, as `docker inspect` shows them (absent → null/"")."""
    c = json.loads(store.image_config(image_id)).get("config") or {}
    return {"Cmd": c.get("Cmd"), "Entrypoint": c.get("Entrypoint"), "Env": c.get("Env"),
            "ExposedPorts": c.get("ExposedPorts"), "Labels": c.get("Labels"),
            "User": c.get("User", ""), "WorkingDir": c.get("WorkingDir", "")}


def mounts_under(*paths: Path) -> list[str]:
    """Mount points in this (the host's) mount namespace at or below any of ``paths``."""
    return [point for p in paths for point in overlay.mounts_under(str(Path(p).resolve()))]
