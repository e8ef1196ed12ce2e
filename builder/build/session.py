"""One build: Buildfile → stages → steps → a stored, tagged image.

The session walks the plan (build/plan.py): for every instruction of a needed stage it asks
the handler for a description (dispatch/, pure) and hands it to the executor (execute.py),
which does what it says.  The session owns what spans steps: the scratch dir, the meta ARGs
and which --build-args were used, the image each stage produced (for ``FROM <stage>`` and
``COPY --from``), ONBUILD triggers after FROM, and the tags at the end.  Nothing is tagged
on failure.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from builder.build import cachemiss
from builder.build.dispatch import dispatch
from builder.build.dispatch.stage import PROXY_ARGS, dispatch_meta_arg, parse_trigger
from builder.build.execute import Executor
from builder.build.log import BuildLog
from builder.build.plan import Stage, StagePlan, mount_froms, plan
from builder.build.state import BuildOptions, Scope, State, StepRef
from builder.build.steps import ConfigStep, CopyStep, FromStep, RunStep, Step, WorkdirStep
from builder.buildfile.instructions import Buildfile, From, Instruction, Run
from builder.errors import BuildfileError, ImageNotFound, PybuildError, StepError
from builder.oci.digest import short_id
from builder.store.store import Store, normalize_tag

if TYPE_CHECKING:
    from builder.build import explain
    from builder.build.copysources import SourceReader


class Build:
    """One build session.  ``run`` returns the new image ID."""

    def __init__(self, store: Store, options: BuildOptions, log: BuildLog) -> None:
        self.store = store
        self.options = options
        self.log = log
        self.executor = Executor(store, options, log, self.scratch_path, self.image_for_copy_from)
        self.scope = Scope(build_args=options.build_args)
        self.used_args: set[str] = set()         # --build-arg names some ARG declared
        self.stage_images: dict[int, str] = {}   # stage index → committed (untagged) image ID
        self._plan: StagePlan | None = None
        self._scratch: Path | None = None
        self._sources: SourceReader | None = None

    @property
    def explanations(self) -> list[explain.StepExplanation]:
        return self.executor.explanations

    @property
    def step_keys(self) -> list[str]:
        return self.executor.step_keys

    def run(self, buildfile: Buildfile) -> str:
        """Build the target stage (the last one unless ``--target``) and the stages it needs;
        every built stage is committed as an untagged image (see ``image_for_copy_from``)."""
        for warning in buildfile.warnings:
            self.log.warn(warning)
        total = len(buildfile.instructions)
        plan_ = self._plan = plan(buildfile, self.options.target)
        self.executor.record_path = self._record_path()
        self.scope = replace(self.scope, escape=buildfile.escape, stage_names=plan_.names)
        self._check_mount_sources(plan_)
        with self.store.in_use(), self._holding_scratch(), contextlib.closing(self.executor):
            for n, inst in plan_.meta_args:
                self.log.step(n, total, inst.original)
                meta = dispatch_meta_arg(inst, self.scope)
                self.scope = replace(self.scope, meta_args=meta.values)
                self.used_args |= meta.consumed
            for st in plan_.stages[:plan_.target + 1]:
                if st.index in self.stage_images:       # built early for a COPY --from
                    continue
                if st.index not in plan_.needed:
                    self.log.note(f"skipping stage {st.label}: not needed for the target")
                    continue
                self._build_stage(st, total)
        self.executor.hashes.save()
        self._save_records()
        unused = sorted({k for k, _ in self.options.build_args} - self.used_args - PROXY_ARGS)
        if unused:
            self.log.warn(f"one or more build-args {unused} were not consumed")
        image_id = self.stage_images[plan_.target]
        if self.options.cache_to:
            # start-up: imported only by a build that needs it
            from builder.registry.remote_cache import export_cache
            self.log.note(f"exporting the build cache to {self.options.cache_to}")
            export_cache(self.store, self.step_keys, self.options.cache_to, insecure=self.options.insecure)
        for tag in self.options.tags:
            self.store.set_tag(tag, image_id)
        return image_id

    def _record_path(self) -> Path:
        """Where this build's step records go: by its first tag, else by its Buildfile."""
        name = normalize_tag(self.options.tags[0]) if self.options.tags else \
            f"file:{os.path.realpath(self.options.buildfile)}"
        return self.store.build_record_path(name)

    def _save_records(self) -> None:
        """Keep this build's step records when a step ran (a fully cached build changes nothing
        a later miss would be compared with), or when there are none yet."""
        executor = self.executor
        path = executor.record_path
        if executor.records and path is not None and (executor.rerun is not None or not path.exists()):
            earlier = executor.previous if executor.previous is not None else cachemiss.load(path)
            cachemiss.save(path, executor.records, earlier,
                           lambda target, data: self.store.atomic_write(target, data, durable=False))
        if self.options.explain == "text":
            # start-up: only --explain describes steps
            from builder.build.explain import cache_summary
            self.log.explain(cache_summary(self.executor.hits, len(self.executor.records)))

    def _check_mount_sources(self, plan_: StagePlan) -> None:
        """Before anything runs: every ``RUN --mount from=`` of a needed stage names an earlier
        stage or an image of the store (a Buildfile error at the flag otherwise)."""
        for st in plan_.stages:
            if st.index not in plan_.needed:
                continue
            earlier = [n for n in plan_.names[:st.index]]
            for _, inst in st.steps:
                if not isinstance(inst, Run):
                    continue
                for flag, ref in mount_froms(inst):
                    if (ref.isdigit() and int(ref) < st.index) or ref.lower() in earlier:
                        continue
                    try:
                        self.store.resolve(ref)
                    except ImageNotFound:
                        close = difflib.get_close_matches(ref.lower(), [n for n in earlier if n], n=1)
                        hint = f"did you mean from={close[0]}? " if close else ""
                        raise BuildfileError.at(flag.pos or inst.pos, f"--mount from={ref}: no stage of that "
                                                "name before this one, and no such image in the store",
                                                hint=hint + "(name an earlier stage, FROM … AS name, or load the "
                                                            "image first: pybuild pull/load/import)") from None

    def _build_stage(self, st: Stage, total: int) -> str:
        """Build one stage and commit its result as an (untagged) image; return its ID."""
        self.scope = replace(self.scope, stage=st.index)
        state: State | None = None
        for n, inst in st.steps:
            ref = StepRef(n, total, inst.original, inst.pos)
            self.log.step(n, total, inst.original)
            before = len(self.explanations)
            state = self._step(inst, state, ref)
            if self.options.explain == "text":
                # start-up: only --explain describes steps
                from builder.build.explain import render_text
                for e in self.explanations[before:]:
                    self.log.explain(render_text(e))
            self.log.note(short_id(self.executor.image_id_of(state.config)))
        assert state is not None, "a stage starts with FROM"
        self.stage_images[st.index] = image_id = self.executor.commit_image(state)
        return image_id

    def _step(self, inst: Instruction, state: State | None, ref: StepRef) -> State:
        """One instruction, errors located: one that says no where (a missing source, a
        missing image, an archive that does not verify…) becomes the step's, with the
        Buildfile, the line and the step."""
        try:
            return self._run_step(inst, state, ref)
        except (BuildfileError, StepError):
            raise
        except PybuildError as e:
            raise ref.wrap(e) from e

    def _run_step(self, inst: Instruction, state: State | None, ref: StepRef) -> State:
        """The description, then the executor; after FROM, the base image's ONBUILD triggers,
        as steps of the same number."""
        step = dispatch(inst, state, self.scope, ref)
        new = self._execute(step, state, ref)
        if isinstance(step, FromStep) and isinstance(inst, From):
            triggers = new.run_config.get_other("OnBuild")
            if triggers:                       # classic: the triggers run now and leave the image
                rc = new.run_config.with_other("OnBuild", None)
                new = replace(new, config=replace(new.config, config=rc))
                for trigger in triggers:
                    new = self._execute(dispatch(parse_trigger(inst, trigger), new, self.scope, ref), new, ref)
        return new

    def _execute(self, step: Step, state: State | None, ref: StepRef) -> State:
        if isinstance(step, FromStep):
            base = self.stage_images[step.stage] if step.stage is not None else step.image
            return replace(self.executor.load_base(base), proxy_args=step.proxy_args)
        assert state is not None
        match step:
            case ConfigStep():
                self.used_args |= step.consumed
                return self.executor.config(state, step, ref)
            case RunStep():
                return self.executor.run(state, step, ref)
            case WorkdirStep():
                return self.executor.workdir(state, step, ref)
            case CopyStep():
                return self.executor.copy(state, step, self._source_reader().job(step, ref), ref)
        raise AssertionError(f"internal error: no executor for {type(step).__name__}")

    def _source_reader(self) -> SourceReader:
        if self._sources is None:                 # only a build with ADD/COPY needs it
            # start-up: imported only by a build that needs it
            from builder.build.copysources import SourceReader
            self._sources = SourceReader(self.store, self.options, self.executor.hashes,
                                         image_of=self.image_for_copy_from, scratch=self.scratch_path)
        return self._sources

    def image_for_copy_from(self, value: str) -> str:
        """The image ID that ``COPY --from=value`` copies from: an earlier stage by name
        (case-insensitive) or index, else an image in the store (name, tag or ID).  A stage
        skipped as unneeded (``--from=$VAR``) is built now."""
        index = self.scope.stage_index(value)
        if index is not None:
            if index >= self.scope.stage:
                raise ImageNotFound("it names the current or a later stage")
            if index not in self.stage_images:
                assert self._plan is not None
                stage, outer = self._plan.stages[index], self.scope
                self.log.note(f"building stage {stage.label} for --from={value}")
                try:
                    with contextlib.ExitStack() as outside_run:     # called after run() returned
                        if self._scratch is None:
                            outside_run.enter_context(self.store.in_use())
                            outside_run.enter_context(self._holding_scratch())
                        self._build_stage(stage, self._plan.steps)
                finally:
                    self.scope = outer
            return self.stage_images[index]
        try:
            return self.store.resolve(value)
        except ImageNotFound:
            raise ImageNotFound("no stage of that name and no such image in the store (create it "
                                "with `pybuild import` or `pybuild load`)") from None

    def scratch_path(self) -> Path:
        """This build's scratch dir (removed when the build ends), e.g. for downloads."""
        assert self._scratch is not None
        return self._scratch

    @contextlib.contextmanager
    def _holding_scratch(self) -> Iterator[None]:
        self._scratch = self.store.scratch_dir("build")
        try:
            yield
        finally:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
