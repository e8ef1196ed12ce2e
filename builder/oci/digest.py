"""Digests, diffIDs and chain IDs (OCI image-spec config.md), and hashing while streaming.

Every digest string is ``sha256:<64 lowercase hex>``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import IO, BinaryIO, Protocol

#: diffID of the empty layer: 1024 zero bytes, as docker writes an empty tar.
EMPTY_TAR = b"\0" * 1024
EMPTY_LAYER_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
#: How much local file data is read (and hashed, copied) at a time.
CHUNK = 1 << 20


def is_digest(value: str) -> bool:
    return bool(_DIGEST.match(value))


def hex_of(digest: str) -> str:
    """The hex part of ``sha256:<hex>``; raises ValueError for anything else."""
    if not is_digest(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest[7:]


def short_id(digest: str) -> str:
    """The 12 hex digits docker shows for an ID or digest (``sha256:`` dropped)."""
    return digest.removeprefix("sha256:")[:12]


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_stream(stream: BinaryIO) -> tuple[str, int]:
    """Hash a stream to its end; returns (digest, size)."""
    h = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def sha256_file(path: str | Path) -> tuple[str, int]:
    """Hash a file's content; returns (digest, size).  Raises OSError."""
    with open(path, "rb") as f:
        return sha256_stream(f)


def sha256_file_hex(path: str | Path) -> str:
    """The bare 64 hex digits of a file's sha256 (no ``sha256:``), as content checksums keep
    it.  Raises OSError."""
    return sha256_file(path)[0][7:]


def chain_id(parent: str | None, diff_id: str) -> str:
    """ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)); ChainID(L0) = DiffID(L0)."""
    if parent is None:
        return diff_id
    return sha256_bytes(f"{parent} {diff_id}".encode("ascii"))


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """The chain ID of every prefix of ``diff_ids``, base first."""
    out: list[str] = []
    parent: str | None = None
    for d in diff_ids:
        parent = chain_id(parent, d)
        out.append(parent)
    return out


class BytesSink(Protocol):
    """Anything bytes are written to: a binary file, a HashingWriter, a socket wrapper."""

    def write(self, data: bytes, /) -> int: ...


class HashingWriter:
    """Wraps a binary writer; hashes and counts every byte written through it.

    The wrapped stream stays owned by the caller (close() does not close it).
    """

    def __init__(self, out: BytesSink | None) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        if self._out is not None:
            self._out.write(data)
        return len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class HashingReader:
    """Wraps a binary reader; hashes every byte read through it (for verify-while-reading)."""

    def __init__(self, src: IO[bytes]) -> None:
        self._src = src
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self._hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Read (and hash) whatever is left, e.g. tar padding after the last member."""
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()
