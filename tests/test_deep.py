"""Deep images: past one page of overlay options (~200 lowers) pybuild mounts through the new
mount API (fsopen/fsconfig ``lowerdir+``), up to overlayfs's limit of 500 lower dirs.

docker classic, BuildKit and buildah stop at 125–128 layers ("max depth exceeded"); a
300-step build here crosses the mount(2) → mount API boundary at about step 200.
Timing here (Linux 6.18): the 300-step build ~10–12 s, everything else ~4 s; one mount of
300 lowers through the mount API ~3 ms.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from buildfixtures import build, make_context
from conftest import pybuild
from imagecheck import mounts_under, validate_image

from builder.errors import SandboxError
from builder.layer import overlay, sandbox
from builder.layer.overlay import MAX_LOWERS, OverlayMount
from builder.oci.config import parse_config
from builder.store.store import Store

STEPS = 300


@pytest.fixture(scope="module")
def deep(tmp_path_factory, base_tar) -> Path:
    """A store root holding ``deep/img``: busybox + 300 one-file RUN layers.  Module-scoped
    (like test_layerdirs' ``built``) so that the run and mount tests reuse the one build."""
    work = tmp_path_factory.mktemp("deep")
    root = work / "store"
    pybuild("import", str(base_tar), "pbtest/busybox:base", root=root)
    ctx = make_context(work / "ctx", {"Buildfile": "FROM pbtest/busybox:base\n"
                                      + "".join(f"RUN echo {n} > /f{n}\n" for n in range(1, STEPS + 1))})
    build(root, ctx, tag="deep/img")
    return root


def unmount(path: Path) -> None:
    """finally-cleanup: take down whatever is still mounted on ``path``."""
    while os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], check=False)


# -- a 300-step build ------------------------------------------------------------------------
def test_300_run_steps_make_300_layers(deep):
    root = deep
    store = Store(root)
    image_id = store.resolve("deep/img")
    validate_image(store, image_id)
    parsed = parse_config(store.image_config(image_id))
    assert len(parsed.diff_ids) == STEPS + 1, "every RUN is a layer, above the one base layer"
    assert [h.empty_layer for h in parsed.history[-STEPS:]] == [False] * STEPS
    assert mounts_under(root) == [], "no build mount reached the host"


def test_run_on_the_deep_image_sees_the_bottom_and_top_steps(deep):
    root = deep
    # 302 lowers (init layer + 301 layers) and an upper dir: the new mount API, writable
    proc = pybuild("run", "deep/img", "cat", "/f1", "/f150", f"/f{STEPS}", "/etc/sources.list", root=root)
    assert proc.stdout.splitlines()[:3] == ["1", "150", str(STEPS)]
    assert proc.stdout.splitlines()[3] == "base sources"


def test_steps_on_the_deep_image_explain_the_mount_api(deep, tmp_path):
    root = deep
    proc = build(root, make_context(tmp_path / "ctx"),
                 "--explain", buildfile="FROM deep/img\nWORKDIR /w\nRUN cat /f1 /f300 > here\n",
                 tag="deeper/img").proc
    # WORKDIR (call_in_root): 301 layers; RUN: init + 302 layers
    assert f"({STEPS + 1} lowers, new mount API),upperdir=" in proc.stdout
    assert f"({STEPS + 3} lowers, new mount API),upperdir=" in proc.stdout
    out = pybuild("run", "deeper/img", "cat", "/w/here", root=root).stdout
    assert out == f"1\n{STEPS}\n"
    store = Store(root)
    validate_image(store, store.resolve("deeper/img"))


def test_pybuild_mount_of_the_deep_image(deep, tmp_path):
    root = deep
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        proc = pybuild("mount", "deep/img", str(mnt), root=root)
        assert f"({STEPS + 1} lowers, new mount API)" in proc.stdout
        assert [(mnt / f"f{n}").read_text() for n in (1, STEPS)] == ["1\n", f"{STEPS}\n"]
        assert (mnt / "etc/sources.list").read_text().startswith("base sources\n")
        with pytest.raises(OSError) as e:
            (mnt / "new-file").write_text("x")
        assert e.value.errno == errno.EROFS
        with open("/proc/self/mountinfo") as f:
            lines = [line for line in f if f" {mnt} " in line]
        assert len(lines) == 1 and " - overlay pybuild ro," in lines[0], [line[:200] for line in lines]
        assert lines[0].count("lowerdir+=") == STEPS + 1
        pybuild("umount", str(mnt), root=root)
        assert not os.path.ismount(mnt)
    finally:
        unmount(mnt)


# -- OverlayMount on fake lowers --------------------------------------------------------------
def fake_lowers(root: Path, count: int) -> tuple[str, ...]:
    """``count`` dirs ``l/<16 hex>`` under ``root`` (relative paths, topmost first); layer i
    holds ``only-<i>`` and its own ``who`` (the topmost must win)."""
    names = []
    for i in range(count):           # i = 0 is the bottom layer
        d = root / "l" / f"{i:016x}"
        d.mkdir(parents=True)
        (d / f"only-{i}").write_text(f"{i}\n")
        (d / "who").write_text(f"{i}\n")
        names.append(f"l/{i:016x}")
    return tuple(reversed(names))


def read_union(merged: Path, count: int) -> dict[str, str]:
    """Runs in call_in_root's child, over the mounted union."""
    seen = {name: (merged / name).read_text() for name in ("who", "only-0", f"only-{count - 1}")}
    try:
        (merged / "written").write_text("up\n")
        seen["write"] = "ok"
    except OSError as e:
        seen["write"] = errno.errorcode[e.errno]
    return seen


@pytest.mark.parametrize("count, writable, long_upper", [
    pytest.param(450, True, False, id="450-writable"),
    pytest.param(450, False, False, id="450-read-only"),
    # the kernel's own limit, exactly
    pytest.param(MAX_LOWERS, True, False, id="500"),
    # upperdir/workdir over fsconfig's 255-byte value limit: passed as O_PATH fds instead
    pytest.param(450, True, True, id="450-long-upper-path"),
    # a small stack stays on mount(2) with the classic option string
    pytest.param(20, True, False, id="20-classic"),
])
def test_deep_overlay_mounts(tmp_path, count, writable, long_upper):
    root = tmp_path / "root"
    lowers = fake_lowers(root, count)
    scratch = root / ("d" * 120) / ("e" * 120) if long_upper else root
    scratch.mkdir(parents=True, exist_ok=True)
    for sub in ("upper", "work", "merged"):
        (scratch / sub).mkdir()
    upper = str(scratch / "upper") if long_upper else "upper"
    work = str(scratch / "work") if long_upper else "work"
    m = OverlayMount(lowers=lowers, upper=upper if writable else None, work=work if writable else None,
                     target=str(scratch / "merged"), cwd=str(root))
    assert m.uses_mount_api is (count > 200)
    if m.uses_mount_api:
        assert f"lowerdir+=l/{count - 1:016x} … lowerdir+=l/{0:016x} ({count} lowers, new mount API)" \
            in m.options
    else:
        assert m.options.startswith(f"lowerdir=l/{count - 1:016x}:")
    seen = sandbox.call_in_root(m, read_union, count)   # a child's private mount namespace
    assert seen == {"who": f"{count - 1}\n", "only-0": "0\n", f"only-{count - 1}": f"{count - 1}\n",
                    "write": "ok" if writable else "EROFS"}
    if writable:
        assert (scratch / "upper" / "written").read_text() == "up\n"
    assert mounts_under(tmp_path) == []


def test_501_lowers_are_refused(tmp_path):
    root = tmp_path / "root"
    lowers = fake_lowers(root, MAX_LOWERS + 1)
    for sub in ("upper", "work", "merged"):
        (root / sub).mkdir()
    m = OverlayMount(lowers=lowers, upper="upper", work="work", target=str(root / "merged"), cwd=str(root))
    with pytest.raises(SandboxError, match=r"\(501 lower dirs\): overlayfs stacks at most 500 layers"):
        m.check()
    with pytest.raises(SandboxError, match="at most 500 layers"):
        sandbox.call_in_root(m, read_union, MAX_LOWERS + 1)
    assert mounts_under(tmp_path) == []


def test_a_missing_lower_names_the_path_and_the_kernel_error(tmp_path):
    root = tmp_path / "root"
    lowers = fake_lowers(root, 300)
    for sub in ("upper", "work", "merged"):
        (root / sub).mkdir()
    missing = lowers[:150] + ("l/doesnotexist",) + lowers[150:]
    m = OverlayMount(lowers=missing, upper="upper", work="work", target=str(root / "merged"), cwd=str(root))
    with pytest.raises(SandboxError, match=r"new mount API\): lowerdir\+=l/doesnotexist: No such file"):
        sandbox.call_in_root(m, read_union, 300)


def test_the_kernel_log_reaches_the_error(tmp_path):
    # check() stops a 501st lower before the kernel sees it; go around check() (in a child's
    # mount namespace, which call_in_root gives us over a harmless two-layer union) to see
    # that the message the kernel logs on the fs context fd ends up in the error
    root = tmp_path / "root"
    lowers = fake_lowers(root, MAX_LOWERS + 1)
    (root / "merged").mkdir()
    deep = OverlayMount(lowers=lowers, target=str(root / "merged"), cwd=str(root))
    shallow = OverlayMount(lowers=lowers[:2], target=str(root / "merged"), cwd=str(root))
    with pytest.raises(SandboxError, match=r"lowerdir\+=l/0{16}: Invalid argument: "
                                           r"overlay: too many lower directories, limit is 500"):
        sandbox.call_in_root(shallow, lambda _merged: overlay._mount_overlay_api(deep))
