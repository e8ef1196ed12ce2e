"""``pybuild history`` and ``pybuild images``: docker's tables, computed from the store."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime

from builder.inspect.table import human_size, render, since
from builder.oci.config import ImageConfig, parse_config
from builder.oci.digest import chain_ids, short_id
from builder.store.store import Store


@dataclass(frozen=True)
class HistoryRow:
    image: str                 # the image ID on the top row, "<missing>" below (as docker)
    created: str
    created_by: str
    size: int                  # bytes of file content the layer adds (0 for empty_layer)
    comment: str
    diff_id: str | None        # None for empty_layer entries
    chain_id: str | None


def history_rows(store: Store, image_id: str) -> list[HistoryRow]:
    """Newest first, like ``docker history``."""
    cfg = parse_config(store.image_config(image_id))
    chains = chain_ids(cfg.diff_ids)
    rows: list[HistoryRow] = []
    layer = 0
    for h in cfg.history:
        diff = chain = None
        size = 0
        if not h.empty_layer and layer < len(cfg.diff_ids):
            diff, chain = cfg.diff_ids[layer], chains[layer]
            size = layer_content_size(store, chain)
            layer += 1
        rows.append(HistoryRow("<missing>", h.created, h.created_by, size, h.comment, diff, chain))
    rows.reverse()
    if rows:
        rows[0] = HistoryRow(image_id, *[getattr(rows[0], f) for f in
                                         ("created", "created_by", "size", "comment", "diff_id", "chain_id")])
    return rows


def layer_content_size(store: Store, chain: str) -> int:
    """Bytes of regular-file content (hardlinks counted once) and symlink targets, as
    docker's overlay2 reports a layer's size."""
    if not store.has_layer(chain):
        return 0
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(store.layer_dir(chain)):
        for name in filenames + dirnames:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISDIR(st.st_mode):
                continue
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    continue
                seen.add(key)
            if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                total += st.st_size
    return total


def format_history(rows: list[HistoryRow], *, no_trunc: bool = False, ids: bool = False,
                   now: datetime | None = None) -> str:
    """docker history's table; ``ids`` adds DIFF ID and CHAIN ID columns (short unless
    ``no_trunc``), empty for history entries that made no layer."""
    now = now or datetime.now(UTC)
    header = ("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT")
    table = [header + (("DIFF ID", "CHAIN ID") if ids else ())]
    for r in rows:
        image = r.image if r.image == "<missing>" or no_trunc else short_id(r.image)
        by = r.created_by if no_trunc else _trunc(r.created_by, 45)
        row: tuple[str, ...] = (image, since(r.created, now), by, human_size(r.size), r.comment)
        if ids:
            row += tuple("" if d is None else d if no_trunc else short_id(d) for d in (r.diff_id, r.chain_id))
        table.append(row)
    return render(table)


def _trunc(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def image_size(store: Store, cfg: ImageConfig) -> int:
    return sum(layer_content_size(store, c) for c in chain_ids(cfg.diff_ids))
