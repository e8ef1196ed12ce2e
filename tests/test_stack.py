"""LayerStack.lookup: the union rules read straight from overlay-format layer dirs."""

from __future__ import annotations

import pytest
from layerfixtures import make_layer_dir

from builder.layer.stack import LayerStack


@pytest.mark.parametrize("upper, lower, rel, found", [
    pytest.param({}, {"a/b/c": "f:file"}, "a/b/c", True, id="only-below"),
    pytest.param({"a/b/c": "w"}, {"a/b/c": "f:file"}, "a/b/c", False, id="whiteout"),
    pytest.param({"a": "f:file"}, {"a/b/c": "f:file"}, "a/b/c", False, id="non-dir-ancestor"),
    pytest.param({"a": "do"}, {"a/b": "f:file"}, "a/b", False, id="opaque-parent"),
    # the kernel hides a/b/c too when the opaque dir is further up (found in review)
    pytest.param({"a": "do", "a/b": "d"}, {"a/b/c": "f:file"}, "a/b/c", False, id="opaque-grandparent"),
    pytest.param({"a": "do", "a/b": "d"}, {"a/b": "d"}, "a/b", True, id="opaque-own-entry"),
    pytest.param({"a/b": "d"}, {"a/b/c": "f:file"}, "a/b/c", True, id="plain-dir-merges"),
    pytest.param({}, {}, "nothing", False, id="absent"),
])
def test_lookup(tmp_path, upper, lower, rel, found):
    stack = LayerStack((make_layer_dir(tmp_path / "upper", upper), make_layer_dir(tmp_path / "lower", lower)))
    assert (stack.lookup(rel) is not None) == found
