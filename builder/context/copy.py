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
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import posixpath
import stat
import tarfile
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder.context.sources import Source, walk
from builder.errors import ContextError, LayerError
from builder.layer.root import RootDir, remove_all
from builder.layer.unpack import extract_archive, open_maybe_compressed

CHUNK = 1 << 20


@dataclass(frozen=True)
class Item:
    """One thing to copy.  ``mode``/``mtime`` override the source's (downloads)."""

    source: Source
    extract: bool = False
    mode: int | None = None
    mtime: int | None = None


@dataclass(frozen=True)
class CopyOptions:
    """How the copied entries are owned and moded.  ``chown`` is the expanded ``--chown``
    value (resolved inside the helper, against the destination rootfs); None means 0:0, or
    the source's own ids when ``preserve_owner`` (``COPY --from``).  ``chmod`` None keeps the
    source's permission bits."""

    chown: str | None = None
    chmod: int | None = None
    preserve_owner: bool = False


@dataclass(frozen=True)
class _Owner:
    """CopyOptions made concrete for one copy: ``ids`` None means "the source's own"."""

    ids: tuple[int, int] | None
    chmod: int | None

    def of(self, st: os.stat_result) -> tuple[int, int]:
        return self.ids if self.ids is not None else (st.st_uid, st.st_gid)

    def mode(self, st: os.stat_result) -> int:
        return stat.S_IMODE(st.st_mode) if self.chmod is None else self.chmod


def parse_chmod(value: str) -> int:
    """``--chmod`` as BuildKit takes it: an octal string between 0 and 07777."""
    try:
        mode = int(value, 8)
    except ValueError:
        mode = -1
    if not value or not 0 <= mode <= 0o7777:
        raise ContextError(f"invalid chmod parameter: '{value}'. it should be octal string "
                           "and between 0 and 07777")
    return mode


def is_archive(source: Source) -> bool:
    """ADD extracts a file when its (decompressed) content starts with a tar header."""
    if source.is_dir:
        return False
    stream = open_maybe_compressed(source.path)
    if stream is None:
        return False
    stream.close()
    return True


def download(url: str, into: Path, want_sha256: str | None = None) -> Item:
    """Fetch ``url`` (ADD) into ``into``; the file keeps the URL path's base name.
    With ``want_sha256`` (``--checksum=sha256:<hex>``) the content must hash to it."""
    import requests                                  # only ADD of a URL needs it

    name = posixpath.basename(urllib.parse.urlparse(url).path) or "__unnamed__"
    target = into / f"download-{hashlib.sha256(url.encode()).hexdigest()[:16]}" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with requests.get(url, stream=True, timeout=60) as resp:
            resp.raise_for_status()
            with open(target, "wb") as f:
                for chunk in resp.iter_content(CHUNK):
                    f.write(chunk)
            modified = resp.headers.get("Last-Modified")
    except requests.RequestException as e:
        raise ContextError(f"ADD {url}: download failed: {e}") from e
    if want_sha256 is not None:
        got = _file_sha(target)
        if got != want_sha256:
            raise ContextError(f"ADD {url}: digest mismatch: expected sha256:{want_sha256}, "
                               f"got sha256:{got}")
    mtime = 0
    if modified:
        try:
            mtime = int(email.utils.parsedate_to_datetime(modified).timestamp())
        except (TypeError, ValueError):
            mtime = 0
    source = Source(path=target, name=name, rel=url, is_dir=False)
    return Item(source=source, mode=0o600, mtime=mtime)


def checksum(items: list[Item], file_sha: Callable[[str | Path], str] | None = None) -> str:
    """The ``file:<hex>`` / ``dir:<hex>`` / ``multi:<hex>`` part of ADD/COPY's created_by.

    pybuild's own scheme: a file is the sha256 of its content (so ``sha256sum`` shows the
    same hex); a directory hashes, sorted by path, each entry's path, type, mode, link target
    and content hash; several sources hash their own checksums in order.  ``file_sha`` may
    serve content hashes the store already knows (cache.FileHashes)."""
    parts = [_item_sum(i, file_sha or _file_sha) for i in items]
    if len(parts) == 1:
        return parts[0]
    return "multi:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _item_sum(item: Item, _file_sha: Callable[[str | Path], str]) -> str:
    if not item.source.is_dir:
        return "file:" + _file_sha(item.source.path)
    h = hashlib.sha256()
    for rel, full in walk(item.source):
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            body = "l " + os.readlink(full)
        elif stat.S_ISREG(st.st_mode):
            body = "f " + _file_sha(full)
        else:
            body = "d" if stat.S_ISDIR(st.st_mode) else "o"
        h.update(f"{rel}\0{stat.S_IMODE(st.st_mode):o}\0{body}\n".encode("utf-8", "surrogateescape"))
    return "dir:" + h.hexdigest()


def _file_sha(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


# -- inside the step's helper process -------------------------------------------------------
def make_workdir(merged: Path, path: str) -> None:
    """WORKDIR: ``mkdir -p`` inside the rootfs (root-owned, 0755), nothing if it exists.
    Symlinks on the way are resolved like an ADD/COPY destination (resolve_in_scope)."""
    with RootDir(merged) as root:
        os.close(root.open_dir(resolve_in_scope(root, path), create=True))


def copy_items(merged: Path, items: list[Item], dest: str,
               options: CopyOptions = CopyOptions()) -> None:
    """Copy every item to ``dest`` (absolute inside the rootfs) by docker's rules."""
    from builder.context.owner import resolve_owner
    with RootDir(merged) as root:
        ids = resolve_owner(root, options.chown) if options.chown else None
        owner = _Owner(ids if ids is not None or options.preserve_owner else (0, 0), options.chmod)
        new_dirs = _Owner(ids or (0, 0), None)
        for item in items:
            _copy_one(root, merged, item, dest, owner, new_dirs)


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


def _copy_one(root: RootDir, merged: Path, item: Item, dest: str, owner: _Owner, new_dirs: _Owner) -> None:
    src = item.source
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
                os.chmod(name, owner.chmod, dir_fd=dirfd, follow_symlinks=False)
            finally:
                os.close(dirfd)
        _copy_tree(root, src, dest_rel, owner, created_top=created)
        return
    existing = root.lstat(dest_rel) if dest_rel != "." else os.stat(merged)
    into_dir = dest.endswith("/") or dest_rel == "." or (
        existing is not None and _is_dir_in_root(root, dest_rel))
    target = posixpath.join(dest_rel, src.name) if into_dir else dest_rel
    _make_dirs(root, posixpath.dirname(target) or ".", new_dirs)
    dirfd, name = root.parent_of(target)
    st = os.stat(src.path)
    mode = owner.chmod if owner.chmod is not None else item.mode
    try:
        _write_file(dirfd, name, src.path, mode, item.mtime, owner.of(st))
    finally:
        os.close(dirfd)


MAX_SYMLINKS = 255


def resolve_in_scope(root: RootDir, path: str) -> str:
    """``path`` with every symlink resolved inside the rootfs, docker's FollowSymlinkInScope.

    Classic docker resolves an ADD/COPY destination lexically: a link's target is joined to
    where the link is and ``..`` is applied to the *resolved* path, clamped at ``/``; missing
    components are kept as written (the copy creates them).  So ``/link -> /nonexistent/../../etc``
    is ``etc``, and a link to a path that does not exist yet is followed to that path (the
    kernel, resolving ``/nonexistent/..``, would fail instead).  The final component is
    resolved too: COPY onto a symlink writes where it points, as the classic builder does.
    Returns a symlink-free path relative to the root (``"."`` for the root itself)."""
    todo = [p for p in reversed(path.split("/")) if p not in ("", ".")]
    done: list[str] = []
    followed = 0
    while todo:
        part = todo.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = "/".join(done + [part])
        st = root.lstat(candidate)
        if st is None or not stat.S_ISLNK(st.st_mode):
            done.append(part)
            continue
        followed += 1
        if followed > MAX_SYMLINKS:
            raise LayerError(f"resolve {path}: too many levels of symbolic links")
        dirfd, name = root.parent_of(candidate)
        try:
            target = os.readlink(name, dir_fd=dirfd)
        except OSError as e:
            raise LayerError(f"resolve {path}: readlink {candidate}: {e.strerror}") from e
        finally:
            os.close(dirfd)
        if target.startswith("/"):
            done = []
        todo.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
    return "/".join(done) or "."


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
                tar.members.clear()
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


def _is_dir_in_root(root: RootDir, rel: str) -> bool:
    try:
        os.close(root.open_dir(rel))
        return True
    except LayerError:
        return False


def _write_file(dirfd: int, name: str, src: Path, mode: int | None, mtime: int | None,
                owner: tuple[int, int] = (0, 0)) -> None:
    st = os.stat(src)
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
        with open(src, "rb") as f:
            while chunk := f.read(CHUNK):
                os.write(fd, chunk)
        os.fchown(fd, *owner)
        os.fchmod(fd, stat.S_IMODE(st.st_mode) if mode is None else mode)
        t = st.st_mtime_ns if mtime is None else mtime * 10**9
        os.utime(fd, ns=(t, t))
    finally:
        os.close(fd)


def _copy_tree(root: RootDir, src: Source, dest_rel: str, owner: _Owner, *, created_top: bool) -> None:
    """Merge the contents of directory ``src`` into ``dest_rel`` (which exists).  A dest the
    copy created gets the source directory's mtime; an existing one keeps its own."""
    links: dict[tuple[int, int], str] = {}
    dir_times: list[tuple[str, int]] = []
    top = os.lstat(src.path)
    for rel, full in walk(src):
        target = posixpath.join(dest_rel, rel) if dest_rel != "." else rel
        st = os.lstat(full)
        dirfd, final = root.parent_of(target)
        try:
            if stat.S_ISDIR(st.st_mode):
                _make_dir(dirfd, final, st, owner)
                dir_times.append((target, st.st_mtime_ns))
                continue
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                remove_all(dirfd, final)
                first_dirfd, first_name = root.parent_of(links[key])
                try:
                    os.link(first_name, final, src_dir_fd=first_dirfd, dst_dir_fd=dirfd,
                            follow_symlinks=False)
                finally:
                    os.close(first_dirfd)
                continue
            if stat.S_ISREG(st.st_mode):
                _write_file(dirfd, final, Path(full), owner.mode(st), None, owner.of(st))
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
            os.close(dirfd)
    if created_top:
        dir_times.append((dest_rel, top.st_mtime_ns))
    for rel, mtime in reversed(dir_times):        # children first, so parents keep theirs
        if rel == ".":
            continue
        dirfd, final = root.parent_of(rel)
        try:
            os.utime(final, ns=(mtime, mtime), dir_fd=dirfd, follow_symlinks=False)
        finally:
            os.close(dirfd)


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
