"""`pybuild cp IMAGE:PATH DEST`: one file or directory out of an image, safely.

The image is the union of its layers (all of them, or 0..N with --layer N: the filesystem as
layer N left it).  PATH is resolved inside the image as a chroot would resolve it: a symlink
on the way is followed within the image (an absolute target starts at the image's root, ``..``
stops there); the last component is never followed (a symlink is copied as a symlink).  The
layers holding the wanted contents are streamed again and only those members are written.

Writing never leaves DEST: every path is opened component by component from a directory
descriptor with O_NOFOLLOW (a symlink already in DEST, or one just written, is never
followed), names are checked to hold no ``..``; setuid, setgid and sticky bits are dropped and
owners are not copied; devices, fifos and sockets are skipped (each said on stderr).
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.analysis.entries import DIR, LINK, REG, SYMLINK, Entry, clean_path
from builder.analysis.sources import Image
from builder.analysis.union import Union, Visible
from builder.errors import PybuildError, UsageError
from builder.layer.compression import decompressed
from builder.oci.digest import CHUNK

MAX_LINKS = 40


@dataclass
class Copied:
    files: int = 0
    bytes: int = 0
    skipped: int = 0


def resolve(union: Union, path: str) -> str:
    """``path`` (absolute, in the image) with every symlink on the way followed inside the
    image; the last component is not followed.  Returns a relative path ("" is the root);
    raises UsageError when it is not in the image."""
    todo = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    links = 0
    while todo:
        name = todo.pop(0)
        if name == "..":
            if done:
                done.pop()
            continue
        candidate = "/".join([*done, name])
        vis = union.get(candidate)
        if vis is not None and vis.entry.kind == SYMLINK and todo:
            links += 1
            if links > MAX_LINKS:
                raise UsageError(f"{path}: too many levels of symbolic links in the image")
            target = vis.entry.linkname
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p and p != "."] + todo
            continue
        if vis is None and not union.has_dir(candidate):
            raise UsageError(f"{path}: no such file or directory in the image")
        done.append(name)
    return "/".join(done)


def copy_out(image: Image, layers: Sequence[Sequence[Entry]], path: str, dest: Path, *,
             warn: Callable[[str], None]) -> Copied:
    """Copy ``path`` of the image made of ``layers`` (entries, base first; the layers of
    ``image`` with the same indexes) to ``dest``, as `cp -r` would (into ``dest`` if it is a
    directory)."""
    union = Union()
    for entries in layers:
        union.apply(entries)
    rel = resolve(union, path)
    wanted: dict[str, Visible] = {}
    if rel:
        top = union.get(rel)
        if top is not None:
            wanted[rel] = top
    if union.has_dir(rel):
        for p in union.under(rel):
            vis = union.get(p)
            if vis is not None:
                wanted[p] = vis
    base, top_name = _destination(dest, rel)
    out = _Writer(base, top_name, rel, warn)
    try:
        if rel not in wanted:
            out.directory(rel, None)               # the root, or a directory no layer listed
        _write_all(image, union, wanted, out)
    finally:
        out.close()
    return out.copied


def _destination(dest: Path, rel: str) -> tuple[Path, str]:
    """(an existing directory, the name to create in it) for `cp SRC DEST`."""
    if dest.is_dir() and not dest.is_symlink():
        name = posixpath.basename(rel)
        return (dest, name) if name else (dest.parent, dest.name)
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{dest}: its directory {parent} does not exist")
    return parent, dest.name


def _write_all(image: Image, union: Union, wanted: dict[str, Visible], out: _Writer) -> None:
    by_layer: dict[int, dict[str, list[str]]] = {}        # layer → member path → where to write it
    links: list[tuple[str, str]] = []
    for p, vis in sorted(wanted.items()):
        e = vis.entry
        above = _non_dir_above(p, wanted)
        if above is not None:                          # a layer wrote under what is now a symlink
            out.skip(p, f"it is under the {'symlink' if wanted[above].entry.kind == SYMLINK else 'file'} /{above}")
            continue
        if e.kind == DIR:
            out.directory(p, e)
        elif e.kind == SYMLINK:
            out.symlink(p, e.linkname)
        elif e.kind == REG:
            by_layer.setdefault(vis.layer, {}).setdefault(p, []).append(p)
        elif e.kind == LINK:
            target = clean_path(e.linkname)
            if target in wanted:
                links.append((p, target))
            elif (tv := union.get(target)) is not None and tv.entry.kind == REG:
                by_layer.setdefault(tv.layer, {}).setdefault(target, []).append(p)
            else:
                out.skip(p, f"a hard link to {target}, which the image does not have")
        else:
            out.skip(p, "a device, fifo or socket")
    for layer, members in sorted(by_layer.items()):
        ref = image.layers[layer]
        with ref.open() as stream, tarfile.open(fileobj=decompressed(stream), mode="r|") as tar:
            for member in tar:
                targets = members.get(clean_path(member.name))
                if targets and member.isreg():
                    f = tar.extractfile(member)
                    for n, p in enumerate(targets):
                        if n == 0 and f is not None:
                            out.file(p, f, wanted[p].entry.mode)
                        else:
                            out.link(p, targets[0])
    for p, target in links:
        out.link(p, target)
    out.finish_dirs()


def _non_dir_above(path: str, wanted: dict[str, Visible]) -> str | None:
    """The nearest path above ``path`` in ``wanted`` that is not a directory, if any."""
    parent = posixpath.dirname(path)
    while parent:
        vis = wanted.get(parent)
        if vis is not None and not vis.entry.is_dir:
            return parent
        parent = posixpath.dirname(parent)
    return None


class _Writer:
    """Writes under ``base/top`` through directory descriptors, never following a symlink."""

    def __init__(self, base: Path, top: str, rel: str, warn: Callable[[str], None]) -> None:
        self.base_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
        self.top = top
        self.rel = rel
        self.warn = warn
        self.copied = Copied()
        self._dir_modes: list[tuple[str, int]] = []

    def close(self) -> None:
        os.close(self.base_fd)

    def _parts(self, p: str) -> list[str]:
        sub = p[len(self.rel):].lstrip("/") if self.rel else p
        parts = [self.top] + [x for x in sub.split("/") if x]
        if any(x in ("", ".", "..") or "/" in x for x in parts):
            raise PybuildError(f"refused: unsafe path {p!r} in the image")
        return parts

    def _parent_fd(self, parts: list[str]) -> int:
        fd = os.dup(self.base_fd)
        try:
            for name in parts[:-1]:
                try:
                    os.mkdir(name, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
                nxt = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = nxt
        except OSError as e:
            os.close(fd)
            raise PybuildError(f"cp: {'/'.join(parts)}: {e.strerror} (a symlink or file is in the way?)") from e
        return fd

    def directory(self, p: str, entry: Entry | None) -> None:
        parts = self._parts(p)
        fd = self._parent_fd(parts)
        try:
            try:
                os.mkdir(parts[-1], 0o700, dir_fd=fd)
            except FileExistsError:
                st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    raise PybuildError(f"cp: {'/'.join(parts)} exists and is not a directory") from None
        finally:
            os.close(fd)
        self._dir_modes.append((p, (entry.mode if entry else 0o755) & 0o777))

    def finish_dirs(self) -> None:
        """Give each directory its mode, deepest first (they stayed 0700 while written)."""
        for p, mode in sorted(self._dir_modes, key=lambda x: -x[0].count("/")):
            parts = self._parts(p)
            fd = self._parent_fd(parts)
            try:
                dir_fd = os.open(parts[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                os.fchmod(dir_fd, mode)
                os.close(dir_fd)
            finally:
                os.close(fd)

    def file(self, p: str, src, mode: int) -> None:
        parts = self._parts(p)
        fd = self._parent_fd(parts)
        try:
            _remove(parts[-1], fd)
            out = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=fd)
            with os.fdopen(out, "wb") as f:
                while chunk := src.read(CHUNK):
                    f.write(chunk)
                    self.copied.bytes += len(chunk)
                os.fchmod(f.fileno(), mode & 0o777)
        except IsADirectoryError as e:
            raise PybuildError(f"cp: {'/'.join(parts)}: a directory is in the way") from e
        finally:
            os.close(fd)
        self.copied.files += 1

    def symlink(self, p: str, target: str) -> None:
        parts = self._parts(p)
        fd = self._parent_fd(parts)
        try:
            _remove(parts[-1], fd)
            os.symlink(target, parts[-1], dir_fd=fd)
        finally:
            os.close(fd)
        self.copied.files += 1

    def link(self, p: str, target: str) -> None:
        src, dst = self._parts(target), self._parts(p)
        sfd, dfd = self._parent_fd(src), self._parent_fd(dst)
        try:
            os.link(src[-1], dst[-1], src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
        except OSError as e:
            self.skip(p, f"cannot link it to {target}: {e.strerror}")
        finally:
            os.close(sfd)
            os.close(dfd)

    def skip(self, p: str, why: str) -> None:
        self.copied.skipped += 1
        self.warn(f"skipped /{p}: {why}")


def _remove(name: str, dir_fd: int) -> None:
    """Remove a non-directory ``name`` if it is there: a later layer's entry replaces it."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
