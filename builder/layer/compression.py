"""Compressed tar streams, read: gzip, bzip2, xz and zstd, recognised by their magic numbers.

Layer blobs (pulled, loaded from an archive, imported) and ADD's local archives come
compressed or not; the readers here give the uncompressed bytes either way, so that the tar
code above never asks.  zstd comes from the ``zstandard`` package (the standard library has
none before Python 3.14); a multi-frame zstd stream is read to its end, frame after frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

from builder.errors import LayerError

#: (magic, name) of every compression read; anything else is taken as a plain tar.
MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))
_HEAD = max(len(m) for m, _ in MAGIC)


def compression_of(head: bytes) -> str | None:
    """The compression whose magic ``head`` (the first bytes of a stream) starts with, or None."""
    return next((name for magic, name in MAGIC if head.startswith(magic)), None)


def decompressed(stream: BinaryIO) -> BinaryIO:
    """A reader of the uncompressed bytes of ``stream`` (read only, from its current position;
    it need not seek).  ``stream`` stays owned by the caller: closing the reader does not close
    it.  Raises LayerError for zstd when ``zstandard`` is not installed; decompression errors
    (OSError, EOFError, lzma.LZMAError, zlib.error, …) surface on read."""
    head = b""
    while len(head) < _HEAD:
        more = stream.read(_HEAD - len(head))
        if not more:
            break
        head += more
    return _reader(compression_of(head), _Prefixed(head, stream))


def open_decompressed(path: str | Path) -> BinaryIO:
    """Open file ``path`` and return a reader of its uncompressed bytes, which the caller
    closes (that closes the file too).  Raises OSError if it cannot be opened, LayerError as
    ``decompressed`` does."""
    f = open(path, "rb")
    try:
        kind = compression_of(f.read(_HEAD))
        f.seek(0)
        reader = _reader(kind, f)
    except BaseException:
        f.close()
        raise
    return f if reader is f else _Closing(reader, f)  # type: ignore[return-value]


def _reader(kind: str | None, src: Any) -> Any:
    # start-up: each decompressor only for data compressed that way
    if kind == "gzip":
        import gzip
        return gzip.GzipFile(fileobj=src, mode="rb")
    if kind == "bzip2":
        import bz2
        return bz2.BZ2File(src)
    if kind == "xz":
        import lzma
        return lzma.LZMAFile(src)
    if kind == "zstd":
        try:
            import zstandard  # start-up: only for zstd data
        except ImportError:
            raise LayerError("zstd-compressed data, but the zstandard package is not installed") from None
        return zstandard.ZstdDecompressor().stream_reader(src, read_across_frames=True, closefd=False)
    return src


class _Prefixed:
    """A reader that yields ``head`` (bytes already read for sniffing) and then ``rest``."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0 or n >= len(self._head):
                data, self._head = self._head, b""
                more = self._rest.read(-1 if n < 0 else n - len(data))
                return data + more
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._rest.read(n)


class _Closing:
    """A decompressing reader that also closes the file under it (the decompressors close
    only what they opened themselves)."""

    def __init__(self, reader: Any, file: BinaryIO) -> None:
        self._reader = reader
        self._file = file

    def read(self, n: int = -1) -> bytes:
        return self._reader.read(n)

    def close(self) -> None:
        try:
            self._reader.close()
        finally:
            self._file.close()

    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
