"""builder/layer/compression.py: every compression pybuild reads, from a stream and from a file."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from pathlib import Path

import pytest
import zstandard

from builder.layer.compression import compression_of, decompressed, open_decompressed

DATA = b"tar bytes " * 1000


@pytest.mark.parametrize("packed, kind", [
    pytest.param(DATA, None, id="plain"),
    pytest.param(gzip.compress(DATA, mtime=0), "gzip", id="gzip"),
    pytest.param(bz2.compress(DATA), "bzip2", id="bzip2"),
    pytest.param(lzma.compress(DATA), "xz", id="xz"),
    pytest.param(zstandard.ZstdCompressor().compress(DATA), "zstd", id="zstd"),
    # two frames (as a parallel compressor writes): read to the end, not only the first
    pytest.param(zstandard.ZstdCompressor().compress(DATA[:5000]) +
                 zstandard.ZstdCompressor().compress(DATA[5000:]), "zstd", id="zstd-two-frames"),
    # shorter than the longest magic: still read whole
    pytest.param(b"ab", None, id="tiny"),
])
def test_every_compression_reads_back(tmp_path: Path, packed: bytes, kind: str | None) -> None:
    expected = DATA if packed != b"ab" else b"ab"
    assert compression_of(packed[:6]) == kind
    stream = io.BytesIO(packed)
    assert decompressed(stream).read() == expected
    assert not stream.closed                      # the caller's stream stays the caller's
    path = tmp_path / "blob"
    path.write_bytes(packed)
    with open_decompressed(path) as reader:
        assert reader.read() == expected


def test_closing_the_file_reader_closes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "blob.gz"
    path.write_bytes(gzip.compress(DATA))
    reader = open_decompressed(path)
    file = reader._file                             # type: ignore[attr-defined]
    reader.close()
    assert file.closed
