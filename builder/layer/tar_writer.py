"""Write a layer tar the way docker does, streaming, and hash it on the way out.

Headers are PAX (POSIX.1-2001) built by ``TarInfo.tobuf``; file data is copied in chunks and
padded to 512 bytes; the archive ends with exactly two zero blocks and no padding to a 10240-byte
record, so an empty layer is docker's 1024-zero-byte tar (EMPTY_LAYER_DIFF_ID).
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from typing import BinaryIO, TypedDict

from builder.errors import LayerError
from builder.oci.digest import CHUNK, BytesSink, HashingWriter

BLOCK = 512
_END = b"\0" * (2 * BLOCK)

#: Called with the total number of tar bytes written so far.
ProgressFn = Callable[[int], None]


class TarMeta(TypedDict):
    """What every layer entry's header carries besides its name and type."""

    mode: int
    uid: int
    gid: int
    mtime: int


def new_tarinfo(name: str, *, typeflag: bytes, mode: int, uid: int, gid: int, mtime: int,
                size: int = 0, linkname: str = "", devmajor: int = 0,
                devminor: int = 0) -> tarfile.TarInfo:
    """A TarInfo with only what a layer carries: numeric ids, no uname/gname, integer mtime."""
    info = tarfile.TarInfo(name)
    info.type = typeflag
    info.mode = mode & 0o7777
    info.uid = uid
    info.gid = gid
    info.uname = ""
    info.gname = ""
    info.mtime = int(mtime)
    info.size = size
    info.linkname = linkname
    info.devmajor = devmajor
    info.devminor = devminor
    return info


_DEVICES = (tarfile.CHRTYPE, tarfile.BLKTYPE)
_NO_DEVICE = b"\0" * 16
_TAIL = b"ustar\x0000" + b"\0" * 64                  # magic, version, empty uname and gname


def ustar_header(info: tarfile.TarInfo) -> bytes | None:
    """The 512 bytes ``info.tobuf(PAX_FORMAT)`` writes for an entry that needs no pax record
    (ASCII name and link of at most 100 bytes, numbers in range), built directly: tarfile's
    generic path costs more than the rest of a small file's capture.  None when a pax record
    is needed; tests/test_tar_writer.py holds both to the same bytes."""
    name = info.name + "/" if info.type == tarfile.DIRTYPE and not info.name.endswith("/") else info.name
    if not (name.isascii() and info.linkname.isascii()) or len(name) > 100 or len(info.linkname) > 100:
        return None
    uid, gid, size, mtime = info.uid, info.gid, info.size, info.mtime
    if not isinstance(mtime, int):
        return None
    if not (0 <= uid < 0o10000000 and 0 <= gid < 0o10000000 and 0 <= size < 0o100000000000
            and 0 <= mtime < 0o100000000000):
        return None
    if info.type in _DEVICES:
        if not (0 <= info.devmajor < 0o10000000 and 0 <= info.devminor < 0o10000000):
            return None
        device = b"%07o\0%07o\0" % (info.devmajor, info.devminor)
    else:
        device = _NO_DEVICE
    head = (name.encode("ascii").ljust(100, b"\0")
            + b"%07o\0%07o\0%07o\0%011o\0%011o\0" % (info.mode & 0o7777, uid, gid, size, mtime))
    tail = info.type + info.linkname.encode("ascii").ljust(100, b"\0") + _TAIL + device + b"\0" * 167
    checksum = 256 + sum(head) + sum(tail)               # the checksum field counts as 8 spaces
    return head + b"%06o\0 " % checksum + tail


def _padding(size: int) -> bytes:
    """The zeros that take ``size`` bytes of data to a whole number of blocks."""
    return b"\0" * (-size % BLOCK)


class LayerTarWriter:
    """An uncompressed PAX tar written to ``out`` (owned by the caller, never closed here).

    Every byte passes through a HashingWriter, so ``close()`` can return the diffID.
    Not thread-safe; entries are written in the order they are added.
    """

    def __init__(self, out: BytesSink, *, on_progress: ProgressFn | None = None) -> None:
        self._out = HashingWriter(out)
        self._on_progress = on_progress
        self._closed = False

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._out.size

    def add(self, info: tarfile.TarInfo, data: BinaryIO | None = None) -> None:
        """Write one entry.  For a regular file ``data`` must yield exactly ``info.size`` bytes.

        ``info.pax_headers`` may carry ``SCHILY.xattr.*`` records (str values, surrogateescape).
        """
        if self._closed:
            raise LayerError("internal error: add() on a closed layer tar")
        if info.uname or info.gname or isinstance(info.mtime, float):
            raise LayerError(f"internal error: unnormalised tar header for {info.name}")
        header = (None if info.pax_headers else ustar_header(info)) or \
            info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        if not (info.size and info.isreg()):
            self._write(header)
            return
        if data is None:
            raise LayerError(f"internal error: no data for {info.name}")
        if info.size < CHUNK:                 # a small file: header, data and padding in one write
            body = data.read(info.size + 1)
            self._check_size(info, len(body))
            self._write(header + body + _padding(info.size))
            return
        self._write(header)
        self._copy(info, data)

    def _copy(self, info: tarfile.TarInfo, data: BinaryIO) -> None:
        left = info.size
        while left:
            chunk = data.read(min(CHUNK, left))
            if not chunk:
                self._check_size(info, info.size - left)
            self._write(chunk)
            left -= len(chunk)
        self._check_size(info, info.size + len(data.read(1)))
        if info.size % BLOCK:
            self._write(_padding(info.size))

    @staticmethod
    def _check_size(info: tarfile.TarInfo, read: int) -> None:
        """``read`` bytes came where the header says ``info.size`` (one more: it grew)."""
        if read < info.size:
            raise LayerError(f"{info.name}: file shrank while being read ({read} of {info.size} bytes)")
        if read > info.size:
            raise LayerError(f"{info.name}: file grew while being read")

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        if self._on_progress is not None:
            self._on_progress(self._out.size)

    def close(self) -> tuple[str, int]:
        """Write the two zero end blocks; returns (diff_id, size).  Idempotent."""
        if not self._closed:
            self._write(_END)
            self._closed = True
        return self._out.digest, self._out.size
