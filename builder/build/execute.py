"""Carrying out step descriptions: the cache front, config steps, and layer steps (mount the
union over the current layers, run or copy, capture the upper dir, commit the layer).

Every method takes the state before a step and returns the state after it.  The cache key
of a step is sha256(the config digest of the image before it, the description's canonical
JSON, what else decides the result); a hit gives the config the step produced before, and
the description alone gives the rest of the state (ARG values, CMD set, maintainer).
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.build import cachemiss
from builder.build.log import BuildLog
from builder.build.state import BuildOptions, State, StepRef
from builder.build.steps import ConfigStep, CopyStep, RunStep, Step, WorkdirStep, canonical
from builder.errors import ImageNotFound, LayerError, RegistryError, StoreError
from builder.inspect.table import human_size
from builder.oci import config as img
from builder.oci.config import History, ImageConfig
from builder.oci.digest import EMPTY_LAYER_DIFF_ID, EMPTY_TAR, chain_id, chain_ids, sha256_bytes, short_id
from builder.store.cache import BuildCache, step_key
from builder.store.filehashes import FileHashes
from builder.store.store import Store

if TYPE_CHECKING:       # imported where a step really runs: a cached build never needs them
    from builder.build import explain
    from builder.build.copysources import CopyJob
    from builder.build.runmounts import MountSources, Prepared
    from builder.build.snapshotter import Snapshotter, StepRoot
    from builder.layer.rootmount import RootMount
    from builder.layer.stack import LayerStack
    from builder.registry.remote_cache import RemoteCache


@dataclass(frozen=True)
class Captured:
    """What a layer step's upper dir became: the tar's diffID and size (empty layer or not)."""

    diff_id: str
    size: int


class Executor:
    """Executes the steps of one build in ``scratch()``, the build's scratch dir."""

    def __init__(self, store: Store, options: BuildOptions, log: BuildLog,
                 scratch: Callable[[], Path], image_of: Callable[[str], str]) -> None:
        self.store = store
        self.options = options
        self.log = log
        self.scratch = scratch
        self.cache = BuildCache(store)
        self.hashes = FileHashes(store, options.context)
        self.step_keys: list[str] = []             # every cached step's key, in build order
        self.explanations: list[explain.StepExplanation] = []
        self._remotes: list[RemoteCache] | None = None   # --cache-from caches, opened on a miss
        self.image_of = image_of                   # a stage or stored image → its image ID
        self.records: list[cachemiss.StepRecord] = []      # what each step's key was made of
        self.record_path: Path | None = None       # where this image's build records are
        self.previous: cachemiss.Builds | None = None   # earlier builds, newest first (read on a miss)
        self.hits = 0                              # steps served from the cache (or that would be)
        self.rerun: int | None = None              # the first step that ran
        self._mounts: MountSources | None = None   # RUN --mount sources, made on first use
        self._snap: Snapshotter | None = None       # chosen at the first step that runs

    # -- FROM ------------------------------------------------------------------------------
    def load_base(self, ref: str) -> State:
        """The state after ``FROM ref``: a stored image (with docker's default PATH added),
        pulled first when the store lacks it and ``--pull`` allows."""
        if ref == "scratch":
            cfg = img.empty_config()
            epoch = self.options.source_date_epoch
            return State(config=cfg if epoch is None else replace(cfg, created=img.rfc3339_of(epoch)))
        image_id = None
        if self.options.pull != "always":
            try:
                image_id = self.store.resolve(ref)
            except ImageNotFound:
                if self.options.pull == "never":
                    raise ImageNotFound(f"base image {ref} is not in the store (create it with "
                                        f"`pybuild import`, `pybuild load` or `pybuild pull`)") from None
        if image_id is None:
            image_id = self._pull(ref)
        cfg = img.ensure_default_path(img.parse_config(self.store.image_config(image_id)))
        chain = tuple(chain_ids(cfg.diff_ids))
        for cid in chain:
            if not self.store.has_layer(cid):
                raise StoreError(f"base image {ref}: layer {cid} is missing from the store")
        return State(config=cfg, chain=chain)

    def _pull(self, ref: str) -> str:
        # start-up: a cached build never imports what only a running step needs
        from builder.registry.pull import pull
        self.log.note(f"pulling {ref}")
        try:
            return pull(self.store, ref, insecure=self.options.insecure, bar=self.log.bar).image_id
        except RegistryError as e:
            raise ImageNotFound(f"base image {ref} is not in the store and pulling it failed: {e}") from None

    # -- config-only steps -----------------------------------------------------------------
    def config(self, state: State, step: ConfigStep, ref: StepRef) -> State:
        """A new RunConfig and an empty_layer history entry (docker's ``#(nop)`` steps)."""
        after = state
        if step.cmd_set is not None:
            after = replace(after, cmd_set=step.cmd_set)
        if step.maintainer is not None:
            after = replace(after, maintainer=step.maintainer)
        if step.args is not None:
            after = replace(after, args=step.args)

        def produce() -> ImageConfig:
            if self.options.explain:
                # start-up: only --explain describes steps
                from builder.build import explain
                self.explanations.append(explain.StepExplanation(
                    number=ref.number, total=ref.total, instruction=ref.original, kind="config",
                    config_change=explain.config_change(state.run_config, step.run_config),
                    created_by=step.created_by))
            cfg = replace(state.config, config=step.run_config, author=after.maintainer)
            return cfg.with_history(History(created_by=step.created_by, created=self._now(),
                                            empty_layer=True, author=after.maintainer))
        return self._cached(after, step, produce, ref)

    # -- layer steps -----------------------------------------------------------------------
    def run(self, state: State, step: RunStep, ref: StepRef) -> State:
        """RUN: execute the command over the union; capture what it changed."""
        def action(root: StepRoot, step_dir: Path) -> RootMount:
            # start-up: a cached build never imports what only a running step needs
            from builder.layer import sandbox, userns
            mount = self._snapshotter().for_run(root, self._stack(state), step_dir)
            hostname = secrets.token_hex(6)     # docker uses the container's short id
            script = root.write_dir / step.script.path.lstrip("/") if step.script else None
            if script is not None and step.script is not None:   # removed before the capture
                script.write_bytes(step.script.body)
                script.chmod(0o755)
            env = step.env
            if state.run_config.env_get("HOSTNAME") is None:
                env += (f"HOSTNAME={hostname}",)
            with self._prepared_mounts(step, ref, step_dir) as prepared:
                spec = sandbox.RunSpec(argv=step.argv, env=env + prepared.env,
                                       workdir=state.run_config.working_dir or "/", user=state.run_config.user,
                                       hostname=hostname, mounts=prepared.mounts, network=step.network)
                tail = _Tail(self.log.output)
                code = sandbox.run(mount, spec, tail, files_dir=step_dir)
            self.log.end_output()
            if script is not None:
                script.unlink(missing_ok=True)
            if code != 0:
                raise ref.error(f"exit code {code}{userns.run_failure_hint(tail.data)}", exit_code=code)
            return mount
        files: dict[str, str] = {}
        inputs = self._mount_sources().key_inputs(step, ref, files) if step.mounts else ""
        def produce() -> ImageConfig:
            # start-up: only a RUN that runs needs its notes
            from builder.build.explain import run_notes
            return self._layer_step(state, step.created_by, action, ref, run_notes(step))
        return self._cached(state, step, produce, ref, inputs=inputs, files=files)

    def _mount_sources(self) -> MountSources:
        if self._mounts is None:
            # start-up: a cached build never imports what only a running step needs
            from builder.build.runmounts import MountSources
            self._mounts = MountSources(self.store, self.options, self.hashes, self.log,
                                        image_of=self.image_of, scratch=self.scratch)
        return self._mounts

    def _prepared_mounts(self, step: RunStep, ref: StepRef, step_dir: Path) -> AbstractContextManager[Prepared]:
        if not step.mounts:
            # start-up: a cached build never imports what only a running step needs
            from builder.build.runmounts import Prepared
            return nullcontext(Prepared((), ()))
        return self._mount_sources().prepare(step, ref, step_dir)

    def close(self) -> None:
        """Stop what the build started for its steps (ssh agents)."""
        if self._mounts is not None:
            self._mounts.close()

    def workdir(self, state: State, step: WorkdirStep, ref: StepRef) -> State:
        """WORKDIR: create the directory (a layer if that changed anything), set the config."""
        # start-up: a cached build never imports what only a running step needs
        from builder.context.copy import make_workdir
        after = self._cached(state, step, lambda: self._in_root(state, step.created_by, ref,
                                                                make_workdir, step.path), ref)
        rc = replace(after.run_config, working_dir=step.path)
        return replace(after, config=replace(after.config, config=rc))

    def copy(self, state: State, step: CopyStep, job: CopyJob, ref: StepRef) -> State:
        """ADD/COPY: ``job`` (see copysources.py) run in a helper on the step's root."""
        def produce() -> ImageConfig:
            if job.leaves_files and self._snapshotter().writes_upper:
                return self._copy_layer(state, step, job, ref)
            return self._in_root(state, job.created_by, ref, job.fn, *job.args)
        return self._cached(state, step, produce, ref, inputs=job.inputs, files=job.files)

    def _copy_layer(self, state: State, step: CopyStep, job: CopyJob, ref: StepRef) -> ImageConfig:
        """A copy of a context directory: the helper leaves its new files, which are then
        written into the upper dir here, unchanged ones linked from the step's previous layer
        (copyreuse.py)."""
        # start-up: a cached build never imports what only a running step needs
        from builder.build.copyreuse import LayerReuse, memo_key
        from builder.context.copy import finish_copy
        from builder.layer import sandbox
        reuse = LayerReuse(self.store, self.hashes, memo_key(self.image_id_of(state.config), canonical(step)))

        def action(root: StepRoot, step_dir: Path) -> RootMount:
            leftover = sandbox.call_in_root(root.mount, partial(job.fn, upper=root.upper), *job.args)
            if leftover is not None:
                finish_copy(root.upper, leftover, reuse.offer)
            return root.mount
        try:
            cfg = self._layer_step(state, job.created_by, action, ref)
        finally:
            reuse.close()
        made = len(cfg.diff_ids) > len(state.config.diff_ids)
        reuse.remember(chain_ids(cfg.diff_ids)[-1] if made else None)
        return cfg

    def _in_root(self, state: State, created_by: str, ref: StepRef, fn: Callable[..., Any],
                 *args: Any) -> ImageConfig:
        # start-up: a cached build never imports what only a running step needs
        from builder.layer import sandbox

        def action(root: StepRoot, step_dir: Path) -> RootMount:
            sandbox.call_in_root(root.mount, fn, *args)
            return root.mount
        return self._layer_step(state, created_by, action, ref)

    # -- the cache front -------------------------------------------------------------------
    def _cached(self, state: State, step: Step, produce: Callable[[], ImageConfig], ref: StepRef, *,
                inputs: str = "", files: dict[str, str] | None = None) -> State:
        """Serve the step from the cache, or produce its config and record it.  ``state`` is
        the state after the step but for its config and layers.  ``files`` (path → digest) are
        what the inputs were made of, for saying why a step missed."""
        description = canonical(step)
        definition = description + ("\n" + inputs if inputs else "")
        if self.options.source_date_epoch is not None:
            definition += f"\nSOURCE_DATE_EPOCH={self.options.source_date_epoch}"
        parent = self.image_id_of(state.config)
        key = step_key(parent, definition)
        self.step_keys.append(key)
        record = cachemiss.StepRecord(ref.number, ref.original, parent, description, dict(state.args),
                                      files or {}, inputs if not files else "")
        self.records.append(record)
        hit = None if self.options.no_cache else self.cache.lookup(key)
        if hit is None and not self.options.no_cache and any(remote.fetch(key) for remote in self._remote_caches()):
            hit = self.cache.lookup(key)                # the layers came from --cache-from
        if hit is not None and not self.options.explain:
            self.log.note("Using cache")
            self.hits += 1
            return self._with_config(state, img.parse_config(hit))
        if hit is not None:                             # --explain runs it anyway, to show how
            self.hits += 1
            verdict = "hit (a build without --explain takes it from the cache)"
        else:
            if self.rerun is None:
                self.rerun = ref.number
            verdict = "miss: " + self._miss_reason(record) if self.options.explain else "miss"
        before = len(self.explanations)
        cfg = produce()
        for i in range(before, len(self.explanations)):
            self.explanations[i] = replace(self.explanations[i], cache=verdict)
        if hit is not None:       # explained, but the build goes on from the cached result, so
            return self._with_config(state, img.parse_config(hit))   # later keys stay the same
        self.cache.record(key, img.config_bytes(cfg))
        return self._with_config(state, cfg)

    def _miss_reason(self, record: cachemiss.StepRecord) -> str:
        path = self.record_path
        if self.previous is None:
            self.previous = cachemiss.load(path) if path is not None else []
        return cachemiss.reason(record, cachemiss.closest(record, self.previous), no_cache=self.options.no_cache,
                                rerun=self.rerun,
                                files_of=lambda r: cachemiss.load_files(path, r) if path is not None else r.files)

    @staticmethod
    def _with_config(state: State, cfg: ImageConfig) -> State:
        """``state`` with config ``cfg`` and the chain IDs of its layers."""
        same = cfg.diff_ids == state.config.diff_ids
        return replace(state, config=cfg, chain=state.chain if same else tuple(chain_ids(cfg.diff_ids)))

    def _remote_caches(self) -> list[RemoteCache]:
        if not self.options.cache_from:
            return []
        if self._remotes is None:
            # start-up: a cached build never imports what only a running step needs
            from builder.registry.remote_cache import RemoteCache
            self._remotes = [RemoteCache(self.store, ref, insecure=self.options.insecure, warn=self.log.warn)
                             for ref in self.options.cache_from]
        return self._remotes

    # -- mount, act, capture, commit ---------------------------------------------------------
    def _layer_step(self, state: State, created_by: str, action: Callable[[StepRoot, Path], RootMount],
                    ref: StepRef, notes: tuple[str, ...] = ()) -> ImageConfig:
        """Give ``action`` a root holding ``state``'s layers (the snapshotter's: an overlay
        union with a fresh upper dir, or the copy snapshotter's working root), capture the upper
        dir of what it changed and commit it as a layer (none if it is empty)."""
        snapshotter = self._snapshotter()
        step_dir = self.scratch() / f"step-{secrets.token_hex(4)}"
        step_dir.mkdir()
        try:
            root = snapshotter.prepare(state.chain, step_dir)
            used = action(root, step_dir)
            upper = snapshotter.finish(root)
            seen = self._explain_upper(state, upper) if self.options.explain else ()
            cfg, captured = self._commit_upper(state, upper, step_dir / "layer.tar", created_by)
            snapshotter.advance(tuple(chain_ids(cfg.diff_ids)))
            if self.options.explain:
                self._record(state, cfg, captured, used, seen, created_by, ref, notes)
            return cfg
        except BaseException:
            snapshotter.discard()
            raise
        finally:
            shutil.rmtree(step_dir, ignore_errors=True)

    def _snapshotter(self) -> Snapshotter:
        if self._snap is None:
            # start-up: a cached build never chooses one (choosing may mount a probe)
            from builder.build.snapshotter import choose
            self._snap = choose(self.store, self.options.snapshotter, self.scratch, self.log)
        return self._snap

    def _commit_upper(self, state: State, upper: Path, tar_path: Path,
                      created_by: str) -> tuple[ImageConfig, Captured]:
        # start-up: a cached build never imports what only a running step needs
        from builder.layer.capture import capture
        try:
            with open(tar_path, "wb") as out, self.log.bar("capturing layer") as done:
                cap = capture(upper, out, on_progress=done,
                              mtime_clamp=self.options.source_date_epoch)
        except OSError as e:      # closing the tar flushes it: a full disk can show up only here
            raise LayerError(f"write the layer tar: {e.strerror}") from e
        history = History(created_by=created_by, created=self._now(), author=state.maintainer)
        base = replace(state.config, author=state.maintainer)
        if cap.diff_id == EMPTY_LAYER_DIFF_ID:
            return base.with_history(replace(history, empty_layer=True)), Captured(cap.diff_id, cap.size)
        parent = state.chain[-1] if state.chain else None
        self.store.commit_layer(chain_id=chain_id(parent, cap.diff_id), diff_id=cap.diff_id, parent=parent,
                                unpacked=upper, tar_path=tar_path, size=cap.size)
        self.log.note(f"layer {short_id(cap.diff_id)} ({human_size(cap.size)}, {len(cap.entries)} entries)")
        return base.with_layer(cap.diff_id, history), Captured(cap.diff_id, cap.size)

    # -- --explain ---------------------------------------------------------------------------
    def _explain_upper(self, state: State, upper: Path) -> tuple[explain.UpperEntry, ...]:
        # start-up: only --explain describes steps
        from builder.build import explain
        stack = self._stack(state)
        return tuple(explain.upper_entries(upper, lambda rel: stack.lookup(rel) is not None))

    def _record(self, before: State, after: ImageConfig, captured: Captured, mount: RootMount,
                entries: tuple[explain.UpperEntry, ...], created_by: str, ref: StepRef,
                notes: tuple[str, ...]) -> None:
        # start-up: only --explain describes steps
        from builder.build import explain
        roles = {self.store.short_layer_path(c): f"layer {i}: {short_id(d)}"
                 for i, (c, d) in enumerate(zip(before.chain, before.config.diff_ids))}
        lowers = tuple(explain.LowerDir(p, roles.get(p, "init layer: mount points for the sandbox"
                                                     if p.endswith("/init") else "empty dir: no layers yet"))
                       for p in mount.lowers)
        made = len(after.diff_ids) > len(before.config.diff_ids)
        chain = chain_ids(after.diff_ids)
        self.explanations.append(explain.StepExplanation(
            number=ref.number, total=ref.total, instruction=ref.original,
            kind="layer" if made else "empty layer", lowers=lowers, upper=mount.upper or "",
            options=mount.options, entries=entries,
            diff_id=captured.diff_id if made else EMPTY_LAYER_DIFF_ID,
            tar_size=captured.size if made else len(EMPTY_TAR),
            parent_chain=before.chain[-1] if before.chain and made else None,
            chain_id=chain[-1] if made else "", created_by=created_by, notes=notes))

    # -- helpers ---------------------------------------------------------------------------
    def image_id_of(self, cfg: ImageConfig) -> str:
        return sha256_bytes(img.config_bytes(cfg))

    def commit_image(self, state: State) -> str:
        return self.store.put_config(img.config_bytes(state.config), state.config.diff_ids)

    def _now(self) -> str:
        epoch = self.options.source_date_epoch
        return img.now_rfc3339() if epoch is None else img.rfc3339_of(epoch)

    def _stack(self, state: State) -> LayerStack:
        # start-up: a cached build never imports what only a running step needs
        from builder.layer.stack import LayerStack
        return LayerStack(tuple(self.store.layer_dir(c) for c in reversed(state.chain)))


class _Tail:
    """Passes a RUN's output on and keeps its last few KiB (for the error's hint)."""

    KEEP = 4096

    def __init__(self, on_output: Callable[[bytes], None]) -> None:
        self.on_output = on_output
        self.data = b""

    def __call__(self, chunk: bytes) -> None:
        self.on_output(chunk)
        self.data = (self.data + chunk)[-self.KEEP:]
