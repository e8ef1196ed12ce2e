"""ADD/COPY and WORKDIR: putting files into a rootfs (the merged union of a step).

Runs inside the step's helper process with the union mounted; every destination path is
resolved through RootDir (openat2 RESOLVE_IN_ROOT), so a symlink in the image never leads a
copy out of the rootfs.  Docker's classic rules:

- a file source goes to ``dest/<name>`` when dest ends in ``/`` or is an existing directory,
  else to ``dest`` itself; a directory source's *contents* are merged into dest;
- copied files are owned 0:0 (``--chown`` sets an owner, resolved in the destination's
  /etc files; ``COPY --from`` keeps the source's), keep their mtime and permission bits
  (``--chmod`` replaces them on files and directories, never on symlinks); missing parent
  directories are created 0755, owned 0:0 or by the ``--chown`` owner;
- inside a copied directory, symlinks stay symlinks and hardlinks stay hardlinks;
- ADD extracts a local tar archive (plain, gzip, bzip2, xz) into dest; a URL is downloaded
  (mode 0600, mtime from Last-Modified) and never extracted; COPY never extracts.

A copy of one context directory may leave its new regular files for later (``upper``): they
are then written straight into the step's upper dir once the union is unmounted
(``finish_copy``), where an unchanged file can be hardlinked from the layer the same step made
before instead of copied (build/copyreuse.py).  What ends up in the upper dir is the same.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from builder.context.archive import check_archive
from builder.context.chmod import Chmod
from builder.context.item import CopyOptions, Item
from builder.context.owner import resolve_owner
from builder.context.sources import Source, walk
from builder.errors import ContextError, LayerError
from builder.layer import userns
from builder.layer.root import RootDir, remove_all, resolve_in_scope
from builder.layer.unpack import extract_archive, open_maybe_compressed
from builder.oci.digest import CHUNK


@dataclass(frozen=True)
class _Owner:
    """CopyOptions made concrete for one copy: ``ids`` None means "the source's own"."""

    ids: tuple[int, int] | None
    chmod: Chmod | None

    def of(self, st: os.stat_result) -> tuple[int, int]:
        return self.ids if self.ids is not None else (st.st_uid, st.st_gid)

    def mode(self, st: os.stat_result) -> int:
        if self.chmod is None:
            return stat.S_IMODE(st.st_mode)
        return self.chmod.apply(st.st_mode, is_dir=stat.S_ISDIR(st.st_mode))


@dataclass(frozen=True)
class Deferred:
    """A regular file a copy left to write once the union is unmounted: ``target`` (in the
    root) gets ``source``'s content, with this mode, owner and mtime."""

    target: str
    source: str
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    size: int


@dataclass(frozen=True)
class Leftover:
    """What a copy left for ``finish_copy``: its files, then the directory mtimes to set again
    (children first) since adding the files changed them."""

    files: list[Deferred] = field(default_factory=list)
    dir_times: list[tuple[str, int]] = field(default_factory=list)


#: ``reuse(file)``: an open (directory fd, name) of a file with exactly the deferred file's
#: content and metadata, to hardlink instead of copying; None to copy.  The caller closes nothing.
Reuse = Callable[[Deferred], "tuple[int, str] | None"]


# -- inside the step's helper process -------------------------------------------------------
def make_workdir(merged: Path, path: str) -> None:
    """WORKDIR: ``mkdir -p`` inside the rootfs (root-owned, 0755), nothing if it exists.
    Symlinks on the way are resolved like an ADD/COPY destination (resolve_in_scope)."""
    with RootDir(merged) as root:
        os.close(root.open_dir(resolve_in_scope(root, path), create=True))


def copy_items(merged: Path, items: list[Item], dest: str, options: CopyOptions | None = None, *,
               upper: Path | None = None) -> Leftover | None:
    """Copy every item to ``dest`` (absolute inside the rootfs) by docker's rules.

    With ``upper`` (the union's upper dir) and a single directory to copy, the directory's new
    regular files (not hardlinked in the source, nothing at their place in the union) are
    returned for ``finish_copy`` instead of written; their directories are in the upper dir."""
    options = options or CopyOptions()
    leftover = Leftover() if upper is not None and len(items) == 1 and items[0].source.is_dir \
        and not items[0].extract else None
    with RootDir(merged) as root:
        ids = resolve_owner(root, options.chown) if options.chown else None
        owner = _Owner(ids if ids is not None or options.preserve_owner else (0, 0), options.chmod)
        new_dirs = _Owner(ids or (0, 0), None)
        for item in items:
            try:
                _copy_one(root, merged, item, dest, owner, new_dirs, leftover)
            except OSError as e:
                why = userns.denied_hint(e, owner=ids, device=e.errno == errno.EPERM)
                raise ContextError(f"copy {item.source.rel or '.'} to {dest}: {e.strerror}{why}") from e
        if leftover is not None and upper is not None:
            _parents_up(root, upper, leftover)
    return leftover


def _parents_up(root: RootDir, upper: Path, leftover: Leftover) -> None:
    """Make sure the directory of every left file is in the upper dir: one that only a lower
    layer has is copied up (overlay copies up on any change of attributes: its owner is set to
    what it is).  A file whose directory still is not there is written now, through the union."""
    in_upper: dict[str, bool] = {}
    keep: list[Deferred] = []
    with RootDir(upper) as up:
        for f in leftover.files:
            parent = posixpath.dirname(f.target) or "."
            if parent not in in_upper:
                if parent != "." and up.lstat(parent) is None:
                    dirfd, name = root.parent_of(parent)
                    try:
                        st = os.lstat(name, dir_fd=dirfd)
                        os.chown(name, st.st_uid, st.st_gid, dir_fd=dirfd, follow_symlinks=False)
                    finally:
                        os.close(dirfd)
                found = up.lstat(parent)
                in_upper[parent] = found is not None and stat.S_ISDIR(found.st_mode)
            if in_upper[parent]:
                keep.append(f)
                continue
            dirfd, name = root.parent_of(f.target)
            try:
                _write_file(dirfd, name, Path(f.source), f.mode, None, (f.uid, f.gid))
            finally:
                os.close(dirfd)
    leftover.files[:] = keep


# -- in pybuild, after the helper unmounted the union ----------------------------------------
def finish_copy(upper: Path, leftover: Leftover, reuse: Reuse | None = None) -> None:
    """Write the files a copy left (``copy_items`` with ``upper``) into the upper dir: each a
    hardlink to what ``reuse`` offers, else a copy of its source; then set the directories'
    mtimes again.  Every path is resolved inside ``upper``."""
    with RootDir(upper) as root:
        dirs = _DirFds(root)
        try:
            for f in leftover.files:
                parent, final = posixpath.split(f.target)
                dirfd = dirs.fd(parent or ".")
                offered = reuse(f) if reuse is not None else None
                if offered is not None:
                    try:
                        os.link(offered[1], final, src_dir_fd=offered[0], dst_dir_fd=dirfd, follow_symlinks=False)
                        continue
                    except OSError:        # EMLINK, a layer removed meanwhile …: copy instead
                        pass
                _write_file(dirfd, final, Path(f.source), f.mode, None, (f.uid, f.gid))
        finally:
            dirs.close()
        _set_dir_times(root, leftover.dir_times)


def _make_dirs(root: RootDir, rel: str, owner: _Owner) -> list[str]:
    """``mkdir -p rel`` (0755), the new directories owned by ``owner``; returns them."""
    parts = [] if rel == "." else rel.split("/")
    missing = [p for p in ("/".join(parts[:i + 1]) for i in range(len(parts))) if root.lstat(p) is None]
    os.close(root.open_dir(rel, create=True))
    if owner.ids not in (None, (0, 0)):
        for made in missing:
            dirfd, name = root.parent_of(made)
            try:
                os.chown(name, *owner.ids, dir_fd=dirfd, follow_symlinks=False)
            finally:
                os.close(dirfd)
    return missing


def _copy_one(root: RootDir, merged: Path, item: Item, dest: str, owner: _Owner, new_dirs: _Owner,
              leftover: Leftover | None) -> None:
    src = item.source
    if item.subdir:
        dest = posixpath.join(dest, item.subdir) + ("" if src.is_dir else "/")
    dest_rel = resolve_in_scope(root, dest)
    if item.extract:
        check_archive(src)
        stream = open_maybe_compressed(src.path)
        if stream is None:
            raise LayerError(f"internal error: {src.rel} is no longer an archive")
        try:
            with stream:     # classic ignores --chown for archives: the dest too is 0:0
                _make_dirs(root, dest_rel, _Owner((0, 0), None))
                extract_archive(stream, merged, dest_rel)
        except LayerError as e:
            raise LayerError(f"ADD {src.rel}: extract into {dest}: {e}") from e
        return
    if src.is_dir:
        created = dest_rel in _make_dirs(root, dest_rel, new_dirs)
        if created and owner.chmod is not None:
            dirfd, name = root.parent_of(dest_rel)
            try:
                os.chmod(name, owner.chmod.apply(0o755, is_dir=True), dir_fd=dirfd, follow_symlinks=False)
            finally:
                os.close(dirfd)
        _copy_tree(root, src, dest_rel, owner, created_top=created, leftover=leftover)
        return
    existing = root.lstat(dest_rel) if dest_rel != "." else os.stat(merged)
    into_dir = dest.endswith("/") or dest_rel == "." or (
        existing is not None and _is_dir_in_root(root, dest_rel))
    target = posixpath.join(dest_rel, src.name) if into_dir else dest_rel
    _make_dirs(root, posixpath.dirname(target) or ".", new_dirs)
    dirfd, name = root.parent_of(target)
    st = os.stat(src.path)
    mode = item.mode
    if owner.chmod is not None:
        mode = owner.chmod.apply(st.st_mode if item.mode is None else item.mode, is_dir=False)
    try:
        _write_file(dirfd, name, src.path, mode, item.mtime, owner.of(st))
    finally:
        os.close(dirfd)


def _is_dir_in_root(root: RootDir, rel: str) -> bool:
    try:
        os.close(root.open_dir(rel))
        return True
    except LayerError:
        return False


def _write_file(dirfd: int, name: str, src: Path, mode: int | None, mtime: int | None,
                owner: tuple[int, int] = (0, 0), st: os.stat_result | None = None) -> None:
    """Write ``src``'s content to ``name`` in ``dirfd`` (replacing a non-directory there), then
    its owner, mode and mtime.  The data is copied by the kernel (sendfile)."""
    st = st or os.stat(src)
    try:
        old = os.lstat(name, dir_fd=dirfd)
    except FileNotFoundError:
        old = None
    if old is not None:
        if stat.S_ISDIR(old.st_mode):
            raise ContextError(f"cannot copy file {src.name} over directory {name}")
        os.unlink(name, dir_fd=dirfd)
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=dirfd)
    try:
        source = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _copy_data(source, fd, src)
        finally:
            os.close(source)
        os.fchown(fd, *owner)
        os.fchmod(fd, stat.S_IMODE(st.st_mode) if mode is None else mode)
        t = st.st_mtime_ns if mtime is None else mtime * 10**9
        os.utime(fd, ns=(t, t))
    finally:
        os.close(fd)


def _copy_data(source: int, target: int, shown: Path) -> None:
    """All of ``source`` into ``target`` (both at offset 0), in the kernel where it can."""
    offset = 0
    while True:
        try:
            sent = os.sendfile(target, source, offset, CHUNK)
        except OSError as e:
            if offset == 0 and e.errno in (errno.EINVAL, errno.ENOSYS):
                break                                   # no sendfile between these: read/write
            raise
        if sent == 0:
            return
        offset += sent
    while chunk := os.read(source, CHUNK):
        os.write(target, chunk)


def _copy_tree(root: RootDir, src: Source, dest_rel: str, owner: _Owner, *, created_top: bool,
               leftover: Leftover | None = None) -> None:
    """Merge the contents of directory ``src`` into ``dest_rel`` (which exists).  A dest the
    copy created gets the source directory's mtime; an existing one keeps its own.  New
    regular files go to ``leftover``, when given (see ``copy_items``).

    Directories are opened once: each by name under its parent's fd (``O_NOFOLLOW``), right
    after ``_make_dir`` made sure it is a real directory, so no path is resolved twice and
    none can lead out of the root."""
    links: dict[tuple[int, int], str] = {}
    dir_times: list[tuple[str, int]] = []
    top = os.lstat(src.path)
    dirs = _DirFds(root)
    try:
        for rel, full in walk(src):
            target = posixpath.join(dest_rel, rel) if dest_rel != "." else rel
            st = os.lstat(full)
            parent, final = posixpath.split(target)
            dirfd = dirs.fd(parent or ".")
            if stat.S_ISDIR(st.st_mode):
                _make_dir(dirfd, final, st, owner)
                dirs.opened(target, dirfd, final)
                dir_times.append((target, st.st_mtime_ns))
                continue
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                remove_all(dirfd, final)
                first_parent, first_name = posixpath.split(links[key])
                os.link(first_name, final, src_dir_fd=dirs.fd(first_parent or "."), dst_dir_fd=dirfd,
                        follow_symlinks=False)
                continue
            if stat.S_ISREG(st.st_mode):
                if leftover is not None and st.st_nlink == 1 and _absent(dirfd, final):
                    leftover.files.append(Deferred(target, full, owner.mode(st), *owner.of(st),
                                                   st.st_mtime_ns, st.st_size))
                    continue
                _write_file(dirfd, final, Path(full), owner.mode(st), None, owner.of(st), st)
                links[key] = target
            elif stat.S_ISLNK(st.st_mode):
                remove_all(dirfd, final)
                os.symlink(os.readlink(full), final, dir_fd=dirfd)
                os.chown(final, *owner.of(st), dir_fd=dirfd, follow_symlinks=False)
                os.utime(final, ns=(st.st_mtime_ns, st.st_mtime_ns), dir_fd=dirfd, follow_symlinks=False)
            elif stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                remove_all(dirfd, final)
                os.mknod(final, st.st_mode, st.st_rdev, dir_fd=dirfd)
                os.chown(final, *owner.of(st), dir_fd=dirfd, follow_symlinks=False)
                os.chmod(final, owner.mode(st), dir_fd=dirfd, follow_symlinks=False)
            # sockets are skipped, as every tar writer does
    finally:
        dirs.close()
    if created_top:
        dir_times.append((dest_rel, top.st_mtime_ns))
    _set_dir_times(root, dir_times)
    if leftover is not None:
        leftover.dir_times.extend(dir_times)


def _set_dir_times(root: RootDir, dir_times: list[tuple[str, int]]) -> None:
    for rel, mtime in reversed(dir_times):        # children first, so parents keep theirs
        if rel == ".":
            continue
        dirfd, final = root.parent_of(rel)
        try:
            os.utime(final, ns=(mtime, mtime), dir_fd=dirfd, follow_symlinks=False)
        finally:
            os.close(dirfd)


def _absent(dirfd: int, name: str) -> bool:
    try:
        os.lstat(name, dir_fd=dirfd)
    except FileNotFoundError:
        return True
    return False


class _DirFds:
    """Open directory fds of one copy, by path relative to the root."""

    def __init__(self, root: RootDir) -> None:
        self.root = root
        self._fds: dict[str, int] = {}

    def fd(self, rel: str) -> int:
        """The fd of directory ``rel`` (resolved inside the root the first time it is asked)."""
        fd = self._fds.get(rel)
        if fd is None:
            fd = self._fds[rel] = self.root.open_dir(rel)
        return fd

    def opened(self, rel: str, parent: int, name: str) -> None:
        """Directory ``rel`` was just made sure of as ``name`` in ``parent``: keep its fd."""
        if rel not in self._fds:
            self._fds[rel] = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                     dir_fd=parent)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _make_dir(dirfd: int, name: str, st: os.stat_result, owner: _Owner) -> None:
    try:
        old = os.lstat(name, dir_fd=dirfd)
    except FileNotFoundError:
        old = None
    if old is not None and not stat.S_ISDIR(old.st_mode):
        remove_all(dirfd, name)
        old = None
    if old is None:
        os.mkdir(name, 0o700, dir_fd=dirfd)
        os.chown(name, *owner.of(st), dir_fd=dirfd, follow_symlinks=False)
        os.chmod(name, owner.mode(st), dir_fd=dirfd, follow_symlinks=False)
