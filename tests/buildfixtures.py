"""Building images in tests: the command-line runner, one context writer and one build runner.

``make_context(dir, spec)`` writes a build context from a table (files with content, mode and
owner, directories, symlinks, hardlinks); ``build(root, context, *args, buildfile=, tag=)`` runs
`pybuild build` through ``pybuild()`` and returns a ``Built`` (the process, the image ID, the
store).  ``writable_copy`` copies an existing context (a conformance case, an example) with
fixed modes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from imagecheck import history_lines, layer_lines, rootfs_lines, validate_image

from builder.store.store import Store, normalize_tag

REPO = Path(__file__).resolve().parents[1]


def pybuild(*args: str, root: Path, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run the real command line (`python -m builder`) against store ``root``."""
    # PYBUILD_PULL=never: a FROM the store lacks must fail here, never reach for docker.io
    # (tests talk to loopback only); registry tests that pull pass their own env
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYBUILD_PULL": "never", **kw.pop("env", {})}
    proc = subprocess.run([sys.executable, "-m", "builder", "--root", str(root), *args],
                          capture_output=True, text=True, env=env, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"pybuild {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


# == contexts ====================================================================================
@dataclass(frozen=True)
class File:
    data: bytes | str = b"hello\n"
    mode: int = 0o644
    owner: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Dir:
    mode: int = 0o755


@dataclass(frozen=True)
class Link:
    target: str                 # the symlink's text, as given (relative, absolute, dangling)


@dataclass(frozen=True)
class Hard:
    target: str                 # a path of the context, made earlier in the spec


#: What a context path may be: bytes or str is a 0644 root-owned file of that content.
Entry = File | Dir | Link | Hard | bytes | str


def make_context(ctx: Path, spec: Mapping[str, Entry] | None = None) -> Path:
    """Create the directory ``ctx`` (0755; it may exist) and each path of ``spec`` under it,
    in the spec's order; missing parents are made as ``mkdir -p`` would.  Returns ``ctx``.

    A file is written whole, then chowned and chmodded (so a mode like 04755 survives the
    chown); a Hard names a path made earlier in the spec."""
    ctx.mkdir(parents=True, exist_ok=True)
    os.chmod(ctx, 0o755)
    for rel, what in (spec or {}).items():
        path = ctx / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(what, (bytes, str)):
            what = File(what)
        match what:
            case File():
                path.write_bytes(what.data.encode() if isinstance(what.data, str) else what.data)
                os.chown(path, *what.owner)
                os.chmod(path, what.mode)
            case Dir():
                path.mkdir(exist_ok=True)
                os.chmod(path, what.mode)
            case Link():
                os.symlink(what.target, path)
            case Hard():
                os.link(ctx / what.target, path)
    return ctx


def writable_copy(src: Path, dst: Path) -> Path:
    """Copy a build context (a conformance case's, an example's) to ``dst`` with fixed modes.

    Modes are part of every layer, and docker recorded the cases from a checkout where
    directories were 0755 and files 0644 or 0755; a checkout's own modes depend on the umask
    it was made under (and ../shared lays its files out read-only).  So every directory
    becomes 0755 and every file 0755 if its owner may execute it, else 0644; symlinks are
    copied as symlinks."""
    shutil.copytree(src, dst, symlinks=True)
    for dirpath, _, filenames in os.walk(dst):     # a symlink to a dir is not walked into
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(path, 0o755 if st.st_mode & stat.S_IXUSR else 0o644)
    return dst


# == builds ======================================================================================
@dataclass
class Built:
    """One `pybuild build`: its process and, read when first asked, its store and image.

    Nothing here opens the store until asked: ``Store()`` sweeps dead builds' staging, and a
    test that checks what a failed build left behind must look before that happens."""
    proc: subprocess.CompletedProcess
    root: Path
    tag: str | None             # as given to -t (normalised when looked up)

    @property
    def ok(self) -> bool:
        return self.proc.returncode == 0

    @cached_property
    def store(self) -> Store:
        return Store(self.root)

    @cached_property
    def image_id(self) -> str | None:
        """What the tag names now, whatever the build's outcome (so a failed build that wrote
        no tag gives None); without a tag, the ID a successful `-q` build printed; else None."""
        if self.tag is not None:
            return self.store.tags().get(normalize_tag(self.tag))
        last = self.proc.stdout.strip().splitlines()[-1:] if self.ok else []
        return last[0] if last and re.fullmatch(r"sha256:[0-9a-f]{64}", last[0]) else None

    def _image(self) -> str:
        assert self.image_id is not None, f"no image to read (exit {self.proc.returncode}):\n" \
                                          f"{self.proc.stdout}\n{self.proc.stderr}"
        return self.image_id

    def config(self) -> dict:
        """The image config, parsed."""
        return json.loads(self.store.image_config(self._image()))

    def layers(self, skip: int = 1) -> list[list[str]]:
        """The conformance-format lines of each layer above the first ``skip`` (the base)."""
        return layer_lines(self.store, self._image(), skip=skip)

    def last_layer(self) -> list[str]:
        return self.layers()[-1]

    def history(self, skip: int = 1) -> list[str]:
        """``layer|empty  created_by`` of each history entry after the first ``skip``."""
        return history_lines(self.store, self._image(), skip=skip)

    def rootfs(self) -> list[str]:
        """The image's root filesystem, all layers applied, in the conformance format."""
        return rootfs_lines(self.store, self._image())


def build(root: Path, context: Path, *args: str, buildfile: str | Path | None = None,
          tag: str | None = None, check: bool = True, validate: bool = True,
          env: Mapping[str, str] | None = None) -> Built:
    """`pybuild --root ROOT build [-f BUILDFILE] [-t TAG] ARGS… CONTEXT`.

    ``buildfile``: None — the context's own (CONTEXT/Buildfile, found without -f); a str — the
    Buildfile's text, written to CONTEXT/../Buildfile and given with -f (beside the context, so
    ``COPY .`` or a wildcard never sees it); a Path — that file, given with -f.
    ``check``: a failed build raises AssertionError with its output, as ``pybuild()`` does.
    ``validate``: after a successful build, the tag (if given) must name an image, and every
    invariant of the built image is checked (imagecheck.validate_image).  This opens the store,
    which sweeps dead builds' staging: pass False where a test checks that itself after a
    successful build.  After a failed build nothing opens the store until the test asks.
    ``env``: extra environment for pybuild (PYBUILD_PULL=never unless given)."""
    if isinstance(buildfile, str):
        path = context.parent / "Buildfile"
        path.write_bytes(buildfile.encode())
        buildfile = path
    argv = ["build", *(("-f", str(buildfile)) if buildfile is not None else ()),
            *(("-t", tag) if tag is not None else ()), *args, str(context)]
    proc = pybuild(*argv, root=root, check=check, env=dict(env or {}))
    built = Built(proc, Path(root), tag)
    if validate and built.ok:
        assert tag is None or built.image_id is not None, f"the build succeeded but {tag} names no image"
        if built.image_id is not None:
            validate_image(built.store, built.image_id)
    return built
