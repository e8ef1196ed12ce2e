"""ADD of a local archive: whether a source is one, and refusing one that would leave its
destination before anything is extracted (extraction itself is layer/unpack.py's)."""

from __future__ import annotations

import posixpath
import tarfile

from builder.context.sources import Source
from builder.errors import LayerError
from builder.layer.unpack import open_maybe_compressed


def is_archive(source: Source) -> bool:
    """ADD extracts a file when its (decompressed) content starts with a tar header."""
    if source.is_dir:
        return False
    stream = open_maybe_compressed(source.path)
    if stream is None:
        return False
    stream.close()
    return True


def check_archive(src: Source) -> None:
    """Refuse an ADD archive that would leave its destination, before extracting anything.

    Like docker's classic untar (``breakoutError``): an entry name or hardlink target with a
    ``..`` climbing above the destination, and a relative symlink pointing above it, are
    refused.  pybuild also refuses an entry whose path goes through a symlink the same
    archive made (a classic symlink-then-file attack; classic docker fails on it only by
    accident of the chroot).  Absolute names and absolute symlink targets are allowed: a
    leading ``/`` is stripped, and links are clamped to the rootfs when followed."""
    stream = open_maybe_compressed(src.path)
    if stream is None:
        raise LayerError(f"internal error: {src.rel} is no longer an archive")
    links: set[str] = set()
    try:
        with stream, tarfile.open(fileobj=stream, mode="r|", encoding="utf-8",
                                  errors="surrogateescape") as tar:
            for member in tar:
                _check_member(src, member, links)
                tar.members.clear()  # type: ignore[attr-defined]  # stream mode; not in typeshed
    except tarfile.TarError as e:
        raise LayerError(f"ADD {src.rel}: read archive: {e}") from e


def _check_member(src: Source, member: tarfile.TarInfo, links: set[str]) -> None:
    name = posixpath.normpath("/" + member.name).lstrip("/") or "."
    if _climbs(member.name.lstrip("/")):
        raise LayerError(f"ADD {src.rel}: archive entry {member.name!r} escapes the destination")
    parts = name.split("/")
    for i in range(1, len(parts)):
        prefix = "/".join(parts[:i])
        if prefix in links:
            raise LayerError(f"ADD {src.rel}: archive entry {member.name!r} goes through "
                             f"symlink {prefix!r} of the same archive")
    if member.islnk() and _climbs(member.linkname.lstrip("/")):
        raise LayerError(f"ADD {src.rel}: hardlink {member.name!r} -> {member.linkname!r} "
                         "escapes the destination")
    if member.issym() and not member.linkname.startswith("/") and \
            _climbs(posixpath.join(posixpath.dirname(name), member.linkname)):
        raise LayerError(f"ADD {src.rel}: symlink {member.name!r} -> {member.linkname!r} "
                         "points outside the destination")
    if member.issym():
        links.add(name)
    else:
        links.discard(name)


def _climbs(rel: str) -> bool:
    """Whether relative path ``rel`` goes above its starting directory at any point."""
    depth = 0
    for part in rel.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False
