"""What a ``RUN --mount`` step mounts, made ready on the host (the child mounts it:
layer/runmounts.py).

- **bind** (the default type): ``source`` from the build context (never outside it; what
  .dockerignore leaves out is not there), or from ``from=`` a stage or an image (its
  read-only union).  Read-only unless ``rw``; then writes go to a throw-away upper dir.  A
  bind from the context is part of the step's cache key by content, as a COPY's sources
  are; a bind from an image by the image's ID.
- **cache**: a directory of the store (store/cachemounts.py), kept across builds and shared
  by ``id``; ``from``/``source`` seed it when it is created.  Never part of a key or a layer.
- **tmpfs**: a tmpfs of ``size``.
- **secret**: the bytes of ``--secret id=…`` (a file or an environment variable), as a
  read-only file in a tmpfs private to the step or, with ``env=``, as an environment
  variable of the RUN only.  Never in a layer, the config, the history, the cache key or
  the build output (the log masks the values).
- **ssh**: a socket forwarded to an ``--ssh`` agent (build/sshforward.py); ``SSH_AUTH_SOCK``
  points at the first one.
A missing secret or ssh id fails the step when the mount is ``required``, else the mount is
left out (as BuildKit does).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
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
from builder.errors import ContextError, PybuildError, UsageError
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
                    data = held.enter_context(self._cache(m, ref))
                    mounts.append(RunMount("bind", m.target, source=str(data), readonly=m.readonly))
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
                    upstream = self._ssh(m, ref)
                    if upstream is None:
                        continue
                    listen = work / f"ssh-{n}.sock"
                    held.enter_context(forward(upstream, listen, mode=0o600 if m.mode is None else m.mode,
                                               uid=m.uid or 0, gid=m.gid or 0))
                    mounts.append(RunMount("bind", m.target, source=str(listen), directory=False, readonly=False))
                    if not any(e.startswith("SSH_AUTH_SOCK=") for e in env):
                        env.append(f"SSH_AUTH_SOCK={m.target}")
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
        path = self._without_ignored(source, scratch / "view")
        if m.readonly:
            return RunMount("bind", m.target, source=str(path), directory=source.is_dir)
        if not source.is_dir:                    # a writable copy of a file, thrown away after
            scratch.mkdir(parents=True)
            copy = scratch / "file"
            shutil.copy2(path, copy)
            return RunMount("bind", m.target, source=str(copy), directory=False, readonly=False)
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

    def _without_ignored(self, source: Source, view: Path) -> Path:
        """``source.path``, or for a dir holding entries .dockerignore leaves out a view of
        hard links (copies across filesystems) without them."""
        if not source.is_dir or source.ignore is None:
            return source.path
        kept = walk(source)
        total = sum(len(dirs) + len(files) for _, dirs, files in os.walk(source.path))
        if len(kept) == total:
            return source.path
        view.mkdir(parents=True)
        for rel, full in kept:
            dest = view / rel
            if os.path.isdir(full) and not os.path.islink(full):
                dest.mkdir(exist_ok=True)
                shutil.copystat(full, dest)
                continue
            try:
                os.link(full, dest, follow_symlinks=False)
            except OSError:
                shutil.copy2(full, dest, follow_symlinks=False)
        return view

    def _image(self, m: MountSpec, ref: StepRef) -> str:
        assert m.from_ is not None
        try:
            return self.image_of(m.from_)
        except PybuildError as e:
            raise ref.error(f"--mount from={m.from_}: {e}") from None

    def _cache(self, m: MountSpec, ref: StepRef) -> contextlib.AbstractContextManager[Path]:
        seed = None
        if m.from_ is not None:
            union = image_overlay(self.store, self._image(m, ref), str(self.scratch() / f"seed-{os.getpid()}"))
            inner = m.source or "/"

            def seed(dest: Path) -> None:
                os.makedirs(union.target, exist_ok=True)
                sandbox.call_in_root(union, _copy_out, inner, str(dest))
        return _cache_subdir(self.store, m, seed)

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


@contextlib.contextmanager
def _cache_subdir(store: Store, m: MountSpec, seed: Callable[[Path], None] | None) -> Iterator[Path]:
    """The cache's data dir (or its ``source`` subdir, made if missing), held for the block."""
    with cachemounts.acquire(store, m.id, sharing=m.sharing, mode=m.mode, uid=m.uid, gid=m.gid,
                             seed=seed) as data:
        sub = data / m.source.strip("/") if m.source.strip("/") else data
        sub.mkdir(parents=True, exist_ok=True)
        yield sub


def _copy_out(merged: Path, inner: str, dest: str) -> None:
    """In a helper with an image mounted on ``merged``: copy its ``inner`` tree to ``dest``."""
    with RootDir(merged) as root:
        rel = resolve_in_scope(root, inner)
    src = merged if rel == "." else merged / rel
    if src.is_dir():
        shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True)


def _walk_one(source: Source, index: int) -> list[tuple[str, str]]:
    """sources_checksum's ``walk`` for a single source."""
    return walk(source)


def _throwaway(scratch: Path) -> None:
    for sub in ("upper", "work"):
        (scratch / sub).mkdir(parents=True)
