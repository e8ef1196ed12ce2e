"""Snapshotters: what root a layer step runs in, and how what it changed becomes an upper dir.

A layer step (RUN, ADD/COPY, WORKDIR; execute.py ``_layer_step``) asks its snapshotter for a
root (``prepare``), lets its helper mount that root and change it, and then asks for the upper
dir to capture (``finish``): the tar is written from that dir by capture.py whichever
snapshotter made it, and the dir is committed as the layer's.

- ``overlay`` (the default): the union of the image's layer dirs with a fresh upper dir; the
  kernel writes the upper dir while the step runs.  RUN gets the init layer (sandbox.py).
- ``copy``: one working root per build, a plain directory holding the whole image (workroot.py),
  bound as the step's root; after the step a walk is compared with the one before it
  (snapshot.py) and the changed entries are written as the upper dir overlay would have made
  (copyup.py).  For where overlay cannot be mounted; chosen automatically then, with a note.

Choosing: ``--snapshotter`` / ``$PYBUILD_SNAPSHOTTER`` (``overlay``, ``copy`` or ``auto``, the
default); ``auto`` tries an overlay mount once per build, at the first step that runs (a cached
build never does), and takes the copy snapshotter if that fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from builder.build.log import BuildLog
from builder.build.state import SNAPSHOTTERS
from builder.errors import UsageError
from builder.layer import copyup, probe, sandbox, snapshot, workroot
from builder.layer.overlay import OverlayMount
from builder.layer.rootmount import BindRoot, RootMount
from builder.layer.stack import LayerStack
from builder.store.store import Store

ENV = "PYBUILD_SNAPSHOTTER"


@dataclass(frozen=True)
class StepRoot:
    """The root one step runs in.  ``write_dir``: where files the step needs beside its command
    go before it runs (a heredoc script), seen at the root's top; ``upper``: the dir the layer
    is captured from, once ``finish`` returned."""

    mount: RootMount
    write_dir: Path
    upper: Path


class Snapshotter(Protocol):
    name: str
    #: files may be written straight into the upper dir once the helper is gone (overlay's:
    #: build/copyreuse.py); the copy snapshotter's upper dir is made from the working root
    writes_upper: bool

    def prepare(self, chain: tuple[str, ...], step_dir: Path) -> StepRoot:
        """A root holding the layers ``chain`` (base first), for a step working in ``step_dir``."""
        ...

    def for_run(self, root: StepRoot, stack: LayerStack, step_dir: Path) -> RootMount:
        """``root`` with the RUN sandbox's mount points (and their files in ``step_dir``)."""
        ...

    def finish(self, root: StepRoot) -> Path:
        """After the step's helper is gone: the upper dir to capture."""
        ...

    def advance(self, chain: tuple[str, ...]) -> None:
        """The step was committed: the root now holds ``chain``."""
        ...

    def discard(self) -> None:
        """The step failed: what the root holds is unknown."""
        ...


def requested(option: str | None) -> str:
    """``--snapshotter``, else $PYBUILD_SNAPSHOTTER, else ``auto``; UsageError for another name."""
    name = option or os.environ.get(ENV) or "auto"
    if name not in SNAPSHOTTERS:
        raise UsageError(f"unknown snapshotter {name!r} (${ENV} or --snapshotter): "
                         f"use one of {', '.join(SNAPSHOTTERS)}")
    return name


def choose(store: Store, option: str | None, scratch: Callable[[], Path], log: BuildLog) -> Snapshotter:
    """The build's snapshotter (see the module docstring); a note when ``auto`` falls back."""
    name = requested(option)
    if name == "auto":
        problem = overlay_problem(store)
        if problem:
            log.warn(f"overlay cannot be mounted here ({problem}): using the copy snapshotter, which "
                     f"makes the same layers, more slowly")
            name = "copy"
        else:
            name = "overlay"
    return CopySnapshotter(store, scratch) if name == "copy" else OverlaySnapshotter(store)


def overlay_problem(store: Store) -> str:
    """Why a writable overlay cannot be mounted for this store ("" if it can)."""
    scratch = store.scratch_dir("probe")
    try:
        return probe.overlay_problem(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def snapshotter_in_use(store: Store | None, option: str | None = None) -> str:
    """What a build with ``--snapshotter option`` would use here, for people (``pybuild info``):
    ``overlay``, ``copy (requested)`` or ``copy (overlay cannot be mounted: …)``.  Without a
    store (none created yet), overlay is tried in a temporary directory instead."""
    name = requested(option)
    if name != "auto":
        return f"{name} (requested)"
    if store is not None:
        problem = overlay_problem(store)
    else:
        with tempfile.TemporaryDirectory(prefix="pybuild-probe-") as scratch:
            problem = probe.overlay_problem(Path(scratch))
    return f"copy (overlay cannot be mounted: {problem})" if problem else "overlay"


class OverlaySnapshotter:
    """Each step over the union of its layer dirs with a fresh upper dir."""

    name = "overlay"
    writes_upper = True

    def __init__(self, store: Store) -> None:
        self.store = store

    def prepare(self, chain: tuple[str, ...], step_dir: Path) -> StepRoot:
        for sub in ("upper", "work", "merged", "empty"):
            (step_dir / sub).mkdir()
        rel = os.path.relpath(step_dir, self.store.root)
        lowers = tuple(self.store.short_layer_path(c) for c in reversed(chain)) or (f"{rel}/empty",)
        mount = OverlayMount(lowers=lowers, upper=f"{rel}/upper", work=f"{rel}/work",
                             target=str(step_dir / "merged"), cwd=str(self.store.root))
        return StepRoot(mount, step_dir / "upper", step_dir / "upper")

    def for_run(self, root: StepRoot, stack: LayerStack, step_dir: Path) -> RootMount:
        assert isinstance(root.mount, OverlayMount)
        init = step_dir / "init"
        sandbox.make_init_layer(init, stack, sandbox.host_files())
        return OverlayMount(lowers=(os.path.relpath(init, self.store.root),) + root.mount.lowers,
                            upper=root.mount.upper, work=root.mount.work, target=root.mount.target,
                            cwd=root.mount.cwd, source=root.mount.source, userxattr=root.mount.userxattr)

    def finish(self, root: StepRoot) -> Path:
        return root.upper

    def advance(self, chain: tuple[str, ...]) -> None:
        pass

    def discard(self) -> None:
        pass


class CopySnapshotter:
    """One working root for the build, bound as every step's root; diffs by walking it."""

    name = "copy"
    writes_upper = False

    def __init__(self, store: Store, scratch: Callable[[], Path]) -> None:
        self.store = store
        self.scratch = scratch
        self._root: Path | None = None
        self._chain: tuple[str, ...] | None = None     # what the root holds; None: unknown
        self._before: snapshot.Snapshot = {}
        self._after: snapshot.Snapshot = {}
        self._points: workroot.MountPoints | None = None

    def prepare(self, chain: tuple[str, ...], step_dir: Path) -> StepRoot:
        root = self._sync(chain)
        (step_dir / "merged").mkdir()
        (step_dir / "upper").mkdir()
        return StepRoot(BindRoot(source=str(root), target=str(step_dir / "merged")), root, step_dir / "upper")

    def _sync(self, chain: tuple[str, ...]) -> Path:
        """The working root, made to hold ``chain``: as it is, with the layers it lacks put on
        top, or made again from the base."""
        if self._root is None or self._root.parent != self.scratch():
            self._root, self._chain = self.scratch() / "workroot", None
        if self._chain == chain:
            return self._root
        todo = chain
        if self._chain is not None and chain[:len(self._chain)] == self._chain:
            todo = chain[len(self._chain):]
        else:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root.mkdir(mode=0o755)
        self._chain = None
        for chain_id in todo:
            workroot.apply_layer(self.store.layer_dir(chain_id), self._root)
        self._before = snapshot.take(str(self._root))
        self._chain = chain
        return self._root

    def for_run(self, root: StepRoot, stack: LayerStack, step_dir: Path) -> RootMount:
        sandbox.write_init_files(step_dir, sandbox.host_files())
        self._points = workroot.make_mount_points(root.write_dir)
        snapshot.refresh(str(root.write_dir), self._before, self._points.parents)
        return root.mount

    def finish(self, root: StepRoot) -> Path:
        tree = str(root.write_dir)
        points, self._points = self._points, None
        ours = points.paths if points else set()
        after = snapshot.take(tree, skip=ours)
        before = {rel: e for rel, e in self._before.items() if rel not in ours} if ours else self._before
        changes = snapshot.diff(before, after, content=lambda rel: snapshot.content_digest(tree, rel))
        copyup.write_upper(tree, changes, after, root.upper)
        if points is not None:
            points.remove()
            snapshot.refresh(tree, after, points.touched)
        linked = sorted(rel for rel, e in after.items() if not e.is_dir and e.nlink > 1)
        if linked:
            snapshot.refresh(tree, after, workroot.split_hardlinks(root.write_dir, linked))
        self._after = after
        return root.upper

    def advance(self, chain: tuple[str, ...]) -> None:
        self._before, self._after = self._after, {}
        self._chain = chain

    def discard(self) -> None:
        self._chain = None
        self._points = None
