"""A layer as analysis sees it: one typed ``Entry`` per tar member, read in one streamed pass.

``read_entries`` walks a (possibly compressed) layer tar without holding it: each member's
header becomes an Entry, and a regular file's content is hashed (sha256) as it streams past,
so that duplicate content can be found later without reading the layer again.  Paths are
cleaned as dive cleans them (Go's ``path.Clean``, no leading ``/``); a member that cleans to
``.`` is skipped, as dive skips it.

``go_mode`` rebuilds Go's ``os.FileMode`` of a tar header (type bits in the high bits), the
``fileMode`` field of dive's JSON export.
"""

from __future__ import annotations

import hashlib
import lzma
import posixpath
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from builder.errors import LayerError
from builder.layer.compression import decompressed
from builder.layer.whiteout import OPAQUE_MARKER, WHITEOUT_META_PREFIX, WHITEOUT_PREFIX

#: Bytes read at a time while hashing a member's content: smaller than oci.digest.CHUNK, so
#: that reading a layer holds under 4 MiB at once (test_a_big_layer_is_streamed_not_held).
CHUNK = 256 << 10

# tar type flags (the byte in the header; dive's JSON prints its value: "0" is 48)
REG, LINK, SYMLINK, CHAR, BLOCK, DIR, FIFO = "0", "1", "2", "3", "4", "5", "6"

# Go's os.FileMode type bits (io/fs)
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_NAMED_PIPE = 1 << 25
GO_MODE_SOCKET = 1 << 24
GO_MODE_SETUID = 1 << 23
GO_MODE_SETGID = 1 << 22
GO_MODE_CHAR_DEVICE = 1 << 21
GO_MODE_STICKY = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One member of a layer tar.  ``path`` is cleaned and relative (``etc/passwd``);
    ``kind`` is the tar type flag (``"0"`` regular, ``"5"`` directory, …; an old-style
    regular file's NUL flag is read as ``"0"``, as Go reads it); ``mode`` is the header's mode
    field as written (permission bits, and type bits when the writer set them); ``digest`` is
    the sha256 of a regular file's content, None for every other kind."""

    path: str
    kind: str
    size: int = 0
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    linkname: str = ""
    digest: str | None = None

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def is_dir(self) -> bool:
        """Go's ``FileInfo().IsDir()`` of the header (the type flag or the mode's type bits)."""
        return bool(go_mode(self.kind, self.mode) & GO_MODE_DIR)

    @property
    def is_whiteout(self) -> bool:
        """A ``.wh.<name>`` deletion (not the opaque marker)."""
        return self.name.startswith(WHITEOUT_PREFIX) and not self.name.startswith(WHITEOUT_META_PREFIX)

    @property
    def is_opaque(self) -> bool:
        return self.name == OPAQUE_MARKER

    @property
    def deleted_path(self) -> str:
        """What a whiteout deletes (``etc/.wh.x`` → ``etc/x``)."""
        parent, name = posixpath.split(self.path)
        target = name[len(WHITEOUT_PREFIX):]
        return posixpath.join(parent, target) if parent else target


def clean_path(name: str) -> str:
    """Go's ``path.Clean`` of a tar member name, without its leading ``/`` (``./a//b/`` →
    ``a/b``; ``/`` and ``./`` → ``.``)."""
    return posixpath.normpath(name or ".").lstrip("/") or "."


def go_mode(kind: str, mode: int) -> int:
    """Go's ``tar.Header.FileInfo().Mode()``: permission bits, setuid/setgid/sticky moved to
    Go's bits, and the type from the mode's type bits and from the type flag."""
    out = mode & 0o777
    if mode & 0o4000:
        out |= GO_MODE_SETUID
    if mode & 0o2000:
        out |= GO_MODE_SETGID
    if mode & 0o1000:
        out |= GO_MODE_STICKY
    match mode & ~0o7777:
        case 0o040000:
            out |= GO_MODE_DIR
        case 0o010000:
            out |= GO_MODE_NAMED_PIPE
        case 0o120000:
            out |= GO_MODE_SYMLINK
        case 0o060000:
            out |= GO_MODE_DEVICE
        case 0o020000:
            out |= GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE
        case 0o140000:
            out |= GO_MODE_SOCKET
    match kind:
        case "2":
            out |= GO_MODE_SYMLINK
        case "3":
            out |= GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE
        case "4":
            out |= GO_MODE_DEVICE
        case "5":
            out |= GO_MODE_DIR
        case "6":
            out |= GO_MODE_NAMED_PIPE
    return out


def read_entries(stream: BinaryIO, *, label: str) -> list[Entry]:
    """Every member of the layer tar ``stream`` (gzip, zstd, bzip2, xz or plain: recognised by
    its magic), in tar order, regular files hashed as they stream by.  The stream is read once,
    front to back, and stays the caller's.  Raises LayerError "<label>: …" for a tar that
    cannot be read."""
    return list(iter_entries(stream, label=label))


def iter_entries(stream: BinaryIO, *, label: str) -> Iterator[Entry]:
    """``read_entries`` one entry at a time (see there)."""
    try:
        with tarfile.open(fileobj=decompressed(stream), mode="r|") as tar:
            for member in tar:
                entry = _entry(tar, member)
                if entry is not None:
                    yield entry
    except (tarfile.TarError, OSError, EOFError, ValueError, lzma.LZMAError, zlib.error) as e:
        raise LayerError(f"{label}: not a readable layer tar: {e}") from e
    except Exception as e:
        if type(e).__name__ == "ZstdError":      # zstandard's, imported only for zstd layers
            raise LayerError(f"{label}: not a readable layer tar: {e}") from e
        raise


def _entry(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Entry | None:
    path = clean_path(member.name)
    if path == ".":
        return None
    kind = member.type.decode("latin-1")
    if kind == "\x00":             # an old-style regular file: Go reads it as "0" (tarfile has
        kind = REG                  # already made an old-style "name/" a directory)
    digest = None
    if member.isreg():
        h = hashlib.sha256()
        f = tar.extractfile(member)
        if f is not None:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        digest = "sha256:" + h.hexdigest()
    return Entry(path=path, kind=kind, size=member.size, mode=member.mode, uid=member.uid,
                 gid=member.gid, linkname=member.linkname, digest=digest)
