"""``pybuild analyze --json``: dive's export schema, byte for byte as dive writes it (Go's
``json.MarshalIndent`` with two spaces: ``<``, ``>``, ``&`` escaped, floats in Go's shortest
form), so that tools reading dive's JSON read ours; pybuild's own fields are under
``image.pybuild``, where dive's readers do not look.

    {"layer": [{index, id, digestId, sizeBytes, command, fileList: [{path, typeFlag, linkName,
               size, fileMode, uid, gid, isDir}]}],
     "image": {sizeBytes, inefficientBytes, efficiencyScore, fileReference: [{count, sizeBytes,
               file}], pybuild: {…}}}

A layer's fileList is every node of dive's tree of that layer, children first in name order;
a parent the tar never listed is dive's empty FileInfo (path "", typeFlag 0, …).
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

from builder.analysis.efficiency import FileTree
from builder.analysis.entries import Entry, go_mode
from builder.analysis.image import Analysis, LayerInfo


def export(analysis: Analysis) -> dict[str, Any]:
    d = analysis.dive
    return {
        "layer": [_layer(layer) for layer in analysis.layers],
        "image": {
            "sizeBytes": d.size_bytes,
            "inefficientBytes": d.wasted_bytes,
            "efficiencyScore": d.score,
            "fileReference": [{"count": r.count, "sizeBytes": r.cumulative, "file": r.path} for r in d.inefficient],
            "pybuild": {
                "source": analysis.name,
                "userSizeBytes": d.user_size_bytes,
                "wastedUserPercent": d.wasted_user_percent,
                "reclaimableBytes": analysis.reclaimable_bytes,
                "duplicateBytes": analysis.duplicate_bytes,
                "layers": [{"index": layer.index, "createdBy": layer.created_by,
                            "entries": len(layer.entries)} for layer in analysis.layers],
                "files": [w.to_json() for w in analysis.wasted],
            },
        },
    }


def _layer(layer: LayerInfo) -> dict[str, Any]:
    tree = FileTree.of_layer(layer.entries)
    return {"index": layer.index, "id": layer.id, "digestId": layer.digest_id, "sizeBytes": layer.size,
            "command": layer.command,
            "fileList": [_file_info(n.entry) for n in tree.root.visit_children_first()]}


def _file_info(e: Entry | None) -> dict[str, Any]:
    if e is None:
        return {"path": "", "typeFlag": 0, "linkName": "", "size": 0, "fileMode": 0, "uid": 0, "gid": 0,
                "isDir": False}
    return {"path": e.path, "typeFlag": ord(e.kind), "linkName": e.linkname, "size": e.size,
            "fileMode": go_mode(e.kind, e.mode), "uid": e.uid, "gid": e.gid, "isDir": e.is_dir}


def dumps(obj: Any) -> str:
    """JSON as Go's ``json.MarshalIndent(v, "", "  ")`` writes it (NaN and ±Inf, which Go
    refuses, become null)."""
    floats: list[str] = []
    token = f"pybuild-float-{uuid.uuid4().hex}-"       # a float's place, then its Go text

    def mark(o: Any) -> Any:
        if isinstance(o, float):
            floats.append(go_float_text(o))
            return f"{token}{len(floats) - 1}"
        if isinstance(o, dict):
            return {k: mark(v) for k, v in o.items()}
        if isinstance(o, list):
            return [mark(v) for v in o]
        return o
    text = json.dumps(mark(obj), indent=2, ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    for i, f in enumerate(floats):
        text = text.replace(f'"{token}{i}"', f)
    return text


def go_float_text(f: float) -> str:
    """A float64 as Go's encoding/json writes it: shortest digits, ``1`` for 1.0, exponent
    form below 1e-6 and from 1e21 (``1e-07``, ``1e+21``)."""
    if math.isnan(f) or math.isinf(f):
        return "null"
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        text = repr(f)
        mant, _, exp = text.partition("e")
        sign = exp[0] if exp[0] in "+-" else "+"
        digits = exp.lstrip("+-").lstrip("0") or "0"
        return f"{mant}e{sign}{digits.zfill(2)}"
    text = repr(f)
    if "e" in text:                                   # Python uses exponents from 1e16 on
        text = f"{f:f}".rstrip("0").rstrip(".") if "." in f"{f:f}" else f"{f:f}"
    return text[:-2] if text.endswith(".0") else text
