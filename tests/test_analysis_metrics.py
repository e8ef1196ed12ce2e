"""dive's numbers and ours on images whose waste is known, worked out by hand (pure: entry
lists in, numbers out).  Each row: the layers, then dive's score, sizeBytes, userSizeBytes,
wastedBytes, dive's inefficient paths, and our reclaimableBytes, duplicateBytes and reasons."""

from __future__ import annotations

import math

import pytest
from analysisfixtures import d, f, opq, wh

from builder.analysis.efficiency import efficiency
from builder.analysis.entries import Entry
from builder.analysis.image import analyze
from builder.analysis.union import aggregate
from builder.analysis.views import parse_range
from builder.errors import UsageError
from builder.oci.config import History, ImageConfig, RunConfig

A100 = "a" * 100


def image(layers: list[list[Entry]]):
    config = ImageConfig("amd64", "linux", RunConfig(), tuple(f"sha256:{i:064x}" for i in range(len(layers))),
                         tuple(History(created_by=f"/bin/sh -c step {i}") for i in range(len(layers))))
    return analyze("test", config, [str(i) for i in range(len(layers))], layers)


CASES = [
    # chmod of a lower file copies it up whole: dive counts both copies (200) as wasted, one can go
    pytest.param([[d("etc"), f("etc/a", A100)], [d("etc"), f("etc/a", A100, 0o755)]],
                 0.5, 200, 100, 200, {"/etc/a": (2, 200)}, 100, 0, {"etc/a": ["metadata-only@1"]}, id="chmod-copy-up"),
    # new content over old: 100 + 50 stored, the final 50 stays
    pytest.param([[f("a", A100)], [f("a", "b" * 50)]],
                 50 / 150, 150, 50, 150, {"/a": (2, 150)}, 100, 0, {"a": ["overwritten@1"]}, id="overwrite"),
    # added, then deleted: the whiteout of a file counts 0, so 1000 of 1015 seen is waste
    pytest.param([[f("keep", "k" * 10), f("big", "B" * 1000)], [wh("big"), f("new", "n" * 5)]],
                 15 / 1015, 1015, 5, 1000, {"/big": (2, 1000)}, 1000, 0, {"big": ["deleted@1"]},
                 id="add-then-delete"),
    # a deleted directory: dive sizes the whiteout by what it hides (500) and counts it once —
    # so nothing is "wasted" by dive; both files are reclaimable to us
    pytest.param([[d("data"), f("data/x", "x" * 300), f("data/y", "y" * 200)], [wh("data"), f("z", "z")]],
                 1.0, 501, 1, 0, {}, 500, 0, {"data/x": ["deleted-dir@1 data"], "data/y": ["deleted-dir@1 data"]},
                 id="deleted-dir"),
    # the same content at two paths: dive sees two different paths; we see a duplicate
    pytest.param([[f("a", "x" * 400)], [f("b", "x" * 400)]],
                 1.0, 800, 400, 0, {}, 0, 400, {"b": ["duplicate@1 a"]}, id="duplicate-content"),
    # an opaque directory hides everything below: dive ignores the marker, we count the lost file
    pytest.param([[d("o"), f("o/old", "o" * 70)], [d("o"), opq("o"), f("o/new", "n" * 30)]],
                 1.0, 100, 30, 0, {}, 70, 0, {"o/old": ["deleted-dir@1 o"]}, id="opaque-dir"),
    # dive's own efficiency test: /etc/nginx is only implied (no directory entry), so its
    # whiteout counts 0; 15000 of 20000 seen are the smallest sizes
    pytest.param([[f("etc/nginx/nginx.conf", "c" * 2000), f("etc/nginx/public", "p" * 3000)],
                  [f("etc/nginx/nginx.conf", "C" * 5000), f("etc/athing", "t" * 10000)],
                  [wh("etc/nginx")]],
                 0.75, 20000, 15000, 7000, {"/etc/nginx/nginx.conf": (2, 7000)}, 2000 + 5000 + 3000, 0,
                 {"etc/nginx/nginx.conf": ["overwritten@1", "deleted-dir@2 etc/nginx"],
                  "etc/nginx/public": ["deleted-dir@2 etc/nginx"]}, id="dive-nginx"),
    # dive's scratch test: nothing sized, the score is 1
    pytest.param([[f("nothing", "")], [], []], 1.0, 0, 0, 0, {}, 0, 0, {}, id="dive-scratch"),
    # dive's walk stops at a whiteout of a path the layers below lack: /zz (visited after
    # .wh.nothere) is never counted, though the layer's size has it
    pytest.param([[f("a", "a" * 10)], [wh("nothere"), f("zz", "z" * 20), f("zz2", "z" * 20)]],
                 1.0, 50, 40, 0, {}, 0, 20, {"zz2": ["duplicate@1 zz"]}, id="dive-stops-at-missing-whiteout"),
]


@pytest.mark.parametrize("layers, score, size, user, wasted, dive_paths, reclaimable, duplicate, reasons", CASES)
def test_known_waste(layers, score, size, user, wasted, dive_paths, reclaimable, duplicate, reasons) -> None:
    a = image(layers)
    assert a.dive.score == pytest.approx(score, abs=0, rel=1e-15)
    assert (a.dive.size_bytes, a.dive.user_size_bytes, a.dive.wasted_bytes) == (size, user, wasted)
    assert {r.path: (r.count, r.cumulative) for r in a.dive.inefficient} == dive_paths
    assert (a.reclaimable_bytes, a.duplicate_bytes) == (reclaimable, duplicate)
    got = {w.path: [f"{r.kind}@{r.layer}" + (f" {r.other}" if r.other else "") for r in w.reasons]
           for w in a.wasted}
    assert got == reasons


def test_wasted_user_percent_is_a_ratio_and_divides_by_zero_as_dive() -> None:
    assert image([[f("a", A100)], [f("a", "b" * 50)]]).dive.wasted_user_percent == 3.0
    # no user bytes: dive divides 0 by 0 (NaN) or wasted by 0 (+Inf); so do we
    assert math.isnan(image([[f("a", A100)]]).dive.wasted_user_percent)
    assert math.isinf(image([[f("a", A100)], [wh("a")]]).dive.wasted_user_percent)


def test_ties_keep_the_order_dive_exports() -> None:
    """Equal cumulative sizes: the path that became inefficient last is listed first."""
    layers = [[f("first", "1" * 10), f("second", "2" * 10)], [f("second", "3" * 10)], [f("first", "4" * 10)]]
    assert [r.path for r in efficiency(layers).inefficient] == ["/first", "/second"]


def test_each_wasted_path_lists_its_layers_first_and_last() -> None:
    a = image([[f("x", A100)], [f("x", A100, 0o600)], [f("y", "y")], [wh("x")]])
    (w,) = [w for w in a.wasted if w.path == "x"]
    assert (w.layers, w.first, w.last, w.copies, w.final_size) == ([0, 1, 3], 0, 3, [100, 100], 0)
    assert w.to_json()["reasons"] == [{"reason": "metadata-only", "layer": 1}, {"reason": "deleted", "layer": 3}]


@pytest.mark.parametrize("text, span", [("3..5", (3, 5)), ("3", (3, 3)), ("3..", (3, 9)), ("..5", (0, 5)),
                                        ("0..9", (0, 9)), (" 2 .. 4 ", (2, 4))])
def test_layer_ranges(text, span) -> None:
    assert parse_range(text, 10) == span


@pytest.mark.parametrize("text", ["5..3", "10", "-1..2", "a..b", "1...2", "0..10"])
def test_bad_layer_ranges(text) -> None:
    with pytest.raises(UsageError, match=r"--layers"):
        parse_range(text, 10)


def test_a_range_of_layers_is_one_diff() -> None:
    """Added then deleted inside the range: not there at all; changed twice: one modification."""
    layers = [[f("keep", "k"), f("gone", "g"), f("edit", "1")],
              [f("tmp", "t"), f("edit", "22")], [wh("tmp"), wh("gone"), f("edit", "333"), f("new", "n")]]
    got = {(c.path, c.status, c.size) for c in aggregate(layers, 1, 2)}
    assert got == {("edit", "modified", 3), ("gone", "deleted", 1), ("new", "added", 1)}
