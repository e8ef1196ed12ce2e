"""Entry lines in the conformance format (tests/conformance README, "Entry lines").

    f MODE UID:GID SIZE SHA256 PATH        d MODE UID:GID PATH
    l MODE UID:GID PATH -> TARGET          h MODE UID:GID PATH -> TARGET
    c MODE UID:GID MAJ,MIN PATH            b …, p MODE UID:GID PATH
    w PATH                                 o PATH

MODE is 4-digit octal permission bits with setuid/setgid/sticky; symlinks show 0777.
Lines are sorted by path (bytewise); entries with the same path keep their order.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO

from builder.errors import LayerError
from builder.layer import whiteout
from builder.oci.digest import hex_of, sha256_stream


def _key(line: tuple[str, str]) -> bytes:
    return line[0].encode("utf-8", "surrogateescape")


def _head(kind: str, mode: int, uid: int, gid: int) -> str:
    return f"{kind} {mode & 0o7777:04o} {uid}:{gid}"


def _sha256(stream: BinaryIO) -> str:
    return hex_of(sha256_stream(stream)[0])


def _tar_path(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")


def tar_lines(stream: BinaryIO) -> list[str]:
    """One line per entry of the tar ``stream`` (plain or compressed), sorted by path.

    ``.wh.<name>`` entries become ``w DIR/<name>``, ``.wh..wh..opq`` becomes ``o DIR``; the
    root (``.``) gets no line.  Reads ``stream`` to its end; does not close it.
    """
    lines: list[tuple[str, str]] = []
    try:
        with tarfile.open(fileobj=stream, mode="r|*", encoding="utf-8",
                          errors="surrogateescape") as tar:
            for m in tar:
                path = _tar_path(m.name)
                if path in ("", "."):
                    continue
                lines.append((path, _tar_line(tar, m, path)))
                tar.members.clear()
    except tarfile.TarError as e:
        raise LayerError(f"list tar: {e}") from e
    lines = [(p if not line.startswith(("w ", "o ")) else line[2:], line)
             for p, line in lines]
    return [line for _, line in sorted(lines, key=_key)]


def _tar_line(tar: tarfile.TarFile, m: tarfile.TarInfo, path: str) -> str:
    parent, _, base = path.rpartition("/")
    if whiteout.is_opaque_marker(base):
        return f"o {parent or '.'}"
    if whiteout.is_whiteout_name(base):
        target = base[len(whiteout.WHITEOUT_PREFIX):]
        return f"w {parent + '/' if parent else ''}{target}"
    if m.issym():
        return f"{_head('l', 0o777, m.uid, m.gid)} {path} -> {m.linkname}"
    head = _head("?", m.mode, m.uid, m.gid)[2:]
    if m.islnk():
        return f"h {head} {path} -> {_tar_path(m.linkname)}"
    if m.isdir():
        return f"d {head} {path}"
    if m.ischr() or m.isblk():
        return f"{'c' if m.ischr() else 'b'} {head} {m.devmajor},{m.devminor} {path}"
    if m.isfifo():
        return f"p {head} {path}"
    data = tar.extractfile(m)
    digest = _sha256(data) if data is not None else hashlib.sha256(b"").hexdigest()
    return f"f {head} {m.size} {digest} {path}"


def tree_lines(root: Path) -> list[str]:
    """One line per path of the directory tree at ``root`` (``d … .`` for the root itself).

    Symlinks are never followed; hardlinks are listed as the file they name (``f``); overlay
    whiteouts are listed as char devices 0,0 (walk a merged view to hide them).  Sockets are
    skipped.  Sorted by path.
    """
    out: list[tuple[bytes, str]] = []
    base = os.fsencode(root)

    stack = [b""]
    while stack:  # iterative depth-first walk: no recursion limit on deep trees
        rel = stack.pop()
        full = os.path.join(base, rel) if rel else base
        path = os.fsdecode(rel) if rel else "."
        try:
            st = os.lstat(full)
        except OSError as e:
            raise LayerError(f"list {path}: lstat: {e.strerror}") from e
        line = _tree_line(full, path, st)
        if line is not None:
            out.append((rel or b".", line))
        if stat.S_ISDIR(st.st_mode):
            try:
                names = os.listdir(full)
            except OSError as e:
                raise LayerError(f"list {path}: {e.strerror}") from e
            stack.extend(os.path.join(rel, name) if rel else name for name in names)

    out.sort(key=lambda item: b"" if item[0] == b"." else item[0])
    return [line for _, line in out]


def _tree_line(full: bytes, path: str, st: os.stat_result) -> str | None:
    fmt = stat.S_IFMT(st.st_mode)
    head = _head("?", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)[2:]
    if fmt == stat.S_IFDIR:
        return f"d {head} {path}"
    if fmt == stat.S_IFLNK:
        target = os.fsdecode(os.readlink(full))
        return f"{_head('l', 0o777, st.st_uid, st.st_gid)} {path} -> {target}"
    if fmt == stat.S_IFREG:
        try:
            with open(full, "rb") as f:
                digest = _sha256(f)  # type: ignore[arg-type]
        except OSError as e:
            raise LayerError(f"list {path}: read: {e.strerror}") from e
        return f"f {head} {st.st_size} {digest} {path}"
    if fmt in (stat.S_IFCHR, stat.S_IFBLK):
        kind = "c" if fmt == stat.S_IFCHR else "b"
        return f"{kind} {head} {os.major(st.st_rdev)},{os.minor(st.st_rdev)} {path}"
    if fmt == stat.S_IFIFO:
        return f"p {head} {path}"
    return None
