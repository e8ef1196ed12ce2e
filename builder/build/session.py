"""The build orchestrator: Buildfile → steps → layers and config → a stored, tagged image.

Handlers (dispatch.py, one per instruction) decide *what* a step does; this module owns the
effects they share: mounting the union over the current layers, capturing the upper dir as a
layer, committing it to the store, and recording history.  No format logic lives here.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.oci import config as img
from builder.buildfile.instructions import Buildfile
from builder.build.log import BuildLog, human_size
from builder.oci.digest import EMPTY_LAYER_DIFF_ID, EMPTY_TAR, chain_id, chain_ids, sha256_bytes
from builder.errors import ImageNotFound, StepError, StoreError
from builder.oci.config import History, ImageConfig
from builder.store.cache import BuildCache, FileHashes, step_key
from builder.store.store import Store

if TYPE_CHECKING:       # imported where a step really runs: a cached build never needs them
    from builder.build.dispatch import stage as stages_t
    from builder.build import explain
    from builder.layer.overlay import OverlayMount
    from builder.layer.stack import LayerStack


@dataclass(frozen=True)
class BuildOptions:
    buildfile: Path
    context: Path
    tags: tuple[str, ...] = ()
    no_cache: bool = False        # run every step (results are still recorded in the cache)
    explain: str | None = None    # "text" or "json": record how every step became a layer
    source_date_epoch: int | None = None   # reproducible: clamp mtimes, date history from it
    build_args: tuple[tuple[str, str], ...] = ()   # --build-arg K=V, in command-line order
    target: str | None = None     # --target: build up to this stage (name, case-insensitive)
    pull: str = "missing"         # FROM images: "missing" pulls what the store lacks, "never", "always"
    insecure: bool = False        # plain http to registries (loopback hosts always are)
    cache_from: tuple[str, ...] = ()   # registry refs of exported build caches to use
    cache_to: str | None = None   # registry ref to export this build's cache to


@dataclass(frozen=True)
class State:
    """The image being built after some steps."""

    config: ImageConfig
    chain: tuple[str, ...] = ()   # chain IDs of its layers, base first
    cmd_set: bool = False         # a CMD was given in this stage (ENTRYPOINT then keeps Cmd)
    args: tuple[tuple[str, str], ...] = ()        # ARGs declared in this stage that have a value
    proxy_args: tuple[tuple[str, str], ...] = ()  # undeclared proxy --build-args (RUN env only)
    maintainer: str = ""          # MAINTAINER: author of every later history entry and the image


@dataclass(frozen=True)
class StepRef:
    number: int
    total: int
    original: str


class Build:
    """One build session.  ``run`` returns the new image ID; nothing is tagged on failure."""

    def __init__(self, store: Store, options: BuildOptions, log: BuildLog) -> None:
        self.store = store
        self.options = options
        self.log = log
        self._scratch: Path | None = None
        self.escape = "\\"                        # the Buildfile's escape character
        self.explanations: list[explain.StepExplanation] = []
        self._step: StepRef | None = None
        self.cache = BuildCache(store)
        self.step_keys: list[str] = []          # every step's cache key, in build order
        self._remotes: list | None = None       # --cache-from caches, opened on first miss
        self.hashes = FileHashes(store)
        self.meta_args: dict[str, str] = {}      # global ARGs (before the first FROM), resolved
        self.used_args: set[str] = set()         # --build-arg names some ARG declared
        self.stage_names: list[str | None] = []  # by stage index, lower-cased
        self.stage_images: dict[int, str] = {}   # stage index → committed (untagged) image ID
        self.current_stage = 0
        self._plan: stages_t.StagePlan | None = None

    def run(self, buildfile: Buildfile) -> str:
        """Build the target stage (the last one unless ``--target``) and the stages it needs;
        every built stage is committed as an untagged image (see ``image_for_copy_from``)."""
        from builder.build.dispatch import stage as stages     # handlers import this module's types
        for warning in getattr(buildfile, "warnings", ()):
            self.log.warn(warning)
        self.escape = buildfile.escape
        total = len(buildfile.instructions)
        plan = self._plan = stages.plan(buildfile, self.options.target)
        self.stage_names = [s.name for s in plan.stages]
        with self.store.in_use(), self._holding_scratch():
            for n, inst in plan.meta_args:
                self._step = StepRef(n, total, inst.original)
                self.log.step(n, total, inst.original)
                stages.dispatch_meta_arg(self, inst)
            for st in plan.stages[:plan.target + 1]:
                if st.index in self.stage_images:       # built early for a COPY --from
                    continue
                if st.index not in plan.needed:
                    self.log.note(f"skipping stage {st.label}: not needed for the target")
                    continue
                self._build_stage(st, total)
        self.hashes.save()
        unused = sorted({k for k, _ in self.options.build_args} - self.used_args - stages.PROXY_ARGS)
        if unused:
            self.log.warn(f"one or more build-args {unused} were not consumed")
        image_id = self.stage_images[plan.target]
        if self.options.cache_to:
            self._export_cache()
        for tag in self.options.tags:
            self.store.set_tag(tag, image_id)
        return image_id

    def _build_stage(self, st: stages_t.Stage, total: int) -> str:
        """Build one stage and commit its result as an (untagged) image; return its ID."""
        from builder.build.dispatch import dispatch
        self.current_stage = st.index
        state: State | None = None
        for n, inst in st.steps:
            step = self._step = StepRef(n, total, inst.original)
            self.log.step(n, total, inst.original)
            before = len(self.explanations)
            state = dispatch(self, state, inst, step)
            if self.options.explain == "text":
                from builder.build import explain
                for e in self.explanations[before:]:
                    self.log.explain(explain.render_text(e))
            self.log.note(_short(self.image_id_of(state.config)))
        assert state is not None, "a stage starts with FROM"
        self.stage_images[st.index] = image_id = self.commit_image(state)
        return image_id

    def image_for_copy_from(self, value: str) -> str:
        """The image ID that ``COPY --from=value`` copies from: an earlier stage by name
        (case-insensitive) or index, else an image in the store (name, tag or ID)."""
        index = self.stage_index(value)
        if index is not None:
            if index >= self.current_stage:
                raise StepError(step=self._step.number if self._step else 0,
                                total=self._step.total if self._step else 0,
                                instruction=self._step.original if self._step else "",
                                reason=f"--from={value} refers to the current or a later stage")
            if index not in self.stage_images:      # skipped as unneeded (e.g. --from=$VAR): build now
                assert self._plan is not None
                saved = (self.current_stage, self._step)
                self.log.note(f"building stage {self._plan.stages[index].label} for --from={value}")
                try:
                    with contextlib.ExitStack() as outside_run:     # called after run() returned
                        if self._scratch is None:
                            outside_run.enter_context(self.store.in_use())
                            outside_run.enter_context(self._holding_scratch())
                        self._build_stage(self._plan.stages[index], saved[1].total if saved[1] else 0)
                finally:
                    self.current_stage, self._step = saved
            return self.stage_images[index]
        try:
            return self.store.resolve(value)
        except ImageNotFound:
            raise ImageNotFound(f"--from={value}: no stage of that name and no such image in the "
                                f"store (create it with `pybuild import` or `pybuild load`)") from None

    def stage_index(self, value: str) -> int | None:
        """The index of an earlier-or-current stage called ``value`` (a name or an index)."""
        if value.isdigit():
            return int(value) if int(value) < len(self.stage_names) else None
        lowered = value.lower()
        for i, name in enumerate(self.stage_names[:self.current_stage + 1]):
            if name == lowered:
                return i
        return None

    # -- effects the handlers use ------------------------------------------------------------
    def load_base(self, ref: str) -> State:
        """The state after ``FROM ref``: a stored image (with docker's default PATH added)."""
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
        from builder.registry import RegistryError
        from builder.registry.pull import pull
        self.log.note(f"pulling {ref}")
        try:
            return pull(self.store, ref, insecure=self.options.insecure, bar=self.log.bar).image_id
        except RegistryError as e:
            raise ImageNotFound(f"base image {ref} is not in the store and pulling it failed: {e}") from None

    def run_command(self, state: State, step: StepRef, argv: tuple[str, ...], created_by: str, *,
                    env: tuple[str, ...] | None = None, script: tuple[str, bytes] | None = None) -> State:
        """RUN: execute ``argv`` chrooted over the union; capture what it changed.
        ``env`` replaces the config's Env (ARG values added); ``script`` = (absolute path, body)
        is a file (0755) present only while the command runs, never in the layer.  The cache
        key is argv + created_by (+ script): proxy args in ``env`` alone never change it."""
        definition = f"RUN {json.dumps(argv)}\n{created_by}"
        if script is not None:
            definition += f"\n{script[0]}\n{sha256_bytes(script[1])}"
        return self._cached(state, definition,
                            lambda: self._run_command(state, step, argv, created_by, env, script))

    def _run_command(self, state: State, step: StepRef, argv: tuple[str, ...], created_by: str,
                     run_env: tuple[str, ...] | None = None,
                     script: tuple[str, bytes] | None = None) -> State:
        from builder.layer import sandbox

        def action(mount: OverlayMount, step_dir: Path) -> OverlayMount:
            init = step_dir / "init"
            sandbox.make_init_layer(init, self._stack(state), sandbox.host_files())
            mount = replace(mount, lowers=(os.path.relpath(init, self.store.root),) + mount.lowers)
            hostname = secrets.token_hex(6)     # docker uses the container's short id
            if script is not None:              # written into the upper dir, removed before capture
                script_path = step_dir / "upper" / script[0].lstrip("/")
                script_path.write_bytes(script[1])
                script_path.chmod(0o755)
            env = state.config.config.env if run_env is None else run_env
            if state.config.config.env_get("HOSTNAME") is None:
                env += (f"HOSTNAME={hostname}",)
            spec = sandbox.RunSpec(argv=argv, env=env,
                                   workdir=state.config.config.working_dir or "/",
                                   user=state.config.config.user, hostname=hostname)
            code = sandbox.run(mount, spec, self.log.output, files_dir=step_dir)
            self.log.end_output()
            if script is not None:
                script_path.unlink(missing_ok=True)
            if code != 0:
                raise StepError(step=step.number, total=step.total, instruction=step.original,
                                reason=f"exit code {code}", exit_code=code)
            return mount
        return self._layer_step(state, created_by, action)

    def change_root(self, state: State, created_by: str, fn: Callable[..., Any], *args: Any,
                    inputs: str = "") -> State:
        """ADD/COPY/WORKDIR: call ``fn(merged_dir, *args)`` with the union mounted (no chroot).
        ``inputs`` is what else decides the result (ADD/COPY: the sources' checksum)."""
        return self._cached(state, f"{fn.__name__} {created_by}\n{inputs}",
                            lambda: self._change_root(state, created_by, fn, *args))

    def _change_root(self, state: State, created_by: str, fn: Callable[..., Any], *args: Any) -> State:
        from builder.layer import sandbox

        def action(mount: OverlayMount, step_dir: Path) -> OverlayMount:
            sandbox.call_in_root(mount, fn, *args)
            return mount
        return self._layer_step(state, created_by, action)

    def metadata(self, state: State, run_config: img.RunConfig, created_by: str, **changes: Any) -> State:
        """A config-only step: new RunConfig, and an empty_layer history entry."""
        definition = f"{created_by}\n{json.dumps(run_config.to_json(), sort_keys=True)}\n{changes}"
        return self._cached(state, definition, lambda: self._metadata(state, run_config, created_by, **changes),
                            **changes)

    def _metadata(self, state: State, run_config: img.RunConfig, created_by: str, **changes: Any) -> State:
        if self.options.explain and self._step is not None:
            from builder.build import explain
            self.explanations.append(explain.StepExplanation(
                number=self._step.number, total=self._step.total, instruction=self._step.original,
                kind="config", config_change=explain.config_change(state.config.config, run_config),
                created_by=created_by))
        state = replace(state, **changes)
        cfg = replace(state.config, config=run_config, author=state.maintainer)
        cfg = cfg.with_history(History(created_by=created_by, created=self._now(), empty_layer=True,
                                       author=state.maintainer))
        return replace(state, config=cfg)

    def scratch_path(self) -> Path:
        """This build's scratch dir (removed when the build ends), e.g. for downloads."""
        assert self._scratch is not None
        return self._scratch

    def image_id_of(self, cfg: ImageConfig) -> str:
        return sha256_bytes(img.config_bytes(cfg))

    def commit_image(self, state: State) -> str:
        return self.store.put_config(img.config_bytes(state.config), state.config.diff_ids)

    # -- internals ---------------------------------------------------------------------------
    def _cached(self, state: State, definition: str, produce: Callable[[], State],
                **changes: Any) -> State:
        """Serve the step from the cache, or produce it and record the result."""
        if self.options.source_date_epoch is not None:
            definition += f"\nSOURCE_DATE_EPOCH={self.options.source_date_epoch}"
        key = step_key(self.image_id_of(state.config), definition)
        self.step_keys.append(key)
        if not self.options.no_cache and not self.options.explain:
            hit = self.cache.lookup(key)
            if hit is None and any(remote.fetch(key) for remote in self._remote_caches()):
                hit = self.cache.lookup(key)            # the layers came from --cache-from
            if hit is not None:
                self.log.note("Using cache")
                cfg = img.parse_config(hit.config)
                return replace(state, config=cfg, chain=tuple(chain_ids(cfg.diff_ids)), cmd_set=hit.cmd_set,
                               **{k: v for k, v in changes.items() if k != "cmd_set"})
        new = produce()
        self.cache.record(key, img.config_bytes(new.config), cmd_set=new.cmd_set)
        return new

    def _remote_caches(self) -> list:
        if self._remotes is None:
            from builder.registry.remote_cache import RemoteCache
            self._remotes = [RemoteCache(self.store, ref, insecure=self.options.insecure, warn=self.log.warn)
                             for ref in self.options.cache_from]
        return self._remotes

    def _export_cache(self) -> None:
        from builder.registry.remote_cache import export_cache
        self.log.note(f"exporting the build cache to {self.options.cache_to}")
        export_cache(self.store, self.step_keys, self.options.cache_to, insecure=self.options.insecure)

    def _now(self) -> str:
        epoch = self.options.source_date_epoch
        return img.now_rfc3339() if epoch is None else img.rfc3339_of(epoch)

    @contextlib.contextmanager
    def _holding_scratch(self) -> Iterator[None]:
        self._scratch = self.store.scratch_dir("build")
        try:
            yield
        finally:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def _stack(self, state: State) -> LayerStack:
        from builder.layer.stack import LayerStack
        return LayerStack(tuple(self.store.layer_dir(c) for c in reversed(state.chain)))

    def _layer_step(self, state: State, created_by: str,
                    action: Callable[[OverlayMount, Path], OverlayMount]) -> State:
        from builder.layer.overlay import OverlayMount
        assert self._scratch is not None
        step_dir = Path(self._scratch) / f"step-{secrets.token_hex(4)}"
        step_dir.mkdir()
        try:
            for sub in ("upper", "work", "merged", "empty"):
                (step_dir / sub).mkdir()
            rel = os.path.relpath(step_dir, self.store.root)
            lowers = tuple(self.store.short_layer_path(c) for c in reversed(state.chain)) or (f"{rel}/empty",)
            mount = OverlayMount(lowers=lowers, upper=f"{rel}/upper", work=f"{rel}/work",
                                 target=str(step_dir / "merged"), cwd=str(self.store.root))
            used = action(mount, step_dir)
            seen = self._explain_upper(state, step_dir / "upper") if self.options.explain else ()
            new = self._commit_upper(state, step_dir, created_by)
            if self.options.explain:
                self._record(state, new, used, seen, created_by)
            return new
        finally:
            shutil.rmtree(step_dir, ignore_errors=True)

    def _commit_upper(self, state: State, step_dir: Path, created_by: str) -> State:
        from builder.layer.capture import capture
        tar_path = step_dir / "layer.tar"
        with open(tar_path, "wb") as out, self.log.bar("capturing layer") as done:
            cap = capture(step_dir / "upper", out, on_progress=done,
                          mtime_clamp=self.options.source_date_epoch)
        now = self._now()
        self._last_capture = (cap.diff_id, cap.size)
        author = state.maintainer
        if cap.diff_id == EMPTY_LAYER_DIFF_ID:
            cfg = replace(state.config, author=author).with_history(
                History(created_by=created_by, created=now, empty_layer=True, author=author))
            return replace(state, config=cfg)
        parent = state.chain[-1] if state.chain else None
        cid = chain_id(parent, cap.diff_id)
        self.store.commit_layer(chain_id=cid, diff_id=cap.diff_id, parent=parent,
                                unpacked=step_dir / "upper", tar_path=tar_path, size=cap.size)
        self.log.note(f"layer {_short(cap.diff_id)} ({human_size(cap.size)}, {len(cap.entries)} entries)")
        cfg = replace(state.config, author=author).with_layer(
            cap.diff_id, History(created_by=created_by, created=now, author=author))
        self._last_capture = (cap.diff_id, cap.size)
        return replace(state, config=cfg, chain=state.chain + (cid,))

    # -- --explain ---------------------------------------------------------------------------
    def _explain_upper(self, state: State, upper: Path) -> tuple[explain.UpperEntry, ...]:
        from builder.build import explain
        stack = self._stack(state)
        return tuple(explain.upper_entries(upper, lambda rel: stack.lookup(rel) is not None))

    def _record(self, before: State, after: State, mount: OverlayMount,
                entries: tuple[explain.UpperEntry, ...], created_by: str) -> None:
        from builder.build import explain
        assert self._step is not None
        roles = {self.store.short_layer_path(c): f"layer {i}: {_short(d)}"
                 for i, (c, d) in enumerate(zip(before.chain, before.config.diff_ids))}
        lowers = tuple(explain.LowerDir(p, roles.get(p, "init layer: mount points for the sandbox"
                                                     if p.endswith("/init") else "empty dir: no layers yet"))
                       for p in mount.lowers)
        made = len(after.chain) > len(before.chain)
        diff_id, size = self._last_capture if made else (EMPTY_LAYER_DIFF_ID, len(EMPTY_TAR))
        self.explanations.append(explain.StepExplanation(
            number=self._step.number, total=self._step.total, instruction=self._step.original,
            kind="layer" if made else "empty layer", lowers=lowers, upper=mount.upper,
            options=mount.options, entries=entries, diff_id=diff_id, tar_size=size,
            parent_chain=before.chain[-1] if before.chain and made else None,
            chain_id=after.chain[-1] if made else "", created_by=created_by))


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]
