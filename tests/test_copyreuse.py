"""A COPY that runs again after a change links its unchanged files from the layer it made last
time (build/copyreuse.py) — and the image is byte for byte the one a --no-cache build makes.

Each row builds a context, changes it (or the store), builds again, and checks: the image ID
equals a ``--no-cache`` build's (SOURCE_DATE_EPOCH fixed, so IDs are comparable); the files
said to be unchanged share their inode with the previous layer's; every other file has its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from buildfixtures import Built, Hard, build, make_context, pybuild

from builder.oci.digest import chain_ids

ENV = {"SOURCE_DATE_EPOCH": "1700000000"}
CONTEXT = {"app/a": b"a\n", "app/b": b"b\n" * 1000, "app/sub/c": b"c\n", "app/sub/deep/d": b"d\n"}


@dataclass(frozen=True)
class Case:
    buildfile: str
    change: Callable[[Path, Path], None]       # (context, store root)
    linked: tuple[str, ...]                    # paths of the COPY layer that keep their inode
    dest: str = "app"                          # where the COPY puts app/ (in the layer)
    context: dict = field(default_factory=lambda: dict(CONTEXT))


def edit(rel: str, data: bytes) -> Callable[[Path, Path], None]:
    return lambda ctx, root: (ctx / rel).write_bytes(data)


def chmod(rel: str, mode: int) -> Callable[[Path, Path], None]:
    return lambda ctx, root: os.chmod(ctx / rel, mode)


def touch(rel: str) -> Callable[[Path, Path], None]:
    """An mtime before SOURCE_DATE_EPOCH, so the layer shows it (later ones are clamped)."""
    return lambda ctx, root: os.utime(ctx / rel, (1_600_000_000, 1_600_000_000))


def both(*changes: Callable[[Path, Path], None]) -> Callable[[Path, Path], None]:
    return lambda ctx, root: [change(ctx, root) for change in changes] and None


def add_and_remove(ctx: Path, root: Path) -> None:
    (ctx / "app/new").write_bytes(b"new\n")
    (ctx / "app/b").unlink()


def damage_old_layer(ctx: Path, root: Path) -> None:
    """The previous layer's b no longer has the mtime the memo says (a store changed by hand)."""
    for path in root.glob("layers/*/diff/app/b"):
        os.utime(path, ns=(0, 0))


def drop_old_layers(ctx: Path, root: Path) -> None:
    """The layer the memo names is gone (its image removed, the store pruned) but the memo
    is still there (``prune --all`` drops memos too: it is put back)."""
    [memo] = root.glob("cache/.copylayer-*")
    kept = memo.read_bytes()
    pybuild("rmi", "reuse", root=root)
    pybuild("prune", "--all", root=root)
    assert not list(root.glob("layers/*/diff/app"))
    memo.write_bytes(kept)


COPY = "FROM pbtest/busybox:base\nCOPY app /app/\nRUN cat /app/a > /seen\n"

CASES = {
    "one-file-edited": Case(COPY, edit("app/a", b"A\n"), ("b", "sub/c", "sub/deep/d")),
    "added-and-removed": Case(COPY, add_and_remove, ("a", "sub/c", "sub/deep/d")),
    "mode-changed": Case(COPY, chmod("app/sub/c", 0o600), ("a", "b", "sub/deep/d")),
    "mtime-changed": Case(COPY, touch("app/b"), ("a", "sub/c", "sub/deep/d")),
    "owner-and-mode-flags": Case("FROM pbtest/busybox:base\nCOPY --chown=1000:1000 --chmod=0600 app /app/\n",
                                 edit("app/a", b"A\n"), ("b", "sub/c", "sub/deep/d")),
    # /etc exists below: the new files go into a copied-up /etc; passwd replaces the base's
    # (through the union, never linked), the rest are new
    "into-existing-dir": Case("FROM pbtest/busybox:base\nCOPY app /etc/\n", edit("app/a", b"A\n"),
                              ("b", "sub/c", "sub/deep/d"), dest="etc",
                              context={**CONTEXT, "app/passwd": b"root:x:0:0:root:/root:/bin/sh\n"}),
    "hardlinks-are-copied": Case(COPY, edit("app/a", b"A\n"), ("sub/c",),
                                 context={**CONTEXT, "app/sub/deep/d2": Hard("app/sub/deep/d"),
                                          "app/b2": Hard("app/b")}),
    "old-layer-file-differs": Case(COPY, both(damage_old_layer, edit("app/a", b"A\n")), ("sub/c", "sub/deep/d")),
    "old-layer-gone": Case(COPY, both(drop_old_layers, edit("app/a", b"A\n")), ()),
}


def copy_layer(built: Built, dest: str) -> Path:
    """The unpacked dir of the image's layer that holds ``dest``/a or ``dest``/sub."""
    chains = chain_ids(built.config()["rootfs"]["diff_ids"])
    dirs = [built.store.layer_dir(c) for c in chains if (built.store.layer_dir(c) / dest / "sub").is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def files_of(layer: Path) -> dict[str, os.stat_result]:
    return {str(p.relative_to(layer)): p.lstat() for p in layer.rglob("*") if p.is_file() and not p.is_symlink()}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_rerun_copy_links_unchanged_files_and_makes_the_same_image(case, store_root, tmp_path):
    ctx = make_context(tmp_path / "ctx", case.context)
    first = build(store_root, ctx, buildfile=case.buildfile, tag="reuse", env=ENV)
    before = files_of(copy_layer(first, case.dest))
    case.change(ctx, store_root)
    second = build(store_root, ctx, buildfile=case.buildfile, tag="reuse", env=ENV)
    fresh = build(store_root, ctx, "--no-cache", buildfile=case.buildfile, tag="fresh", env=ENV)
    assert second.image_id == fresh.image_id
    assert second.image_id != first.image_id
    after = files_of(copy_layer(second, case.dest))
    shared = {rel.removeprefix(case.dest + "/") for rel, st in after.items()
              if rel in before and (before[rel].st_dev, before[rel].st_ino) == (st.st_dev, st.st_ino)}
    assert shared == set(case.linked)


def test_explain_says_a_file_was_linked_not_copied(store_root, tmp_path):
    ctx = make_context(tmp_path / "ctx", CONTEXT)
    build(store_root, ctx, buildfile=COPY, tag="reuse")
    (ctx / "app/a").write_bytes(b"A\n")
    out = build(store_root, ctx, "--explain", buildfile=COPY, tag="reuse").proc.stdout
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip().startswith("app/")}
    assert "new; unchanged since the step last ran: hardlinked from its previous layer" in lines["app/b:"]
    assert "hardlinked" not in lines["app/a:"]


def test_prune_drops_a_memo_whose_layer_is_gone(store_root, tmp_path):
    ctx = make_context(tmp_path / "ctx", CONTEXT)
    build(store_root, ctx, buildfile=COPY, tag="reuse")
    [memo] = store_root.glob("cache/.copylayer-*")
    pybuild("prune", root=store_root)
    assert memo.exists()                        # its layer is still the tag's
    pybuild("rmi", "reuse", root=store_root)
    for entry in store_root.glob("cache/[0-9a-f]*"):   # the build cache would keep the layer
        entry.unlink()
    pybuild("prune", root=store_root)
    assert not memo.exists()
