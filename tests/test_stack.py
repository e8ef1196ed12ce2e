"""LayerStack.lookup: the union rules read straight from overlay-format layer dirs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.layer.stack import LayerStack


def make_layer(root: Path, spec: dict[str, str]) -> Path:
    """``{"a/b": "dir", "a": "opaque", "x": "whiteout", "f": "file"}`` → an overlay-format dir."""
    root.mkdir()
    for rel, kind in sorted(spec.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind in ("dir", "opaque"):
            path.mkdir(exist_ok=True)
            if kind == "opaque":
                os.setxattr(path, "trusted.overlay.opaque", b"y")
        elif kind == "whiteout":
            os.mknod(path, 0o600 | 0o020000, os.makedev(0, 0))
        else:
            path.write_text(kind)
    return root


@pytest.mark.parametrize("upper, lower, rel, found", [
    pytest.param({}, {"a/b/c": "file"}, "a/b/c", True, id="only-below"),
    pytest.param({"a/b/c": "whiteout"}, {"a/b/c": "file"}, "a/b/c", False, id="whiteout"),
    pytest.param({"a": "file"}, {"a/b/c": "file"}, "a/b/c", False, id="non-dir-ancestor"),
    pytest.param({"a": "opaque"}, {"a/b": "file"}, "a/b", False, id="opaque-parent"),
    # the kernel hides a/b/c too when the opaque dir is further up (found in review)
    pytest.param({"a": "opaque", "a/b": "dir"}, {"a/b/c": "file"}, "a/b/c", False, id="opaque-grandparent"),
    pytest.param({"a": "opaque", "a/b": "dir"}, {"a/b": "dir"}, "a/b", True, id="opaque-own-entry"),
    pytest.param({"a/b": "dir"}, {"a/b/c": "file"}, "a/b/c", True, id="plain-dir-merges"),
    pytest.param({}, {}, "nothing", False, id="absent"),
])
def test_lookup(tmp_path, upper, lower, rel, found):
    stack = LayerStack((make_layer(tmp_path / "upper", upper), make_layer(tmp_path / "lower", lower)))
    assert (stack.lookup(rel) is not None) == found
