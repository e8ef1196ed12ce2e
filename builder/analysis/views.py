"""What `pybuild analyze` prints: the numbers, the layers, the worst files and why, or (with
--layers A..B) what a range of layers did as one diff; with --sort, --min-size and --limit.
Pure: an Analysis in, text out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from builder.analysis.image import Analysis
from builder.analysis.union import DELETED, UNCHANGED, Change, aggregate
from builder.analysis.units import format_bytes
from builder.analysis.waste import WastedPath
from builder.errors import UsageError
from builder.inspect.history import render

SORTS = ("size", "path", "layers")


@dataclass(frozen=True)
class ViewOptions:
    sort: str = "size"
    min_size: int = 0
    limit: int = 20                 # rows of the worst files; 0: all
    layers: tuple[int, int] | None = None


def parse_range(text: str, count: int) -> tuple[int, int]:
    """``3..5`` (inclusive), ``3`` (one layer), ``3..`` (to the top), ``..5`` (from the base),
    against an image of ``count`` layers.  Raises UsageError saying what is wrong."""
    first_text, sep, last_text = text.partition("..")
    try:
        first = int(first_text) if first_text.strip() else 0
        last = (int(last_text) if last_text.strip() else count - 1) if sep else first
    except ValueError:
        raise UsageError(f"--layers {text}: expected A..B, layer numbers from 0 (base) to {count - 1}") from None
    if not (0 <= first <= last < count):
        raise UsageError(f"--layers {text}: the image has layers 0..{count - 1}; "
                         f"A..B needs 0 <= A <= B <= {count - 1}")
    return first, last


def summary(a: Analysis) -> str:
    d = a.dive
    pct = d.wasted_user_percent
    rows = [("efficiency", f"{d.score * 100:.4f} %", f"dive's score ({d.score!r})"),
            ("sizeBytes", str(d.size_bytes), format_bytes(d.size_bytes)),
            ("userSizeBytes", str(d.user_size_bytes), f"{format_bytes(d.user_size_bytes)}, every layer but the base"),
            ("wastedBytes", str(d.wasted_bytes), f"{format_bytes(d.wasted_bytes)}, every copy of each path "
                                                   f"in two or more layers (dive)"),
            ("wastedUserPercent", "n/a" if math.isnan(pct) or math.isinf(pct) else f"{pct * 100:.4f} %",
             "wastedBytes / userSizeBytes"),
            ("reclaimableBytes", str(a.reclaimable_bytes), f"{format_bytes(a.reclaimable_bytes)}, every copy "
                                                            f"but the one the image shows"),
            ("duplicateBytes", str(a.duplicate_bytes), f"{format_bytes(a.duplicate_bytes)}, the same content "
                                                        f"again at another path")]
    width = max(len(k) for k, _, _ in rows) + 2
    lines = [f"Image {a.name}: {len(a.layers)} layers, {format_bytes(d.size_bytes)}", ""]
    lines += [f"  {k:<{width}}{v:<16}{note}" for k, v, note in rows]
    return "\n".join(lines)


def layers_table(a: Analysis) -> str:
    table: list[tuple[str, ...]] = [("LAYER", "SIZE", "ENTRIES", "COMMAND")]
    for layer in a.layers:
        cmd = layer.command if len(layer.command) <= 70 else layer.command[:69] + "…"
        table.append((str(layer.index), format_bytes(layer.size), str(len(layer.entries)), cmd))
    return render(table)


def worst_files(a: Analysis, opts: ViewOptions) -> str:
    rows = [w for w in a.wasted if w.stored_bytes >= opts.min_size]
    rows = _sorted(rows, opts.sort)
    shown = rows if not opts.limit else rows[:opts.limit]
    if not rows:
        return "No wasted files" + (f" of {format_bytes(opts.min_size)} or more" if opts.min_size else "") + "."
    # SAVES: what a rewrite saves (reclaimable + duplicate); STORED: every copy (dive's count)
    table: list[tuple[str, ...]] = [("SAVES", "STORED", "LAYERS", "PATH", "WHY")]
    for w in shown:
        layers = str(w.first) if w.first == w.last else f"{w.first}..{w.last}"
        why = "; ".join(r.describe() for r in w.reasons)
        table.append((format_bytes(w.reclaimable + w.duplicate_bytes), format_bytes(w.stored_bytes), layers,
                      "/" + w.path, why))
    more = f"\n… {len(rows) - len(shown)} more (--limit 0 shows all)" if len(shown) < len(rows) else ""
    return f"Wasted files ({len(rows)}), {_sort_words(opts.sort)}:\n" + render(table) + more


def _sorted(rows: Sequence[WastedPath], how: str) -> list[WastedPath]:
    if how == "path":
        return sorted(rows, key=lambda w: w.path)
    if how == "layers":
        return sorted(rows, key=lambda w: (w.first, w.last, w.path))
    return sorted(rows, key=lambda w: (-w.cost, -w.stored_bytes, w.path))


def _sort_words(how: str) -> str:
    return {"size": "most reclaimable first", "path": "by path", "layers": "by the layer that added them"}[how]


def range_diff(a: Analysis, opts: ViewOptions) -> str:
    assert opts.layers is not None
    first, last = opts.layers
    changes = [c for c in aggregate([layer.entries for layer in a.layers], first, last)
               if c.status != UNCHANGED and not _is_dir(c) and c.size >= opts.min_size]
    writer: dict[str, int] = {}                      # the last layer of the range that wrote a path
    for info in a.layers[first:last + 1]:
        writer.update((e.path, info.index) for e in info.entries)
    changes = _sorted_changes(changes, opts.sort, writer)
    what = f"layer {first}" if first == last else f"layers {first}..{last}"
    total = sum(c.size for c in changes if c.status != DELETED)
    head = f"What {what} did, as one diff ({len(changes)} files, {format_bytes(total)} written):"
    table: list[tuple[str, ...]] = [("CHANGE", "SIZE", "LAYER", "PATH")]
    for c in changes:
        layer = "-" if c.status == DELETED else str(writer.get(c.path, "-"))
        table.append((c.status, format_bytes(c.size), layer, "/" + c.path))
    return head + ("\n" + render(table) if changes else "\n  (nothing)")


def _is_dir(c: Change) -> bool:
    entry = c.entry if c.entry is not None else c.old.entry if c.old is not None else None
    return entry is not None and entry.is_dir


def _sorted_changes(changes: list[Change], how: str, writer: dict[str, int]) -> list[Change]:
    if how == "path":
        return sorted(changes, key=lambda c: c.path)
    if how == "layers":
        return sorted(changes, key=lambda c: (writer.get(c.path, -1), c.path))
    return sorted(changes, key=lambda c: (-c.size, c.path))


def text(a: Analysis, opts: ViewOptions) -> str:
    if opts.layers is not None:
        return range_diff(a, opts) + "\n"
    return "\n\n".join([summary(a), layers_table(a), worst_files(a, opts)]) + "\n"
