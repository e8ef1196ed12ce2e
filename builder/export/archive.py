"""The tar container of an image archive (docker-archive, OCI layout tar): write and read members.

Written entries are built by hand: uid/gid 0, no uname/gname, mtime 0, fixed modes, so the same
images always make the same archive bytes.  Reading uses random access on the archive file
(``tarfile.open`` + ``extractfile``) and never extracts to disk.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from builder.errors import ArchiveError

#: Largest JSON member (config, manifest, index) we read into memory.
MAX_JSON = 16 << 20


class ArchiveWriter:
    """Writes members to an open tarfile; directories are added once, parents first."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self._tar = tar
        self._dirs: set[str] = set()
        self._files: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self._files

    def add_dir(self, name: str) -> None:
        name = name.rstrip("/")
        if not name or name in self._dirs:
            return
        self.add_dir(posixpath.dirname(name))
        self._tar.addfile(_info(name + "/", tarfile.DIRTYPE, 0, 0o755))
        self._dirs.add(name)

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add_stream(name, io.BytesIO(data), len(data))

    def add_stream(self, name: str, stream: BinaryIO, size: int) -> None:
        """Copy exactly ``size`` bytes of ``stream`` into member ``name`` (streamed)."""
        if name in self._files:
            return
        self.add_dir(posixpath.dirname(name))
        self._tar.addfile(_info(name, tarfile.REGTYPE, size, 0o644), stream)
        self._files.add(name)


def _info(name: str, kind: bytes, size: int, mode: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.size = size
    ti.mode = mode
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


@contextlib.contextmanager
def write_archive(out_path: str | Path) -> Iterator[ArchiveWriter]:
    """Write a tar at ``out_path`` atomically (temp file beside it, renamed on success)."""
    out = Path(out_path)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            yield ArchiveWriter(tar)
        os.replace(tmp, out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ArchiveError(f"write archive {out}: {e}") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class MemberReader:
    """What reading an archive's members by name shares, whatever holds them: ``open`` is the
    holder's; a member read whole is bounded, and a JSON member that does not parse is named."""

    path: Path

    def open(self, name: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        raise NotImplementedError

    def read(self, name: str, limit: int = MAX_JSON) -> bytes:
        with self.open(name) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ArchiveError(f"{self.path}: {name} is larger than {limit} bytes")
        return data

    def read_json(self, name: str) -> Any:
        data = self.read(name)
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ArchiveError(f"{self.path}: {name} is not valid JSON: {e}") from e


class ArchiveReader(MemberReader):
    """Random access to the members of an archive tar, by normalised path (no ``./``)."""

    def __init__(self, tar: tarfile.TarFile, path: Path) -> None:
        self._tar = tar
        self.path = path
        self._members: dict[str, tarfile.TarInfo] = {}
        for m in tar.getmembers():
            self._members[normalise(m.name)] = m

    def has(self, name: str) -> bool:
        return normalise(name) in self._members

    def member(self, name: str) -> tarfile.TarInfo:
        try:
            return self._members[normalise(name)]
        except KeyError:
            raise ArchiveError(f"{self.path}: invalid archive: no {name!r} in it") from None

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        """A reader of member ``name`` (links inside the archive are followed)."""
        m = self.member(name)
        try:
            f = self._tar.extractfile(m)
        except (KeyError, tarfile.TarError) as e:
            raise ArchiveError(f"{self.path}: read {name}: {e}") from e
        if f is None:
            raise ArchiveError(f"{self.path}: {name} is not a regular file")
        with f:
            yield f


@contextlib.contextmanager
def read_archive(in_path: str | Path) -> Iterator[ArchiveReader]:
    path = Path(in_path)
    try:
        tar = tarfile.open(path, "r:*")
    except (OSError, tarfile.TarError) as e:
        raise ArchiveError(f"open archive {path}: {e}") from e
    with tar:
        try:
            reader = ArchiveReader(tar, path)
        except (OSError, tarfile.TarError, EOFError) as e:
            raise ArchiveError(f"read archive {path}: {e}") from e
        yield reader


def normalise(name: str) -> str:
    """``./blobs//sha256/x`` → ``blobs/sha256/x``; refuses absolute and ``..`` paths."""
    norm = posixpath.normpath("/" + name.lstrip("/")).lstrip("/") if name else ""
    if name.startswith("/") or ".." in name.split("/"):
        raise ArchiveError(f"invalid archive: unsafe path {name!r}")
    return norm
