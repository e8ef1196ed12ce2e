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

from builder import image as img
from builder.buildfile.instructions import Buildfile
from builder.buildlog import BuildLog, human_size
from builder.digest import EMPTY_LAYER_DIFF_ID, EMPTY_TAR, chain_id, chain_ids, sha256_bytes
from builder.errors import ImageNotFound, StepError, StoreError
from builder.image import History, ImageConfig
from builder.cache import BuildCache, FileHashes, step_key
from builder.store import Store

if TYPE_CHECKING:       # imported where a step really runs: a cached build never needs them
    from builder.inspect import explain
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


@dataclass(frozen=True)
class State:
    """The image being built after some steps."""

    config: ImageConfig
    chain: tuple[str, ...] = ()   # chain IDs of its layers, base first
    cmd_set: bool = False         # a CMD was given in this stage (ENTRYPOINT then keeps Cmd)


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
        self._stage: Path | None = None
        self.escape = "\\"                        # the Buildfile's escape character
        self.explanations: list[explain.StepExplanation] = []
        self._step: StepRef | None = None
        self.cache = BuildCache(store)
        self.hashes = FileHashes(store)

    def run(self, buildfile: Buildfile) -> str:
        from builder.dispatch import dispatch        # handlers import this module's types
        for warning in getattr(buildfile, "warnings", ()):
            self.log.warn(warning)
        self.escape = buildfile.escape
        total = len(buildfile.instructions)
        state: State | None = None
        with self.store.in_use(), self._staging():
            for n, inst in enumerate(buildfile.instructions, start=1):
                step = self._step = StepRef(n, total, inst.original)
                self.log.step(n, total, inst.original)
                before = len(self.explanations)
                state = dispatch(self, state, inst, step)
                if self.options.explain == "text":
                    from builder.inspect import explain
                    for e in self.explanations[before:]:
                        self.log.explain(explain.render_text(e))
                self.log.note(_short(self.image_id_of(state.config)))
        assert state is not None, "a parsed Buildfile has at least one instruction"
        self.hashes.save()
        image_id = self.commit_image(state)
        for tag in self.options.tags:
            self.store.set_tag(tag, image_id)
        return image_id

    # -- effects the handlers use ------------------------------------------------------------
    def load_base(self, ref: str) -> State:
        """The state after ``FROM ref``: a stored image (with docker's default PATH added)."""
        if ref == "scratch":
            cfg = img.empty_config()
            epoch = self.options.source_date_epoch
            return State(config=cfg if epoch is None else replace(cfg, created=img.rfc3339_of(epoch)))
        try:
            image_id = self.store.resolve(ref)
        except ImageNotFound:
            raise ImageNotFound(f"base image {ref} is not in the store "
                                f"(create it with `pybuild import` or `pybuild load`)") from None
        cfg = img.ensure_default_path(img.parse_config(self.store.image_config(image_id)))
        chain = tuple(chain_ids(cfg.diff_ids))
        for cid in chain:
            if not self.store.has_layer(cid):
                raise StoreError(f"base image {ref}: layer {cid} is missing from the store")
        return State(config=cfg, chain=chain)

    def run_command(self, state: State, step: StepRef, argv: tuple[str, ...], created_by: str) -> State:
        """RUN: execute ``argv`` chrooted over the union; capture what it changed."""
        return self._cached(state, f"RUN {json.dumps(argv)}\n{created_by}",
                            lambda: self._run_command(state, step, argv, created_by))

    def _run_command(self, state: State, step: StepRef, argv: tuple[str, ...], created_by: str) -> State:
        from builder.layer import sandbox

        def action(mount: OverlayMount, step_dir: Path) -> OverlayMount:
            init = step_dir / "init"
            sandbox.make_init_layer(init, self._stack(state), sandbox.host_files())
            mount = replace(mount, lowers=(os.path.relpath(init, self.store.root),) + mount.lowers)
            hostname = secrets.token_hex(6)     # docker uses the container's short id
            env = state.config.config.env
            if state.config.config.env_get("HOSTNAME") is None:
                env += (f"HOSTNAME={hostname}",)
            spec = sandbox.RunSpec(argv=argv, env=env,
                                   workdir=state.config.config.working_dir or "/",
                                   user=state.config.config.user, hostname=hostname)
            code = sandbox.run(mount, spec, self.log.output, files_dir=step_dir)
            self.log.end_output()
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
        return self._cached(state, definition, lambda: self._metadata(state, run_config, created_by, **changes))

    def _metadata(self, state: State, run_config: img.RunConfig, created_by: str, **changes: Any) -> State:
        if self.options.explain and self._step is not None:
            from builder.inspect import explain
            self.explanations.append(explain.StepExplanation(
                number=self._step.number, total=self._step.total, instruction=self._step.original,
                kind="config", config_change=explain.config_change(state.config.config, run_config),
                created_by=created_by))
        cfg = replace(state.config, config=run_config)
        cfg = cfg.with_history(History(created_by=created_by, created=self._now(), empty_layer=True))
        return replace(state, config=cfg, **changes)

    def staging_path(self) -> Path:
        """This build's staging dir (removed when the build ends), e.g. for downloads."""
        assert self._stage is not None
        return self._stage

    def image_id_of(self, cfg: ImageConfig) -> str:
        return sha256_bytes(img.config_bytes(cfg))

    def commit_image(self, state: State) -> str:
        return self.store.put_config(img.config_bytes(state.config), state.config.diff_ids)

    # -- internals ---------------------------------------------------------------------------
    def _cached(self, state: State, definition: str, produce: Callable[[], State]) -> State:
        """Serve the step from the cache, or produce it and record the result."""
        if self.options.source_date_epoch is not None:
            definition += f"\nSOURCE_DATE_EPOCH={self.options.source_date_epoch}"
        key = step_key(self.image_id_of(state.config), definition)
        if not self.options.no_cache and not self.options.explain:
            hit = self.cache.lookup(key)
            if hit is not None:
                self.log.note("Using cache")
                cfg = img.parse_config(hit.config)
                return State(config=cfg, chain=tuple(chain_ids(cfg.diff_ids)), cmd_set=hit.cmd_set)
        new = produce()
        self.cache.record(key, img.config_bytes(new.config), cmd_set=new.cmd_set)
        return new

    def _now(self) -> str:
        epoch = self.options.source_date_epoch
        return img.now_rfc3339() if epoch is None else img.rfc3339_of(epoch)

    @contextlib.contextmanager
    def _staging(self) -> Iterator[None]:
        self._stage = self.store.staging_dir("build")
        try:
            yield
        finally:
            shutil.rmtree(self._stage, ignore_errors=True)
            self._stage = None

    def _stack(self, state: State) -> LayerStack:
        from builder.layer.stack import LayerStack
        return LayerStack(tuple(self.store.layer_dir(c) for c in reversed(state.chain)))

    def _layer_step(self, state: State, created_by: str,
                    action: Callable[[OverlayMount, Path], OverlayMount]) -> State:
        from builder.layer.overlay import OverlayMount
        assert self._stage is not None
        step_dir = Path(self._stage) / f"step-{secrets.token_hex(4)}"
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
        if cap.diff_id == EMPTY_LAYER_DIFF_ID:
            cfg = state.config.with_history(History(created_by=created_by, created=now, empty_layer=True))
            return replace(state, config=cfg)
        parent = state.chain[-1] if state.chain else None
        cid = chain_id(parent, cap.diff_id)
        self.store.commit_layer(chain_id=cid, diff_id=cap.diff_id, parent=parent,
                                unpacked=step_dir / "upper", tar_path=tar_path, size=cap.size)
        self.log.note(f"layer {_short(cap.diff_id)} ({human_size(cap.size)}, {len(cap.entries)} entries)")
        cfg = state.config.with_layer(cap.diff_id, History(created_by=created_by, created=now))
        self._last_capture = (cap.diff_id, cap.size)
        return replace(state, config=cfg, chain=state.chain + (cid,))

    # -- --explain ---------------------------------------------------------------------------
    def _explain_upper(self, state: State, upper: Path) -> tuple[explain.UpperEntry, ...]:
        from builder.inspect import explain
        stack = self._stack(state)
        return tuple(explain.upper_entries(upper, lambda rel: stack.lookup(rel) is not None))

    def _record(self, before: State, after: State, mount: OverlayMount,
                entries: tuple[explain.UpperEntry, ...], created_by: str) -> None:
        from builder.inspect import explain
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
