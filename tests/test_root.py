"""Table tests of builder/layer/root.py's pure part: clean(), which every image-controlled
path goes through before it is resolved inside a root (tar member names, link names, ADD
destinations).  The rest of root.py (openat2 resolution) is exercised by test_unpack.py and
test_addcopy.py."""

from __future__ import annotations

import pytest

from builder.errors import LayerError
from builder.layer.root import clean

ESCAPES = None      # the expected value of a row that must raise LayerError


@pytest.mark.parametrize("name, expected", [
    pytest.param("a/b", "a/b", id="plain"),
    pytest.param("a", "a", id="one-name"),
    pytest.param("/a//b/", "a/b", id="leading-slash-stripped"),
    pytest.param("//a///b//", "a/b", id="repeated-slashes"),
    pytest.param("./a/./b", "a/b", id="dot-components"),
    pytest.param("a/../b", "b", id="inner-dotdot"),
    pytest.param("a/b/..", "a", id="trailing-dotdot"),
    # climbing back to the root itself is fine; only above it is an escape
    pytest.param("a/..", ".", id="dotdot-back-to-root"),
    pytest.param("./", ".", id="root"),
    pytest.param("/", ".", id="slash-is-root"),
    pytest.param(".", ".", id="dot-is-root"),
    pytest.param("", ".", id="empty-is-root"),
    # only a whole `..` component climbs: these are ordinary names
    pytest.param("...", "...", id="three-dots-is-a-name"),
    pytest.param("a..b/..c/.d", "a..b/..c/.d", id="dots-inside-names"),
    pytest.param(".wh..wh..opq", ".wh..wh..opq", id="opaque-marker-name"),
    # nothing but `/`, `.` and `..` is special: spaces, backslashes, non-ASCII are kept
    pytest.param("a b/c\\d/ü", "a b/c\\d/ü", id="other-characters-kept"),
    pytest.param("..", ESCAPES, id="dotdot-escapes"),
    pytest.param("../a", ESCAPES, id="leading-dotdot-escapes"),
    pytest.param("a/../../b", ESCAPES, id="inner-dotdot-escapes"),
    pytest.param("/../etc", ESCAPES, id="absolute-dotdot-escapes"),
    pytest.param("./..", ESCAPES, id="dot-then-dotdot-escapes"),
    # an escape is refused even when later components come back down
    pytest.param("a/b/../../../a/b", ESCAPES, id="escape-then-return"),
])
def test_clean(name: str, expected: str | None) -> None:
    if expected is ESCAPES:
        with pytest.raises(LayerError, match="escapes"):
            clean(name)
    else:
        assert clean(name) == expected
