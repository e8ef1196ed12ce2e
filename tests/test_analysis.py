"""`pybuild layers`, `find`, `diff`: what every layer did, on images built from known
Buildfiles (the article's copy-up, delete and opaque-dir cases), plus the union rules on
hand-made layer dirs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from buildfixtures import build, make_context
from conftest import pybuild
from imagecheck import rootfs_lines
from layerfixtures import make_layer_dir

from builder.inspect import changes, find, rootdiff
from builder.oci.config import parse_config
from builder.oci.digest import chain_ids
from builder.store.store import Store

BASE = "FROM pbtest/busybox:base\n"
IMAGES = {
    # the article's first experiment: appending to a lower file copies it up
    "copyup": BASE + "RUN echo x >> /etc/sources.list\n",
    # deleting a lower file leaves a whiteout; built on copyup, so it has three layers
    "delete": "FROM copyup\nRUN rm /usr/share/doc/pkg-b/README && echo n > /new\n",
    # remove a dir and make it again: the kernel marks it opaque
    "opaque": BASE + "RUN rm -rf /opt/data && mkdir /opt/data && touch /opt/data/n\n",
}


@pytest.fixture(scope="module")
def root(tmp_path_factory, base_tar) -> Path:
    """One store for the module: the base and the three images above (built in order)."""
    root = tmp_path_factory.mktemp("analysis") / "store"
    pybuild("import", str(base_tar), "pbtest/busybox:base", root=root)
    for tag, buildfile in IMAGES.items():
        build(root, make_context(tmp_path_factory.mktemp(f"ctx-{tag}"), {"Buildfile": buildfile}), tag=tag)
    return root


def out_lines(*args: str, root: Path) -> list[str]:
    return pybuild(*args, root=root).stdout.splitlines()


def short_ids(root: Path, tag: str) -> list[tuple[str, str]]:
    store = Store(root)
    cfg = parse_config(store.image_config(store.resolve(tag)))
    return [(d[7:19], c[7:19]) for d, c in zip(cfg.diff_ids, chain_ids(cfg.diff_ids))]


# -- find --------------------------------------------------------------------------------------
def test_find_copy_up_shows_the_file_in_two_layers(root):
    assert out_lines("find", "copyup", "sources.list", root=root) == [
        "LAYER   HOW        TYPE   STATE               PATH",
        "0       added      f      hidden by layer 1   /etc/sources.list",
        "1       modified   f      visible             /etc/sources.list",
    ]


@pytest.mark.parametrize("pattern", [
    "SOURCES.LIST",            # -iname: case-insensitive
    "sources.*",               # a glob on the basename
    "/etc/*.list",             # with '/': the whole path
    "etc/sources.list",        # … also without the leading '/'
])
def test_find_patterns(root, pattern):
    hits = find.find(Store(root), Store(root).resolve("copyup"), pattern)
    assert [(h.layer, h.path, h.how, h.visible) for h in hits] == [
        (0, "/etc/sources.list", "added", False), (1, "/etc/sources.list", "modified", True)]


def test_find_delete_shows_the_whiteout_in_effect(root):
    assert out_lines("find", "delete", "readme", root=root) == [
        "LAYER   HOW       TYPE   STATE               PATH",
        "0       added     f      visible             /usr/share/doc/pkg-a/README",
        "0       added     f      hidden by layer 2   /usr/share/doc/pkg-b/README",
        "2       deleted   w      in effect           /usr/share/doc/pkg-b/README",
    ]


def test_find_opaque_dir_hides_the_lower_entries(root):
    assert out_lines("find", "opaque", "/opt/data*", root=root) == [
        "LAYER   HOW                TYPE   STATE               PATH",
        "0       added              d      hidden by layer 1   /opt/data",
        "1       modified, opaque   d      visible             /opt/data",
        "0       added              f      hidden by layer 1   /opt/data/hardlink",
        "0       added              l      hidden by layer 1   /opt/data/link-to-sub",
        "1       added              f      visible             /opt/data/n",
        "0       added              d      hidden by layer 1   /opt/data/sub",
        "0       added              f      hidden by layer 1   /opt/data/sub/file",
    ]


def test_find_json(root):
    data = json.loads(pybuild("find", "copyup", "sources.list", "--format", "json", root=root).stdout)
    assert [(h["layer"], h["how"], h["visible"], h["hidden_by"], h["size"]) for h in data] == \
        [(0, "added", False, 1, 13), (1, "modified", True, None, 15)]


def test_find_nothing_is_just_the_header(root):
    assert out_lines("find", "copyup", "no-such-name", root=root) == ["LAYER   HOW   TYPE   STATE   PATH"]


# -- layers ------------------------------------------------------------------------------------
def test_layers_table_counts(root):
    lines = out_lines("layers", "delete", root=root)
    ids = short_ids(root, "delete")
    assert lines[0].split() == ["LAYER", "DIFF", "ID", "CHAIN", "ID", "SIZE", "TAR", "ADDED",
                                "MODIFIED", "DELETED", "OPAQUE", "CREATED", "BY"]
    rows = [line.split() for line in lines[1:]]
    assert [r[:3] for r in rows] == [[str(i), d, c] for i, (d, c) in enumerate(ids)]
    assert [r[5:9] for r in rows] == [
        ["+296", "~0", "-0", "0"],      # the busybox base (directories count as added)
        ["+0", "~1", "-0", "0"],        # /etc was only copied up: not counted as modified
        ["+1", "~0", "-1", "0"],        # /new, and the whiteout of pkg-b/README
    ]
    assert rows[1][3] == "15B" and " ".join(rows[2][9:]) == \
        "/bin/sh -c rm /usr/share/doc/pkg-b/README &&…"


def test_layers_opaque_count_and_no_trunc(root):
    [_, _, row] = out_lines("layers", "opaque", "--no-trunc", root=root)
    cells = row.split()
    assert cells[5:9] == ["+1", "~1", "-0", "1"]       # n added; /opt/data re-made, opaque
    assert cells[1].startswith("sha256:") and len(cells[1]) == 71
    assert row.endswith("/bin/sh -c rm -rf /opt/data && mkdir /opt/data && touch /opt/data/n")


def test_layers_json_is_describe_layers(root):
    store = Store(root)
    image_id = store.resolve("delete")
    data = json.loads(pybuild("layers", "delete", "--format", "json", root=root).stdout)
    assert data == changes.describe_layers(store, image_id)
    assert yaml.safe_load(pybuild("layers", "delete", "--format", "yaml", root=root).stdout) == data
    cfg = parse_config(store.image_config(image_id))
    assert [d["diff_id"] for d in data] == list(cfg.diff_ids)
    assert [d["parent"] for d in data] == [None] + [d["chain_id"] for d in data[:-1]]
    for d in data:
        assert sum(d["counts"].values()) == len(d["changes"])
        assert d["size"] == store.layer_info(d["chain_id"]).size
    assert data[1]["changes"] == [{"path": "/etc", "kind": "C"}, {"path": "/etc/sources.list", "kind": "C"}]
    assert data[1]["counts"] == {"added": 0, "modified": 1, "deleted": 0, "opaque": 0, "copied_up": 1}
    assert data[2]["created_by"] == "/bin/sh -c rm /usr/share/doc/pkg-b/README && echo n > /new"


def test_layers_graph_top_first(root):
    text = pybuild("layers", "delete", "--graph", root=root).stdout
    lines = [line.rstrip() for line in text.splitlines()]
    starts = [i for i, line in enumerate(lines) if line.startswith("│ layer ")]
    assert [lines[i].split()[2] for i in starts] == ["2", "1", "0"]
    top = lines[starts[0]:starts[1]]
    assert "│   + /new" in top and "│   - /usr/share/doc/pkg-b/README  (whiteout)" in top
    assert "│   ~ /etc/sources.list" in lines[starts[1]:starts[2]]


# -- diff --------------------------------------------------------------------------------------
def test_diff_top_layer_like_docker_diff(root):
    assert out_lines("diff", "delete", root=root) == [
        "KIND   MODE         OWNER   SIZE   PATH                          DETAIL",
        "A      -rw-r--r--   0:0     2      /new",
        "C      drwxr-xr-x   0:0     0      /usr                          copied up",
        "C      drwxr-xr-x   0:0     0      /usr/share                    copied up",
        "C      drwxr-xr-x   0:0     0      /usr/share/doc                copied up",
        "C      drwxr-xr-x   0:0     0      /usr/share/doc/pkg-b          copied up",
        "D      -            -       -      /usr/share/doc/pkg-b/README",
    ]


def test_diff_layer_n(root):
    assert out_lines("diff", "delete", "--layer", "1", "--hide-copied-up", root=root) == [
        "KIND   MODE         OWNER   SIZE   PATH",
        "C      -rw-r--r--   0:0     15     /etc/sources.list",
    ]
    base = pybuild("diff", "delete", "--layer", "0", root=root).stdout.splitlines()
    assert len(base) == 1 + 296 and all(line.startswith("A ") for line in base[1:])


def test_diff_opaque_layer(root):
    assert out_lines("diff", "opaque", "--hide-copied-up", root=root) == [
        "KIND   MODE         OWNER   SIZE   PATH",
        "C      drwxr-xr-x   0:0     0      /opt/data",
        "O      drwxr-xr-x   0:0     0      /opt/data",
        "A      -rw-r--r--   0:0     0      /opt/data/n",
    ]


def test_diff_two_images(root):
    assert out_lines("diff", "copyup", "delete", root=root) == [
        "KIND   MODE         OWNER   SIZE   PATH",
        "A      -rw-r--r--   0:0     2      /new",
        "D      -            -       -      /usr/share/doc/pkg-b/README",
    ]
    assert out_lines("diff", "delete", "opaque", root=root) == [
        "KIND   MODE         OWNER   SIZE   PATH                          DETAIL",
        "C      -rw-r--r--   0:0     13     /etc/sources.list             size",
        "D      -            -       -      /new",
        "D      -            -       -      /opt/data/hardlink",
        "D      -            -       -      /opt/data/link-to-sub",
        "A      -rw-r--r--   0:0     0      /opt/data/n",
        "D      -            -       -      /opt/data/sub",          # its file is not listed again
        "A      -rw-r--r--   0:0     6      /usr/share/doc/pkg-b/README",
    ]
    assert out_lines("diff", "copyup", "copyup", root=root) == ["KIND   MODE   OWNER   SIZE   PATH"]


@pytest.mark.parametrize("tag", sorted(IMAGES))
def test_union_without_mounting_is_what_the_kernel_shows(root, tag):
    store = Store(root)
    image_id = store.resolve(tag)
    union = rootdiff.union_entries(changes.image_layers(store, image_id)[2][::-1])
    mounted = {line.split(" -> ")[0].split()[-1] for line in rootfs_lines(store, image_id)}
    assert set(union) == mounted - {"."}


def test_diff_container(root):
    pybuild("run", "--keep", "an1", "copyup", "sh", "-c",
            "echo created > /made; echo changed >> /etc/sources.list; rm /etc/group", root=root)
    try:
        assert out_lines("diff", "an1", root=root) == [
            "KIND   MODE         OWNER   SIZE   PATH                DETAIL",
            "C      drwxr-xr-x   0:0     0      /etc                copied up",
            "D      -            -       -      /etc/group",
            "C      -rw-r--r--   0:0     23     /etc/sources.list",
            "A      -rw-r--r--   0:0     8      /made",
        ]
    finally:
        pybuild("rm", "an1", root=root)


@pytest.mark.parametrize("args, message", [
    (("layers", "nope"), "no such image: nope"),
    (("find", "nope", "x"), "no such image: nope"),
    (("diff", "nope"), "no such image: nope"),
    (("diff", "copyup", "nope"), "no such image: nope"),
    (("diff", "copyup", "--layer", "2"), "has no layer 2 (layers are 0 to 1)"),
    (("diff", "copyup", "--layer", "-1"), "has no layer -1 (layers are 0 to 1)"),
    (("diff", "copyup", "delete", "--layer", "0"), "--layer applies to one image"),
])
def test_bad_input_is_one_line(root, args, message):
    proc = pybuild(*args, root=root, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    [line] = proc.stderr.splitlines()
    assert line.startswith("pybuild: error: ") and message in line


# -- the union rules, on hand-made layer dirs -----------------------------------------------
def make_layer(path: Path, spec: dict[str, str]) -> changes.LayerIndex:
    return changes.index_layer(make_layer_dir(path, spec))


LOWER = {"a": "d", "a/b": "d", "a/b/c": "f:c", "x": "f:x", "y": "d", "y/z": "f:z"}


@pytest.mark.parametrize("upper, rel, expected", [
    ({}, "a/b/c", (1, "f")),                              # only below
    ({"a": "do", "a/b": "d"}, "a/b/c", (0, None)),        # an opaque ancestor hides it
    ({"a": "do", "a/b": "d"}, "a/b", (0, "d")),           # … but not the upper's own dir
    ({"a": "d", "a/b": "w"}, "a/b/c", (0, None)),         # a whited-out ancestor
    ({"y": "f:now a file"}, "y/z", (0, None)),            # a non-directory ancestor
    ({"x": "w"}, "x", (0, None)),                         # a whiteout
    ({"x": "f:new"}, "x", (0, "f")),                      # a new version
    ({}, "nowhere", None),                                # in no layer at all
])
def test_union_lookup(tmp_path, upper, rel, expected):
    layers = [make_layer(tmp_path / "upper", upper), make_layer(tmp_path / "lower", LOWER)]
    found = changes.union_lookup(layers, rel)
    got = None if found is None else (found[0], None if found[1] is None else changes.filetype_of(found[1].st_mode))
    assert got == expected


def test_classify(tmp_path):
    lower = make_layer(tmp_path / "lower", LOWER)
    upper = make_layer(tmp_path / "upper", {"a": "do", "a/b": "d", "a/b/new": "f:n", "x": "w",
                                            "y": "d", "y/z": "f:zz", "q": "w"})
    os.chmod(tmp_path / "upper" / "y", 0o700)
    upper = changes.index_layer(tmp_path / "upper")
    got = [(c.path, c.kind, c.filetype, c.copied_up_dir) for c in changes.classify(upper, [lower])]
    assert got == [
        ("/a", "C", "d", False),          # opaque: never "only copied up"
        ("/a", "O", "d", False),
        ("/a/b", "A", "d", False),        # under an opaque dir nothing is below
        ("/a/b/new", "A", "f", False),
        ("/q", "D", "?", False),          # a whiteout of nothing
        ("/x", "D", "f", False),
        ("/y", "C", "d", False),          # mode changed: a real change
        ("/y/z", "C", "f", False),
    ]


@pytest.mark.parametrize("pattern, path, hit", [
    ("README", "/usr/share/doc/pkg-b/README", True),
    ("readme", "/usr/share/doc/pkg-b/README", True),     # case-insensitive
    ("pkg-*", "/usr/share/doc/pkg-b/README", False),     # basename only without '/'
    ("*/pkg-*/*", "/usr/share/doc/pkg-b/README", True),  # with '/': the whole path
    ("/usr/*", "/usr/share/doc/pkg-b/README", True),     # fnmatch's * crosses '/'
    ("usr", "/usr", True),
])
def test_matches(pattern, path, hit):
    assert find.matches(pattern, path) is hit
