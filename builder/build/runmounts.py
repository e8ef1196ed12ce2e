"""What a ``RUN --mount`` step mounts, made ready on the host (the child mounts it:
layer/runmounts.py).

- **bind** (the default type): ``source`` from the build context (never outside it; what
  .dockerignore leaves out is not there), or from ``from=`` a stage or an image (its
  read-only union).  Read-only unless ``rw``; then writes go to a throw-away upper dir.  A
  bind from the context is part of the step's cache key by content, as a COPY's sources
  are; a bind from an image by the image's ID.
- **cache**: a directory of the store (store/cachemounts.py), kept across builds and shared
  by ``id`` and base, as BuildKit keys it: an empty dir; with ``mode``/``uid``/``gid`` (and no
  ``source``) a dir made so (BuildKit: ``mkdir /cache`` on scratch); with ``from`` a copy of
  that image's root.  ``source`` is a path inside the cache (resolved inside it: a symlink
  there never leads out) that must exist, as BuildKit's selector.  Never part of a key or a
  layer.
- **tmpfs**: a tmpfs of ``size``.
- **secret**: the bytes of ``--secret id=…`` (a file or an environment variable), as a
  read-only file in a tmpfs private to the step or, with ``env=``, as an environment
  variable of the RUN only.  Never in a layer, the config, the history, the cache key or
  the build output (the log masks the values).
- **ssh**: a socket forwarded to an ``--ssh`` agent (build/sshforward.py); ``SSH_AUTH_SOCK``
  points at the first one's target, whether it is mounted or not (as BuildKit sets it).
A missing secret or ssh id fails the step when the mount is ``required``, else the mount is
left out (as BuildKit does).
"""

from __future__ import annotations

import contextlib
import functools
import os
import posixpath
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from builder.build.log import BuildLog
from builder.build.sshforward import SshAgents, forward
from builder.build.state import BuildOptions, StepRef
from builder.build.steps import RunStep
from builder.buildfile.runmount import MountSpec
from builder.context import dockerignore
from builder.context.checksum import sources_checksum
from builder.context.sources import BuildContext, Source, walk
from builder.errors import ContextError, PybuildError, StoreError, UsageError
from builder.layer import sandbox
from builder.layer.root import RootDir, resolve_in_scope
from builder.layer.runmounts import RunMount
from builder.runtime.mount import image_overlay
from builder.store import cachemounts
from builder.store.filehashes import FileHashes
from builder.store.store import Store


@dataclass(frozen=True)
class SecretSource:
    """One ``--secret``: its id and where the value is (a file, or an environment variable)."""

    id: str
    path: str | None = None
    env: str | None = None

    def value(self) -> bytes:
        if self.env is not None:
            if self.env not in os.environ:
                raise UsageError(f"--secret id={self.id}: environment variable {self.env} is not set")
            return os.environ[self.env].encode("utf-8", "surrogateescape")
        assert self.path is not None
        try:
            return Path(self.path).read_bytes()
        except OSError as e:
            raise UsageError(f"--secret id={self.id}: read {self.path}: {e.strerror}") from e


def parse_secret(value: str) -> SecretSource:
    """``id=ID,src=FILE`` / ``id=ID,env=VAR`` (docker buildx's forms; ``source``, ``type=file|
    env`` too).  ``id=ID`` alone reads the variable ID if it is set, else the file ID."""
    fields = dict(f.partition("=")[::2] for f in value.split(",") if f)
    ident = fields.pop("id", "")
    src = fields.pop("src", None) or fields.pop("source", None)
    env = fields.pop("env", None)
    kind = fields.pop("type", None)
    if not ident or fields or kind not in (None, "file", "env"):
        raise UsageError(f"--secret {value!r}: expected id=ID,src=FILE or id=ID,env=VAR")
    if kind == "env" and src is not None and env is None:
        src, env = None, src
    if src is None and env is None:
        env, src = (ident, None) if ident in os.environ else (None, ident)
    return SecretSource(ident, src, env)


@dataclass(frozen=True)
class Prepared:
    mounts: tuple[RunMount, ...]
    env: tuple[str, ...]            # secrets as variables, SSH_AUTH_SOCK


class MountSources:
    """Resolves the mounts of this build's RUN steps.  ``image_of(ref)`` is an earlier stage's
    or a stored image's ID; ``scratch()`` the build's scratch dir."""

    def __init__(self, store: Store, options: BuildOptions, hashes: FileHashes, log: BuildLog, *,
                 image_of: Callable[[str], str], scratch: Callable[[], Path]) -> None:
        self.store = store
        self.options = options
        self.hashes = hashes
        self.log = log
        self.image_of = image_of
        self.scratch = scratch
        self.secrets = {s.id: s for s in options.secrets}
        self.ssh = SshAgents(options.ssh, scratch())
        self._context: BuildContext | None = None

    def close(self) -> None:
        self.ssh.close()

    def key_inputs(self, step: RunStep, ref: StepRef, files: dict[str, str] | None = None) -> str:
        """What beside the description decides the step: a context bind's content, an
        image bind's image ID.  (A cache's content and a secret's value never do.)  ``files``
        gets each bound context file's digest."""
        parts = []
        for m in step.mounts:
            if m.type == "bind" and m.from_ is None:
                source = self._context_source(m, ref)
                checksum = sources_checksum([(source.rel, source.path)], self.hashes.sha256,
                                            walk=functools.partial(_walk_one, source), entries=files)
                parts.append(f"bind {m.target} {checksum}")
            elif m.type == "bind" and m.from_ is not None:
                parts.append(f"bind {m.target} from {self._image(m, ref)}")
        return "\n".join(parts)

    @contextlib.contextmanager
    def prepare(self, step: RunStep, ref: StepRef, step_dir: Path) -> Iterator[Prepared]:
        """The mounts of ``step``, held ready for the block (cache locks, ssh forwarders)."""
        work = step_dir / "mounts"
        work.mkdir(exist_ok=True)
        mounts: list[RunMount] = []
        env: list[str] = []
        with contextlib.ExitStack() as held:
            for n, m in enumerate(step.mounts):
                if m.type == "bind":
                    mounts.append(self._bind(m, ref, work / f"bind-{n}"))
                elif m.type == "cache":
                    mounts.append(held.enter_context(self._cache(m, ref)))
                elif m.type == "tmpfs":
                    mounts.append(RunMount("tmpfs", m.target, size=m.size))
                elif m.type == "secret":
                    secret = self._secret(m, ref)
                    if secret is None:
                        continue
                    self.log.mask(secret)
                    if m.env is not None:
                        env.append(f"{m.env}={secret.decode('utf-8', 'surrogateescape')}")
                    if m.target:
                        mounts.append(RunMount("secret", m.target, directory=False, data=secret,
                                               mode=0o400 if m.mode is None else m.mode, uid=m.uid or 0,
                                               gid=m.gid or 0))
                elif m.type == "ssh":
                    if not any(e.startswith("SSH_AUTH_SOCK=") for e in env):
                        env.append(f"SSH_AUTH_SOCK={m.target}")    # BuildKit: even when absent
                    upstream = self._ssh(m, ref)
                    if upstream is None:
                        continue
                    listen = work / f"ssh-{n}.sock"
                    held.enter_context(forward(upstream, listen, mode=0o600 if m.mode is None else m.mode,
                                               uid=m.uid or 0, gid=m.gid or 0))
                    mounts.append(RunMount("bind", m.target, source=str(listen), directory=False, readonly=False))
            yield Prepared(tuple(mounts), tuple(env))

    # -- each type -------------------------------------------------------------------------
    def _bind(self, m: MountSpec, ref: StepRef, scratch: Path) -> RunMount:
        if m.from_ is not None:
            union = image_overlay(self.store, self._image(m, ref), "/")
            if m.readonly:
                return RunMount("bind", m.target, source=m.source or "/", image=union)
            _throwaway(scratch)
            return RunMount("overlay", m.target, source=m.source or "/", image=union, scratch=str(scratch))
        source = self._context_source(m, ref)
        path = _context_view(source, scratch / "view", private=not m.readonly and not source.is_dir)
        if m.readonly:
            return RunMount("bind", m.target, source=str(path), directory=source.is_dir)
        if not source.is_dir:                    # a private copy, thrown away after
            return RunMount("bind", m.target, source=str(path), directory=False, readonly=False)
        _throwaway(scratch)
        return RunMount("overlay", m.target, source=str(path), scratch=str(scratch))

    def _context_source(self, m: MountSpec, ref: StepRef) -> Source:
        if self._context is None:
            self._context = BuildContext(self.options.context,
                                         ignore=dockerignore.load(self.options.buildfile, self.options.context))
        try:
            return self._context.path(m.source)
        except ContextError as e:
            raise ref.error(f"--mount=type=bind,source={m.source or '.'}: {e}") from None

    def _image(self, m: MountSpec, ref: StepRef) -> str:
        assert m.from_ is not None
        try:
            return self.image_of(m.from_)
        except PybuildError as e:
            raise ref.error(f"--mount from={m.from_}: {e}") from None

    @contextlib.contextmanager
    def _cache(self, m: MountSpec, ref: StepRef) -> Iterator[RunMount]:
        """The cache's mount, its lock held for the block (see the module docstring)."""
        inner = posixpath.normpath("/" + m.source).strip("/")       # BuildKit: path.Join("/", src)
        base: list[str] = []
        seeds: list[Callable[[Path], None]] = []
        if m.from_ is not None:
            image = self._image(m, ref)
            base.append(f"from {image}")
            seeds.append(functools.partial(self._copy_image, image))
        if not inner and (m.mode, m.uid, m.gid) != (None, None, None):
            mode, uid, gid = 0o755 if m.mode is None else m.mode, m.uid or 0, m.gid or 0
            base.append(f"mkdir /cache {mode:04o} {uid}:{gid}")
            seeds.append(functools.partial(_mkdir, "cache", mode, uid, gid))
            inner = "cache"

        def seed(dest: Path) -> None:
            for fill in seeds:
                fill(dest)

        with cachemounts.acquire(self.store, m.id, sharing=m.sharing, base=", ".join(base),
                                 seed=seed if seeds else None) as data:
            st = _lstat_in(data, inner)
            if st is None:
                where = f"the image {m.from_}" if m.from_ is not None else f"cache {m.id}"
                raise ref.error(f"--mount=type=cache,source={m.source}: {m.source} does not exist in {where} "
                                f"(a cache mount's source is a path inside the cache)")
            yield RunMount("bind", m.target, source=str(data), inner=inner, directory=stat.S_ISDIR(st.st_mode),
                           readonly=m.readonly)

    def _copy_image(self, image: str, dest: Path) -> None:
        """Copy the root of ``image`` into ``dest`` (a new cache's data dir)."""
        union = image_overlay(self.store, image, str(self.scratch() / f"seed-{os.getpid()}"))
        os.makedirs(union.target, exist_ok=True)
        sandbox.call_in_root(union, _copy_out, str(dest))

    def _secret(self, m: MountSpec, ref: StepRef) -> bytes | None:
        source = self.secrets.get(m.id)
        if source is None:
            if m.required:
                raise ref.error(f"secret {m.id} is required but was not given "
                                f"(pybuild build --secret id={m.id},src=FILE or id={m.id},env=VAR)")
            return None
        return source.value()

    def _ssh(self, m: MountSpec, ref: StepRef) -> str | None:
        upstream = self.ssh.socket_of(m.id)
        if upstream is None and m.required:
            raise ref.error(f"ssh agent {m.id} is required but was not given (pybuild build --ssh {m.id}[=PATH])")
        return upstream


def _mkdir(rel: str, mode: int, uid: int, gid: int, data: Path) -> None:
    """In a new cache: make ``rel`` with ``mode``, ``uid`` and ``gid`` (BuildKit's mkdir of
    ``/cache``; one already there, from a ``from`` image, is given them)."""
    with RootDir(data) as root:
        os.close(root.open_dir(rel, create=True, mode=mode))
        dirfd, name = root.parent_of(rel)
        try:
            os.chown(name, uid, gid, dir_fd=dirfd, follow_symlinks=False)
            os.chmod(name, mode, dir_fd=dirfd, follow_symlinks=False)
        finally:
            os.close(dirfd)


def _lstat_in(data: Path, inner: str) -> os.stat_result | None:
    """lstat of ``inner`` resolved inside ``data`` (symlinks clamped in it), or None."""
    with RootDir(data) as root:
        rel = resolve_in_scope(root, inner) if inner else "."
        return root.lstat(rel)


def _copy_out(merged: Path, dest: str) -> None:
    """In a helper with an image mounted on ``merged``: copy its whole tree into ``dest``
    (``cp -a``: hard links, fifos and devices as they are)."""
    proc = subprocess.run(["cp", "-a", "--", f"{merged}/.", dest], capture_output=True, text=True)
    if proc.returncode != 0:
        raise StoreError(f"seed cache mount: cp: {proc.stderr.strip()}")


def _context_view(source: Source, view: Path, *, private: bool) -> Path:
    """``source`` as a RUN sees it: what docker sends BuildKit of the context, every entry
    owned by 0:0 (docker's client resets owners), modes and times kept, without what
    .dockerignore leaves out.  That is ``source.path`` itself when it already looks so and
    ``private`` is not asked; else a copy made in ``view`` (hard links to files when only
    the ignored entries had to go)."""
    if not source.is_dir:
        st = os.stat(source.path)
        if not private and (st.st_uid, st.st_gid) == (0, 0):
            return source.path
        view.mkdir(parents=True)
        copy = view / "file"
        shutil.copy2(source.path, copy)
        _own_by_root(copy, st.st_mode)
        return copy
    kept = walk(source)
    total = sum(len(dirs) + len(files) for _, dirs, files in os.walk(source.path))
    owned = all(_root_owned(p) for p in [str(source.path), *(full for _, full in kept)])
    if owned and len(kept) == total:
        return source.path
    view.mkdir(parents=True)
    dirs = [(view, os.stat(source.path))]
    for rel, full in kept:
        dest, st = view / rel, os.lstat(full)
        if stat.S_ISDIR(st.st_mode):
            dest.mkdir()
            dirs.append((dest, st))
            continue
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(full), dest)
        elif stat.S_ISREG(st.st_mode) and owned:
            try:
                os.link(full, dest)
            except OSError:
                shutil.copy2(full, dest)
        elif stat.S_ISREG(st.st_mode):
            shutil.copy2(full, dest)
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(dest)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            os.mknod(dest, st.st_mode, st.st_rdev)
        else:
            continue                                 # a socket: docker sends none
        _own_by_root(dest, st.st_mode)
        if not stat.S_ISLNK(st.st_mode) and not stat.S_ISREG(st.st_mode):
            os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
    for dest, st in reversed(dirs):                  # children first: their writes set mtimes
        _own_by_root(dest, st.st_mode)
        os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
    return view


def _root_owned(path: str) -> bool:
    st = os.lstat(path)
    return (st.st_uid, st.st_gid) == (0, 0)


def _own_by_root(path: Path, mode: int) -> None:
    """chown 0:0, then the mode again (a chown clears setuid and setgid)."""
    os.chown(path, 0, 0, follow_symlinks=False)
    if not stat.S_ISLNK(mode):
        os.chmod(path, stat.S_IMODE(mode))


def _walk_one(source: Source, index: int) -> list[tuple[str, str]]:
    """sources_checksum's ``walk`` for a single source."""
    return walk(source)


def _throwaway(scratch: Path) -> None:
    for sub in ("upper", "work"):
        (scratch / sub).mkdir(parents=True)
