"""The build cache (hits, misses from the changed step on, --no-cache, broken blobs, concurrent
builds), prune/df, and reproducible images (two roots, same bytes)."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from buildfixtures import build, make_context
from conftest import pybuild
from imagecheck import validate_image

from builder.oci.config import parse_config
from builder.store.store import Store

BUILDFILE = """FROM pbtest/busybox:base
RUN echo ran-1 && echo one > /one
ADD app /app
RUN echo ran-3 && cat /app/a > /copy
WORKDIR /work
ENV X=1
RUN echo ran-6 && echo $X > /x
CMD ["cat", "/x"]
"""


#: The context of every build here: BUILDFILE beside the files its ADD takes.
CONTEXT = {"app/a": "a\n", "app/b": "b\n", "Buildfile": BUILDFILE}


def ran(proc) -> list[str]:
    """Which RUN steps executed (each prints ran-N)."""
    return sorted(line.split("] ", 1)[1] for line in proc.stdout.splitlines() if "] ran-" in line)


def cached_steps(proc) -> int:
    return proc.stdout.count("---> Using cache")


def test_warm_rebuild_runs_nothing_and_gives_the_same_image(tmp_path, store_root):
    ctx = make_context(tmp_path / "ctx", CONTEXT)
    first = build(store_root, ctx, tag="c")
    assert ran(first.proc) == ["ran-1", "ran-3", "ran-6"]
    again = build(store_root, ctx, tag="c")
    assert ran(again.proc) == [] and cached_steps(again.proc) == 7
    assert again.image_id == first.image_id
    validate_image(Store(store_root), again.image_id)


def test_no_cache_runs_everything(tmp_path, store_root):
    ctx = make_context(tmp_path / "ctx", CONTEXT)
    first = build(store_root, ctx, tag="c")
    again = build(store_root, ctx, "--no-cache", tag="c")
    assert ran(again.proc) == ["ran-1", "ran-3", "ran-6"] and cached_steps(again.proc) == 0
    assert again.image_id != first.image_id       # new timestamps: docker behaves the same


@pytest.mark.parametrize("change, rebuilt", [
    pytest.param(lambda ctx: (ctx / "Buildfile").write_text(BUILDFILE.replace("echo $X", "echo X=$X")),
                 ["ran-6"], id="last-run-changed"),
    pytest.param(lambda ctx: (ctx / "Buildfile").write_text(BUILDFILE.replace("ENV X=1", "ENV X=2")),
                 ["ran-6"], id="env-changed"),
    # one ADD source file changed: that ADD and everything after it
    pytest.param(lambda ctx: (ctx / "app" / "b").write_text("B\n"), ["ran-3", "ran-6"], id="add-source-content"),
    pytest.param(lambda ctx: os.chmod(ctx / "app" / "b", 0o600), ["ran-3", "ran-6"], id="add-source-mode"),
    # the mtime of a copied file is kept in the layer, so it is part of the key
    pytest.param(lambda ctx: os.utime(ctx / "app" / "b", (1, 1)), ["ran-3", "ran-6"], id="add-source-mtime"),
    pytest.param(lambda ctx: (ctx / "app" / "c").write_text("c\n"), ["ran-3", "ran-6"], id="add-source-new-file"),
    pytest.param(lambda ctx: (ctx / "Buildfile").write_text(
        BUILDFILE.replace("ran-1 && echo one", "ran-1 && echo uno")),
                 ["ran-1", "ran-3", "ran-6"], id="first-run-changed"),
    pytest.param(lambda ctx: (ctx / "Buildfile").write_text(BUILDFILE.replace('["cat", "/x"]', '["cat"]')),
                 [], id="only-cmd-changed"),
])
def test_a_change_rebuilds_from_that_step_on(tmp_path, store_root, change, rebuilt):
    ctx = make_context(tmp_path / "ctx", CONTEXT)
    build(store_root, ctx, tag="c")
    change(ctx)
    b = build(store_root, ctx, tag="c")
    assert ran(b.proc) == rebuilt
    validate_image(Store(store_root), b.image_id)


@pytest.mark.parametrize("damage", [
    pytest.param("delete", id="blob-missing"),
    pytest.param("flip", id="blob-corrupt-same-size"),
    pytest.param("truncate", id="blob-truncated"),
])
def test_never_serves_a_layer_whose_blob_is_broken(tmp_path, store_root, damage):
    ctx = make_context(tmp_path / "ctx", CONTEXT)
    image_id = build(store_root, ctx, tag="c").image_id
    store = Store(store_root)
    layer_one = parse_config(store.image_config(image_id)).diff_ids[1]      # RUN ran-1's layer
    blob = store.blob_path(layer_one)
    if damage == "delete":
        blob.unlink()
    elif damage == "flip":
        data = bytearray(blob.read_bytes())
        data[600] ^= 0xFF
        os.utime(blob, ns=(0, 0))                                # and a changed fingerprint
        blob.write_bytes(bytes(data))
    else:
        with open(blob, "r+b") as f:
            f.truncate(512)
    b = build(store_root, ctx, tag="c")
    assert ran(b.proc) == ["ran-1", "ran-3", "ran-6"], "the broken layer's step and all after it run"
    validate_image(Store(store_root), b.image_id)


def test_cache_survives_between_processes_and_is_in_the_store(tmp_path, store_root):
    ctx = make_context(tmp_path / "ctx", CONTEXT)
    build(store_root, ctx, tag="c")
    entries = [p for p in (store_root / "cache").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 7                      # one entry a step after FROM
    assert all("config" in json.loads(p.read_text()) for p in entries)


def test_concurrent_builds_on_one_store(tmp_path, store_root):
    ctxs = []
    for n in range(4):
        buildfile = BUILDFILE.replace("ran-6 && echo $X", f"ran-6 && echo {n}")
        ctxs.append(make_context(tmp_path / f"b{n}" / "ctx", {**CONTEXT, "Buildfile": buildfile}))

    def one(n: int):
        return build(store_root, ctxs[n], tag=f"c{n}", check=False, validate=False).proc

    with ThreadPoolExecutor(4) as pool:
        procs = list(pool.map(one, range(4)))
    assert [p.returncode for p in procs] == [0] * 4, [p.stderr for p in procs]
    store = Store(store_root)
    for n in range(4):
        validate_image(store, store.resolve(f"c{n}"))
        assert pybuild("run", f"c{n}", root=store_root).stdout == f"{n}\n"
    assert os.listdir(store_root / "tmp") == []


def test_prune_and_df(tmp_path, store_root):
    ctx = make_context(tmp_path / "ctx", CONTEXT)
    build(store_root, ctx, tag="c")
    df = pybuild("df", root=store_root).stdout
    assert "Build cache   7" in df
    pybuild("rmi", "c", root=store_root)
    # the cache still keeps the layers: an ordinary prune frees nothing of them
    out = pybuild("prune", root=store_root).stdout
    assert "0 layers" in out
    assert ran(build(store_root, ctx, tag="c").proc) == []
    pybuild("rmi", "c", root=store_root)
    out = pybuild("prune", "--all", root=store_root).stdout
    assert "7 cache entries, 5 layers" in out     # 3 RUN, the ADD and WORKDIR's mkdir
    store = Store(store_root)
    assert len(os.listdir(store_root / "layers")) == 1, "only the base layer is left"
    validate_image(store, store.resolve("pbtest/busybox:base"))
    assert ran(build(store_root, ctx, tag="c").proc) == ["ran-1", "ran-3", "ran-6"]


def test_reproducible_builds_in_two_roots_are_identical(tmp_path, store_root):
    ctx = make_context(tmp_path / "ctx", CONTEXT)
    base = tmp_path / "base.tar"                  # the same base in both roots, as a pull gives
    pybuild("save", "pbtest/busybox:base", "-o", str(base), root=store_root)
    results = []
    for name in ("a", "b"):
        root = tmp_path / name
        pybuild("load", "-i", str(base), root=root)
        b = build(root, ctx, "--no-cache", tag="r", env={"SOURCE_DATE_EPOCH": "1700000000"})
        results.append((b.image_id, b.store.image_config(b.image_id)))
        os.utime(ctx / "app" / "a")               # a later checkout: newer mtimes than the epoch
    assert results[0] == results[1]
    cfg = parse_config(results[0][1])
    assert {h.created for h in cfg.history[1:]} == {"2023-11-14T22:13:20Z"}


def test_without_the_epoch_timestamps_are_real(tmp_path, store_root):
    image_id = build(store_root, make_context(tmp_path / "ctx", CONTEXT), tag="c").image_id
    cfg = parse_config(Store(store_root).image_config(image_id))
    assert cfg.history[-1].created.startswith("20") and cfg.history[-1].created.endswith("Z")
    assert cfg.history[-1].created > "2025"
