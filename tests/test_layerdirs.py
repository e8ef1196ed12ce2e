"""export-layers / import-layers / mount / umount, through the real command line.

The image is the article's: a copy-up (sources.list in two layers), a delete (whiteouts), an
opaque dir; checked with plain `find` and `ls`, as a learner would look at it.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from buildfixtures import build, make_context
from conftest import pybuild

from builder.layer import whiteout
from builder.store.store import Store

BUILDFILE = """\
FROM pbtest/busybox:base
RUN echo "more sources" >> /etc/sources.list && mkfifo /var/lib/app/fifo && mknod /var/lib/app/null c 1 3 && chown 1000:1000 /var/lib/app/fifo
RUN rm /usr/share/doc/pkg-b/README /etc/passwd
RUN rm -rf /opt/data && mkdir /opt/data && echo new > /opt/data/fresh
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory, base_tar) -> tuple[Path, list[str]]:
    """(store root, chain ID hex of each layer of layerdirs/img, base first)."""
    work = tmp_path_factory.mktemp("layerdirs")
    root = work / "store"
    pybuild("import", str(base_tar), "pbtest/busybox:base", root=root)
    build(root, make_context(work / "ctx"), buildfile=BUILDFILE, tag="layerdirs/img")
    return root, chains(root, "layerdirs/img")


def chains(root: Path, image: str) -> list[str]:
    return [c[7:] for c in json.loads(pybuild("inspect", image, root=root).stdout)["ChainIDs"]]


def run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def export(root: Path, dest: Path, image: str = "layerdirs/img") -> Path:
    pybuild("export-layers", image, str(dest), root=root)
    return dest


def unmount(path: Path) -> None:
    """finally-cleanup: take down whatever is still mounted on ``path``."""
    while os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], check=False)


def assert_one_line_error(proc, *needles: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.startswith("pybuild: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


# -- export-layers ---------------------------------------------------------------------------
def test_find_shows_the_copied_up_file_in_two_layers(built, tmp_path):
    root, ids = built
    out = export(root, tmp_path / "x")
    found = run("find", str(out / "diff"), "-iname", "sources.list").split()
    assert sorted(found) == sorted([f"{out}/diff/{ids[0]}/etc/sources.list",
                                    f"{out}/diff/{ids[1]}/etc/sources.list"])
    assert (out / "diff" / ids[0] / "etc/sources.list").read_text() == "base sources\n"
    assert (out / "diff" / ids[1] / "etc/sources.list").read_text() == "base sources\nmore sources\n"


def test_ls_shows_whiteouts_and_the_opaque_marker(built, tmp_path):
    root, ids = built
    out = export(root, tmp_path / "x")
    assert run("ls", "-a", str(out / "diff" / ids[2] / "usr/share/doc/pkg-b")).split() == \
        [".", "..", ".wh.README"]
    assert run("ls", "-a", str(out / "diff" / ids[2] / "etc")).split() == [".", "..", ".wh.passwd"]
    assert run("ls", "-a", str(out / "diff" / ids[3] / "opt/data")).split() == \
        [".", "..", ".wh..wh..opq", "fresh"]
    # every .wh. name of the tree, and nothing else: plain empty files
    found = run("find", str(out / "diff"), "-name", ".wh.*").split()
    assert sorted(os.path.relpath(p, out / "diff") for p in found) == sorted([
        f"{ids[2]}/etc/.wh.passwd", f"{ids[2]}/usr/share/doc/pkg-b/.wh.README",
        f"{ids[3]}/opt/data/.wh..wh..opq"])
    for p in found:
        st = os.lstat(p)
        assert stat.S_ISREG(st.st_mode) and st.st_size == 0, p
    assert stat.S_IMODE(os.lstat(out / "diff" / ids[2] / "etc/.wh.passwd").st_mode) == 0o600


def test_layers_files_and_branches(built, tmp_path):
    root, ids = built
    out = export(root, tmp_path / "x")
    assert sorted(os.listdir(out)) == ["branches", "diff", "layers", "layers.yaml"]
    assert sorted(os.listdir(out / "diff")) == sorted(ids) == sorted(os.listdir(out / "layers"))
    # each file: the layers below, nearest first (docker's aufs/layers/<id>)
    assert (out / "layers" / ids[0]).read_text() == ""
    assert (out / "layers" / ids[1]).read_text() == f"{ids[0]}\n"
    assert (out / "layers" / ids[3]).read_text() == f"{ids[2]}\n{ids[1]}\n{ids[0]}\n"
    # top first, as /sys/fs/aufs/si_*/br0, br1, …
    assert (out / "branches").read_text() == "".join(
        f"{out}/diff/{i}=ro+wh\n" for i in reversed(ids))


def _tree(top: Path, *, store_form: bool) -> tuple[dict, list]:
    """Every entry's attributes, whiteouts and opaque dirs spelt the AUFS way, and the
    hardlink groups; so the store dir and the exported dir compare equal."""
    entries, inodes = {}, {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in ["."] + dirnames + filenames if dirpath == str(top) else dirnames + filenames:
            full = os.path.normpath(os.path.join(dirpath, name))
            rel = os.path.relpath(full, top)
            st = os.lstat(full)
            if store_form and whiteout.is_overlay_whiteout(st):
                rel = os.path.join(os.path.dirname(rel), ".wh." + name)
                entries[rel] = ("w", st.st_uid, st.st_gid, int(st.st_mtime))
                continue
            if not store_form and name.startswith(".wh."):
                entries[rel] = ("w", st.st_uid, st.st_gid, int(st.st_mtime)) \
                    if name != ".wh..wh..opq" else ("o",)
                continue
            if store_form and stat.S_ISDIR(st.st_mode) and whiteout.is_opaque(full):
                entries[os.path.join(rel, ".wh..wh..opq")] = ("o",)
            entries[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                            int(st.st_mtime), st.st_size if stat.S_ISREG(st.st_mode) else 0,
                            os.readlink(full) if stat.S_ISLNK(st.st_mode) else "", st.st_rdev)
            if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                inodes.setdefault(st.st_ino, []).append(rel)
    return entries, sorted(sorted(g) for g in inodes.values())


def test_export_keeps_owners_modes_links_devices_and_mtimes(built, tmp_path):
    root, ids = built
    out = export(root, tmp_path / "x")
    store = Store(root)
    for i in ids:
        assert _tree(out / "diff" / i, store_form=False) == \
            _tree(store.layer_dir("sha256:" + i), store_form=True), i
    # spot checks of what the comparison covers
    app = out / "diff" / ids[1] / "var/lib/app"
    assert stat.S_ISFIFO(os.lstat(app / "fifo").st_mode) and os.lstat(app / "fifo").st_uid == 1000
    assert os.lstat(app / "null").st_rdev == os.makedev(1, 3)
    base = out / "diff" / ids[0]
    assert os.readlink(base / "opt/data/link-to-sub") == "sub"
    assert os.lstat(base / "opt/data/hardlink").st_ino == os.lstat(base / "opt/data/sub/file").st_ino
    assert stat.S_IMODE(os.lstat(base / "tmp").st_mode) == 0o1777
    assert os.lstat(base / "home/user/.profile").st_uid == 1000


def test_layers_yaml_matches_the_layers_command(built, tmp_path):
    root, ids = built
    out = export(root, tmp_path / "x")
    doc = yaml.safe_load((out / "layers.yaml").read_text())
    image_id = json.loads(pybuild("inspect", "layerdirs/img", root=root).stdout)["Id"]
    assert doc["image"] == image_id
    assert doc["tags"] == ["layerdirs/img:latest"]
    assert doc["layers"] == json.loads(pybuild("layers", "layerdirs/img", "--format", "json",
                                               root=root).stdout)
    assert [layer["chain_id"] for layer in doc["layers"]] == [f"sha256:{i}" for i in ids]
    assert doc["layers"][2]["created_by"] == "/bin/sh -c rm /usr/share/doc/pkg-b/README /etc/passwd"


@pytest.mark.parametrize("prepare, needle", [
    # a leftover file: refuse rather than mix two exports
    pytest.param(lambda d: (d.mkdir(), (d / "junk").write_text("x")), "is not empty", id="not-empty"),
    pytest.param(lambda d: d.write_text("x"), "is not a directory", id="a-file"),
])
def test_export_refuses_a_used_dir(built, tmp_path, prepare, needle):
    root, _ = built
    dest = tmp_path / "x"
    prepare(dest)
    assert_one_line_error(pybuild("export-layers", "layerdirs/img", str(dest), root=root, check=False),
                          needle)


def test_export_unknown_image(built, tmp_path):
    root, _ = built
    assert_one_line_error(pybuild("export-layers", "nosuch/img", str(tmp_path / "x"), root=root,
                                  check=False), "no such image: nosuch/img")
    assert not (tmp_path / "x").exists()


# -- import-layers ---------------------------------------------------------------------------
def test_unchanged_tree_reimports_to_the_same_image(built, tmp_path):
    root, _ = built
    out = export(root, tmp_path / "x")
    image_id = pybuild("import-layers", str(out), "layerdirs/same", root=root).stdout.strip()
    assert image_id == json.loads(pybuild("inspect", "layerdirs/img", root=root).stdout)["Id"]


def test_removing_a_whiteout_brings_the_file_back(built, tmp_path):
    """The article's experiment: delete diff/<id>/etc/.wh.passwd, re-import, passwd is back."""
    root, ids = built
    out = export(root, tmp_path / "x")
    os.unlink(out / "diff" / ids[2] / "etc/.wh.passwd")
    pybuild("import-layers", str(out), "layerdirs/back:v1", root=root)
    new = chains(root, "layerdirs/back:v1")
    assert new[:2] == ids[:2] and new[2] != ids[2]      # the edited layer and all above change
    history = json.loads(pybuild("history", "layerdirs/back:v1", "--format", "json", root=root).stdout)
    assert history[1]["created_by"] == "/bin/sh -c rm /usr/share/doc/pkg-b/README /etc/passwd"
    # a build FROM the re-imported image sees the file again, and README still deleted
    proc = build(root, make_context(tmp_path / "ctx"), tag="layerdirs/from-back",
                 buildfile="FROM layerdirs/back:v1\nRUN cat /etc/passwd "
                           "&& test ! -e /usr/share/doc/pkg-b/README && ls -A /opt/data\n").proc
    printed = [line for line in proc.stdout.splitlines() if line.startswith("[2/2] ")]
    assert printed == ["[2/2] root:x:0:0:root:/root:/bin/sh",
                       "[2/2] user:x:1000:1000:user:/home/user:/bin/sh", "[2/2] fresh"]


def test_import_without_layers_yaml_uses_the_layers_files(built, tmp_path):
    root, ids = built
    out = export(root, tmp_path / "x")
    os.unlink(out / "layers.yaml")
    pybuild("import-layers", str(out), "layerdirs/noyaml", root=root)
    assert chains(root, "layerdirs/noyaml") == ids     # same trees → same diffIDs
    history = json.loads(pybuild("history", "layerdirs/noyaml", "--format", "json", root=root).stdout)
    assert [h["created_by"] for h in history] == ["", "", "", ""]   # no layers.yaml: nothing to copy


@pytest.mark.parametrize("name, make, needle", [
    # a bare ".wh." deletes nothing: refused, as the layer tar reader refuses it
    pytest.param(".wh.", lambda p: p.write_text(""), "invalid whiteout name '.wh.'", id="bare-wh"),
    pytest.param(".wh.group", lambda p: p.mkdir(), "a whiteout must be a regular file", id="wh-dir"),
    # the overlay spelling of a deletion does not belong in an AUFS tree
    pytest.param("group", lambda p: os.mknod(p, stat.S_IFCHR | 0o600, os.makedev(0, 0)),
                 "a char device 0:0 is an overlay whiteout", id="overlay-whiteout"),
])
def test_import_refuses_bad_whiteouts(built, tmp_path, name, make, needle):
    root, ids = built
    out = export(root, tmp_path / "x")
    target = out / "diff" / ids[1] / "etc" / name
    if target.exists():
        target.unlink()
    make(target)
    assert_one_line_error(pybuild("import-layers", str(out), "layerdirs/bad", root=root, check=False),
                          needle)
    assert "layerdirs/bad:latest" not in Store(root).tags()


def test_an_added_whiteout_deletes_the_file(built, tmp_path):
    root, ids = built
    out = export(root, tmp_path / "x")
    wh = out / "diff" / ids[1] / "etc/.wh.group"
    wh.write_text("")
    os.chmod(wh, 0o600)
    pybuild("import-layers", str(out), "layerdirs/nogroup", root=root)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        pybuild("mount", "layerdirs/nogroup", str(mnt), root=root)
        assert sorted(os.listdir(mnt / "etc")) == ["sources.list"]
    finally:
        unmount(mnt)


def test_import_refuses_a_dir_that_is_no_export(built, tmp_path):
    root, _ = built
    (tmp_path / "x").mkdir()
    assert_one_line_error(pybuild("import-layers", str(tmp_path / "x"), "layerdirs/bad", root=root,
                                  check=False), "layers")


# -- mount / umount --------------------------------------------------------------------------
@pytest.mark.parametrize("image, passwd", [
    pytest.param("layerdirs/img", False, id="four-layers"),
    # one layer: the store's empty dir is added as the second lower the kernel requires
    pytest.param("pbtest/busybox:base", True, id="one-layer"),
])
def test_mount_is_read_only_and_umount_removes_it(built, tmp_path, image, passwd):
    root, _ = built
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        pybuild("mount", image, str(mnt), root=root)
        assert (mnt / "etc/sources.list").read_text().startswith("base sources\n")
        assert (mnt / "etc/passwd").exists() is passwd
        with pytest.raises(OSError) as e:
            (mnt / "new-file").write_text("x")
        assert e.value.errno == errno.EROFS
        with open("/proc/self/mountinfo") as f:
            lines = [line for line in f if f" {mnt} " in line]
        assert len(lines) == 1 and " - overlay pybuild ro," in lines[0], lines
        pybuild("umount", str(mnt), root=root)
        assert not os.path.ismount(mnt) and os.listdir(mnt) == []
    finally:
        unmount(mnt)


def test_mounted_union_shows_the_top_versions(built, tmp_path):
    root, _ = built
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        pybuild("mount", "layerdirs/img", str(mnt), root=root)
        assert (mnt / "etc/sources.list").read_text() == "base sources\nmore sources\n"
        assert sorted(os.listdir(mnt / "opt/data")) == ["fresh"]            # opaque dir
        assert sorted(os.listdir(mnt / "usr/share/doc/pkg-b")) == []          # whiteout
    finally:
        unmount(mnt)


def test_umount_refuses_what_pybuild_did_not_mount(built, tmp_path):
    root, _ = built
    plain = tmp_path / "plain"
    plain.mkdir()
    assert_one_line_error(pybuild("umount", str(plain), root=root, check=False), "is not a mount point")
    try:
        subprocess.run(["mount", "-t", "tmpfs", "other", str(plain)], check=True)
        assert_one_line_error(pybuild("umount", str(plain), root=root, check=False),
                              "is not a pybuild mount (tmpfs from other)")
        assert os.path.ismount(plain)
    finally:
        unmount(plain)


def test_mount_unknown_image(built, tmp_path):
    root, _ = built
    assert_one_line_error(pybuild("mount", "nosuch/img", str(tmp_path), root=root, check=False),
                          "no such image: nosuch/img")
