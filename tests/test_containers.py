"""`pybuild run`, `run --keep`, `commit`, `ps`, `rm`: the article's three experiments — create,
modify, delete a file in the writable layer — and what a commit keeps of them."""

from __future__ import annotations

import os

import pytest
from buildfixtures import build, make_context
from conftest import pybuild
from imagecheck import layer_lines, mounts_under, validate_image

from builder.store.store import Store


def test_run_uses_the_image_and_returns_the_exit_code(store_root):
    proc = pybuild("run", "pbtest/busybox:base", "sh", "-c", "cat /etc/sources.list; echo pid=$$; exit 4",
                   root=store_root, check=False)
    assert proc.returncode == 4
    assert proc.stdout == "base sources\npid=1\n"
    assert os.listdir(store_root / "tmp") == [], "a run without --keep leaves nothing"
    assert not (store_root / "containers").exists() or os.listdir(store_root / "containers") == []


def test_run_defaults_to_the_images_command(store_root, tmp_path):
    buildfile = 'FROM pbtest/busybox:base\nENTRYPOINT ["echo", "ep"]\nCMD ["default"]\n'
    ctx = make_context(tmp_path / "ctx", {"Buildfile": buildfile})
    build(store_root, ctx, tag="ep")
    assert pybuild("run", "ep", root=store_root).stdout == "ep default\n"
    assert pybuild("run", "ep", "given", root=store_root).stdout == "ep given\n"   # args replace CMD


def test_keep_and_commit_the_three_experiments(store_root):
    pybuild("run", "--keep", "c1", "pbtest/busybox:base", "sh", "-c",
            "echo created > /new; echo changed >> /etc/sources.list; rm /usr/share/doc/pkg-b/README",
            root=store_root)
    assert "c1" in pybuild("ps", root=store_root).stdout
    upper = store_root / "containers" / "c1" / "upper"
    st = os.lstat(upper / "usr/share/doc/pkg-b/README")
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (0, 0), "the kernel's whiteout"
    image_id = pybuild("commit", "-m", "three experiments", "c1", "exp:1", root=store_root).stdout.strip()
    store = Store(store_root)
    assert store.resolve("exp:1") == image_id
    validate_image(store, image_id)
    [layer] = layer_lines(store, image_id, skip=1)
    kinds = {line.split()[-1]: line.split()[0] for line in layer}
    assert kinds["new"] == "f" and kinds["etc/sources.list"] == "f"
    assert "w usr/share/doc/pkg-b/README" in layer
    out = pybuild("run", "exp:1", "sh", "-c", "cat /new /etc/sources.list; ls /usr/share/doc/pkg-b | wc -l",
                  root=store_root).stdout
    assert out == "created\nbase sources\nchanged\n0\n"
    assert "three experiments" in pybuild("history", "exp:1", root=store_root).stdout
    pybuild("rm", "c1", root=store_root)
    assert not (store_root / "containers" / "c1").exists()
    assert mounts_under(store_root) == []


@pytest.mark.parametrize("argv, message", [
    pytest.param(("commit", "nosuch", "x"), "no such container: nosuch", id="commit-unknown"),
    pytest.param(("rm", "nosuch"), "no such container: nosuch", id="rm-unknown"),
    pytest.param(("run", "nosuch:img", "true"), "no such image: nosuch:img", id="run-unknown-image"),
    pytest.param(("run", "--keep", "../x", "pbtest/busybox:base", "true"), "invalid container name", id="bad-name"),
])
def test_bad_input_is_one_line(store_root, argv, message):
    proc = pybuild(*argv, root=store_root, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"pybuild: error: {message}")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_name_is_kept_once(store_root):
    pybuild("run", "--keep", "twice", "pbtest/busybox:base", "true", root=store_root)
    proc = pybuild("run", "--keep", "twice", "pbtest/busybox:base", "true", root=store_root, check=False)
    assert proc.returncode == 1 and "already exists" in proc.stderr
