"""ADD/COPY checksums: one walk gives exactly what the two separate ones give (created_by's
``file:``/``dir:``/``multi:`` and the cache key's part), on every kind of source."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.context.checksum import checksum, item_checksums, sources_checksum
from builder.context.item import Item
from builder.context.sources import BuildContext, walk
from builder.oci.digest import sha256_file_hex


def sha(path, st=None):
    return sha256_file_hex(path)


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a").write_bytes(b"a\n")
    (tmp_path / "d" / "sub" / "b").write_bytes(b"b\n")
    os.symlink("a", tmp_path / "d" / "link")
    os.mkfifo(tmp_path / "d" / "fifo")
    (tmp_path / "f").write_bytes(b"f\n")
    return tmp_path


@pytest.mark.parametrize("words", [["f"], ["d"], ["f", "d"], ["d", "d/sub/b"]])
def test_one_walk_equals_two(ctx, words):
    context = BuildContext(ctx)
    items = [Item(source=s) for w in words for s in context.resolve(w)]
    sources = [i.source for i in items]
    entries: dict[str, str] = {}
    summed, key = item_checksums(items, sha, entries)
    assert summed == checksum(items)
    assert key == sources_checksum([(s.rel, s.path) for s in sources], sha, walk=lambda n: walk(sources[n]))
    assert set(entries) >= {s.rel for s in sources if not s.is_dir}
