"""The copy snapshotter's diff, row by row: a tree, a change to it, and the layer entries that
change must give (what overlay would have put in its upper dir: parents copied up, whiteouts at
the top of a removed tree, opaque dirs where something was deleted and made again).

Each row runs snapshot.take → change → take → diff → copyup.write_upper → capture, on a real
directory; then a pure table of ``diff`` on made-up entries for what a real filesystem cannot
be made to show (a rewrite that moves no timestamp at all).
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from layerfixtures import needs_root

from builder.layer import copyup, snapshot, whiteout, workroot
from builder.layer.capture import CapturedEntry, capture
from builder.layer.snapshot import Changes, Entry

T = 1_600_000_000


def base_tree(root: Path) -> None:
    """etc/{group,passwd}, opt/data/{sub/file,link→sub}, var/lib/app/state, home/user (1000)."""
    for rel, data in (("etc/group", "root:x:0:\n"), ("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
                      ("opt/data/sub/file", "data\n"), ("var/lib/app/state", "state\n"),
                      ("home/user/.profile", "mine\n")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(data)
    os.symlink("sub", root / "opt/data/link")
    for path in (root / "home/user", root / "home/user/.profile"):
        os.chown(path, 1000, 1000)
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), (T, T), follow_symlinks=False)


def line(e: CapturedEntry) -> str:
    if e.kind in "wo":
        return f"{e.kind} {e.path}"
    link = f" -> {e.linkname}" if e.linkname else ""
    return f"{e.kind} {e.mode:04o} {e.uid}:{e.gid} {e.path}{link}"


def layer_of(tmp: Path, change: Callable[[Path], None]) -> list[str]:
    root = tmp / "root"
    root.mkdir()
    base_tree(root)
    before = snapshot.take(str(root))
    change(root)
    after = snapshot.take(str(root))
    changes = snapshot.diff(before, after, content=lambda rel: snapshot.content_digest(str(root), rel))
    upper = tmp / "upper"
    upper.mkdir()
    copyup.write_upper(str(root), changes, after, upper)
    return [line(e) for e in capture(upper, io.BytesIO()).entries]


def _rewrite_same_size_same_mtime(root: Path) -> None:
    (root / "etc/group").write_text("root:y:0:\n")
    os.utime(root / "etc/group", (T, T))


def _recreate(root: Path) -> None:
    shutil.rmtree(root / "opt/data")
    (root / "opt/data").mkdir()
    (root / "opt/data/new").write_text("n\n")


def _file_to_dir(root: Path) -> None:
    (root / "home/user/.profile").unlink()
    (root / "home/user/.profile").mkdir()


def _dir_to_file(root: Path) -> None:
    shutil.rmtree(root / "var/lib/app")
    (root / "var/lib/app").write_text("now a file\n")


def _dir_xattr(root: Path) -> None:
    os.setxattr(root / "var/lib", "user.note", b"x")


ROWS = [
    pytest.param(lambda r: None, [], id="nothing-changed"),
    pytest.param(lambda r: (r / "etc/hosts").write_text("h\n"),
                 ["d 0755 0:0 etc", "f 0644 0:0 etc/hosts"], id="new-file-parent-copied-up"),
    # content, size and mtime as before: the ctime still moved
    pytest.param(_rewrite_same_size_same_mtime, ["d 0755 0:0 etc", "f 0644 0:0 etc/group"],
                 id="same-size-same-mtime-rewrite"),
    pytest.param(lambda r: os.chmod(r / "etc/passwd", 0o600), ["d 0755 0:0 etc", "f 0600 0:0 etc/passwd"],
                 id="metadata-only-chmod"),
    pytest.param(lambda r: os.chmod(r / "etc/passwd", 0o644), ["d 0755 0:0 etc", "f 0644 0:0 etc/passwd"],
                 id="chmod-to-the-same-mode"),
    pytest.param(lambda r: os.chown(r / "var/lib/app/state", 7, 8),
                 ["d 0755 0:0 var", "d 0755 0:0 var/lib", "d 0755 0:0 var/lib/app", "f 0644 7:8 var/lib/app/state"],
                 id="metadata-only-chown"),
    pytest.param(lambda r: (r / "etc/group").unlink(), ["d 0755 0:0 etc", "w etc/group"], id="file-deleted"),
    # one whiteout at the top of a removed tree, none for what was below it
    pytest.param(lambda r: shutil.rmtree(r / "var/lib"), ["d 0755 0:0 var", "w var/lib"], id="tree-deleted"),
    pytest.param(_recreate, ["d 0755 0:0 opt", "d 0755 0:0 opt/data", "o opt/data", "f 0644 0:0 opt/data/new"],
                 id="dir-deleted-and-made-again-opaque"),
    pytest.param(_file_to_dir, ["d 0755 0:0 home", "d 0755 1000:1000 home/user", "d 0755 0:0 home/user/.profile",
                                "o home/user/.profile"], id="file-replaced-by-dir-opaque"),
    pytest.param(_dir_to_file, ["d 0755 0:0 var", "d 0755 0:0 var/lib", "f 0644 0:0 var/lib/app"],
                 id="dir-replaced-by-file-no-whiteouts"),
    pytest.param(lambda r: os.link(r / "etc/group", r / "etc/group.hard"),
                 ["d 0755 0:0 etc", "f 0644 0:0 etc/group", "h 0644 0:0 etc/group.hard -> etc/group"],
                 id="hardlink-to-a-lower-file"),
    pytest.param(lambda r: (os.unlink(r / "opt/data/link"), os.symlink("/tmp", r / "opt/data/link")),
                 ["d 0755 0:0 opt", "d 0755 0:0 opt/data", "l 0777 0:0 opt/data/link -> /tmp"],
                 id="symlink-retargeted"),
    pytest.param(lambda r: os.rename(r / "etc/group", r / "etc/group.bak"),
                 ["d 0755 0:0 etc", "w etc/group", "f 0644 0:0 etc/group.bak"], id="file-renamed"),
    pytest.param(lambda r: (r / "srv/empty").mkdir(parents=True), ["d 0755 0:0 srv", "d 0755 0:0 srv/empty"],
                 id="new-empty-dirs"),
    pytest.param(lambda r: os.mkfifo(r / "etc/pipe"), ["d 0755 0:0 etc", "p 0644 0:0 etc/pipe"], id="fifo"),
    pytest.param(_dir_xattr, ["d 0755 0:0 var", "d 0755 0:0 var/lib"], id="dir-xattr-only"),
]


@needs_root
@pytest.mark.parametrize("change, want", ROWS)
def test_diff_writes_what_overlay_would(change, want, tmp_path):
    os.umask(0o022)
    assert layer_of(tmp_path, change) == want


# -- diff() on made-up entries ------------------------------------------------------------------
FILE = Entry(fmt=stat.S_IFREG, mode=0o644, uid=0, gid=0, size=5, mtime_ns=T * 10**9, ctime_ns=T * 10**9,
             ino=10, nlink=1)
DIR = Entry(fmt=stat.S_IFDIR, mode=0o755, uid=0, gid=0, size=0, mtime_ns=T * 10**9, ctime_ns=T * 10**9,
            ino=2, nlink=0, born_ns=T * 10**9)
OLD, NEW = "a" * 64, "b" * 64


@pytest.mark.parametrize("before, after, content, want", [
    # every timestamp as before, recorded racily: only the content hash can tell
    pytest.param({"d": DIR, "d/f": replace(FILE, digest=OLD)}, {"d": DIR, "d/f": FILE}, NEW,
                 Changes(("d/f",), (), frozenset()), id="racy-rewrite-caught-by-hash"),
    pytest.param({"d": DIR, "d/f": replace(FILE, digest=OLD)}, {"d": DIR, "d/f": FILE}, OLD,
                 Changes((), (), frozenset()), id="racy-unchanged"),
    # not recorded racily: metadata decides, the content is never read
    pytest.param({"d": DIR, "d/f": FILE}, {"d": DIR, "d/f": FILE}, None,
                 Changes((), (), frozenset()), id="not-racy-not-read"),
    pytest.param({"d": DIR, "d/f": FILE}, {"d": DIR, "d/f": replace(FILE, nlink=2, ctime_ns=FILE.ctime_ns + 1)},
                 None, Changes(("d/f",), (), frozenset()), id="new-link-count"),
    pytest.param({"d": DIR, "d/f": FILE}, {"d": replace(DIR, born_ns=DIR.born_ns + 5)}, None,
                 Changes(("d",), (), frozenset({"d"})), id="same-inode-new-birth-is-a-new-dir"),
    pytest.param({"d": DIR, "d/e": DIR, "d/e/f": FILE}, {"d": DIR}, None,
                 Changes((), ("d/e",), frozenset()), id="whiteout-only-at-the-top"),
    pytest.param({"d": DIR, "d/f": FILE}, {"d": replace(FILE, ino=11)}, None,
                 Changes(("d",), (), frozenset()), id="dir-to-file-no-whiteout-below"),
    pytest.param({"d": DIR}, {"d": replace(DIR, xattrs=(("user.x", b"1"),))}, None,
                 Changes(("d",), (), frozenset()), id="dir-xattr"),
])
def test_diff_table(before, after, content, want):
    def digest(rel: str) -> str:
        assert content is not None, f"{rel}: content read where metadata decides"
        return content
    assert snapshot.diff(before, after, content=digest) == want


@needs_root
def test_take_hashes_only_racy_files(tmp_path):
    (tmp_path / "old").write_text("x")
    (tmp_path / "new").write_text("y")
    os.utime(tmp_path / "old", (T, T))
    os.utime(tmp_path / "new", (T, T))
    snap = snapshot.take(str(tmp_path))
    assert snap["new"].digest and snap["old"].digest         # both were just written: racy
    time.sleep(0.05)                                          # past a fine filesystem's tick
    (tmp_path / "new").write_text("z")
    snap = snapshot.take(str(tmp_path))
    assert snap["new"].digest and not snap["old"].digest


@needs_root
def test_mount_points_come_and_go_without_a_trace(tmp_path):
    """What the init layer gives a RUN, made in a working root lacking all of it (and with
    /etc/hosts a symlink), then undone: the walk is as it was."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/run/hosts", root / "etc/hosts")
    os.utime(root / "etc", (T, T))
    before = snapshot.take(str(root))
    points = workroot.make_mount_points(root)
    assert sorted(os.listdir(root)) == ["dev", "etc", "proc", "sys"]
    assert (root / "etc/hosts").is_file() and not (root / "etc/hosts").is_symlink()
    assert points.paths == {"dev", "proc", "sys", "etc/resolv.conf", "etc/hosts", "etc/hostname",
                            *points.aside.values()}
    points.remove()
    after = snapshot.take(str(root))
    assert {k: (v.fmt, v.mode, v.mtime_ns, v.target) for k, v in after.items()} == \
           {k: (v.fmt, v.mode, v.mtime_ns, v.target) for k, v in before.items()}
    assert os.readlink(root / "etc/hosts") == "/run/hosts"


@needs_root
def test_apply_layer_is_overlays_view(tmp_path):
    """A layer dir on top of a working root: whiteouts remove, an opaque dir hides what was
    below, a file replaces a dir, a hardlink pair becomes two files."""
    root, layer = tmp_path / "root", tmp_path / "layer"
    base_tree(root)
    (layer / "opt/data").mkdir(parents=True)
    (layer / "opt/data/new").write_text("n\n")
    fd = os.open(layer / "opt/data", os.O_RDONLY | os.O_DIRECTORY)
    try:
        whiteout.mark_opaque(fd)
    finally:
        os.close(fd)
    (layer / "etc").mkdir()
    whiteout_dir = os.open(layer / "etc", os.O_RDONLY | os.O_DIRECTORY)
    try:
        whiteout.make_overlay_whiteout(whiteout_dir, "group")
    finally:
        os.close(whiteout_dir)
    (layer / "var/lib").mkdir(parents=True)
    (layer / "var/lib/app").write_text("file now\n")
    (layer / "a").write_text("same\n")
    os.link(layer / "a", layer / "b")
    workroot.apply_layer(layer, root)
    assert sorted(os.listdir(root / "opt/data")) == ["new"]
    assert not (root / "etc/group").exists() and (root / "etc/passwd").is_file()
    assert (root / "var/lib/app").read_text() == "file now\n"
    assert os.stat(root / "a").st_ino != os.stat(root / "b").st_ino
    assert (root / "b").read_text() == "same\n"
