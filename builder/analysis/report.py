"""`pybuild report IMAGE -o FILE.html`: one self-contained page (no fetch of any kind: CSS, JS
and SVG are inline, the data is a JSON island) to look at an image: the layer stack as a chart
of sizes with each layer's created_by, dive's numbers and ours, the wasted files and why, and
each layer's file tree with what it added, modified, deleted or whited out.  A click on a
layer shows its tree.

Stable hooks for tests and scripts: the score is the text of ``#efficiency``; each layer of the
chart is an element with ``data-layer-index="N"``; the tree shown is ``#tree`` with
``data-layer-index`` of its layer.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any

from builder.analysis.image import Analysis, LayerInfo
from builder.analysis.report_page import PAGE
from builder.analysis.union import DELETED
from builder.analysis.units import format_bytes
from builder.analysis.waste import EXPLAIN
from builder.errors import PybuildError

#: Items of one layer's tree written into the page at most (the rest are counted).
MAX_TREE_ITEMS = 20000


def page(a: Analysis) -> str:
    """The HTML text of the report."""
    d = a.dive
    pct = d.wasted_user_percent
    data = {
        "name": a.name,
        "layers": [_layer(layer) for layer in a.layers],
        "wasted": [w.to_json() for w in a.wasted],
        "explain": EXPLAIN,
    }
    cards = [
        ("efficiency", f"{d.score * 100:.2f} %", "dive's efficiency score", _gauge(d.score)),
        ("size", format_bytes(d.size_bytes), f"{d.size_bytes:,} bytes in {len(a.layers)} layers", ""),
        ("user", format_bytes(d.user_size_bytes), "added above the base layer", ""),
        ("wasted", format_bytes(d.wasted_bytes), "wasted (dive: every copy of a path in 2+ layers)", ""),
        ("wasted-user", "n/a" if math.isnan(pct) or math.isinf(pct) else f"{pct * 100:.1f} %",
         "of the user bytes wasted (dive)", ""),
        ("reclaimable", format_bytes(a.reclaimable_bytes), "reclaimable: every copy but the one the image shows",
         ""),
        ("duplicate", format_bytes(a.duplicate_bytes), "the same content again at another path", ""),
    ]
    card_html = "\n".join(
        f'<div class="card" id="card-{key}">{gauge}<div><div class="value"'
        f'{" id=efficiency" if key == "efficiency" else ""}>{html.escape(value)}</div>'
        f'<div class="label">{html.escape(label)}</div></div></div>' for key, value, label, gauge in cards)
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")
    return (PAGE.replace("{{title}}", html.escape(f"pybuild report: {a.name}"))
                .replace("{{name}}", html.escape(a.name))
                .replace("{{cards}}", card_html)
                .replace("{{chart}}", _chart(a))
                .replace("{{data}}", payload))


def write_report(a: Analysis, out: Path) -> None:
    """Write the page to ``out`` (whole or not at all: a temp file beside it, renamed)."""
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(page(a), encoding="utf-8")
        os.replace(tmp, out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise PybuildError(f"write {out}: {e.strerror}") from e


def _layer(layer: LayerInfo) -> dict[str, Any]:
    items: list[list[Any]] = []
    for c in layer.changes:
        entry = c.entry if c.entry is not None else c.old.entry if c.old is not None else None
        kind = "dir" if entry is not None and entry.is_dir else "link" if entry is not None and \
            entry.kind in ("1", "2") else "file"
        status = ("whiteout" if c.whiteout == c.path else "deleted") if c.status == DELETED else c.status
        items.append([c.path, status, c.size, kind])
    items += [[e.path.rpartition("/")[0], "opaque", 0, "dir"] for e in layer.entries if e.is_opaque]
    return {"index": layer.index, "size": layer.size, "createdBy": layer.created_by, "command": layer.command,
            "id": layer.id, "digest": layer.digest_id, "count": len(items), "items": items[:MAX_TREE_ITEMS]}


def _chart(a: Analysis) -> str:
    """The layer stack, base at the bottom: one row per layer, its bar's length the layer's
    size on a square-root scale (a base of 100 MB and a layer of 10 kB both stay visible)."""
    biggest = max((layer.size for layer in a.layers), default=0) or 1
    rows = []
    wasted_by_layer: dict[int, int] = {}
    for w in a.wasted:
        for index in w.layers[1:]:
            wasted_by_layer[index] = wasted_by_layer.get(index, 0) + 1
    for layer in reversed(a.layers):
        width = 0.0 if layer.size == 0 else max(0.6, 100 * math.sqrt(layer.size / biggest))
        flag = wasted_by_layer.get(layer.index, 0)
        badge = f'<span class="badge" title="paths this layer re-wrote or deleted">{flag} wasted</span>' \
            if flag else ""
        rows.append(
            f'<div class="layer" data-layer-index="{layer.index}" tabindex="0" role="button" '
            f'title="{html.escape(layer.created_by)}">'
            f'<span class="idx">{layer.index}</span>'
            f'<span class="bar-wrap"><span class="bar" style="width:{width:.2f}%"></span></span>'
            f'<span class="size">{html.escape(format_bytes(layer.size))}</span>'
            f'<span class="cmd">{html.escape(layer.command)}</span><span>{badge}</span></div>')
    return "\n".join(rows)


def _gauge(score: float) -> str:
    """A ring showing the score (SVG, inline)."""
    r = 26
    circumference = 2 * math.pi * r
    filled = circumference * max(0.0, min(1.0, score))
    hue = 120 * max(0.0, min(1.0, (score - 0.5) * 2))
    return (f'<svg class="gauge" viewBox="0 0 64 64" width="64" height="64" aria-hidden="true">'
            f'<circle cx="32" cy="32" r="{r}" fill="none" stroke="#e5e7eb" stroke-width="8"/>'
            f'<circle cx="32" cy="32" r="{r}" fill="none" stroke="hsl({hue:.0f},65%,42%)" stroke-width="8" '
            f'stroke-dasharray="{filled:.2f} {circumference:.2f}" transform="rotate(-90 32 32)" '
            f'stroke-linecap="round"/></svg>')
