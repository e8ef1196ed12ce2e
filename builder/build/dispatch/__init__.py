"""One handler per instruction, dispatched by ``match``.  Each takes the state before the step
and returns the state after it; the effects (mounts, layers, store) go through the Build
session.  Handlers live by family: stage.py (FROM, ARG), run.py, copy.py, config.py."""

from __future__ import annotations

from builder.build.session import Build, State, StepRef
from builder.buildfile.expand import ExpandError
from builder.buildfile.instructions import (Add, Arg, Cmd, Copy, Entrypoint, Env, Expose, From,
                                            Healthcheck, Instruction, Label, Maintainer, Onbuild, Run,
                                            Shell, StopSignal, User, Volume, Workdir)
from builder.build.dispatch.config import (dispatch_cmd, dispatch_entrypoint, dispatch_env, dispatch_expose,
                                     dispatch_healthcheck, dispatch_label, dispatch_maintainer,
                                     dispatch_onbuild, dispatch_shell, dispatch_stopsignal, dispatch_user,
                                     dispatch_volume, dispatch_workdir)
from builder.build.dispatch.copy import dispatch_copy
from builder.build.dispatch.run import dispatch_run
from builder.build.dispatch.stage import dispatch_arg, dispatch_from
from builder.errors import BuildfileError


def dispatch(build: Build, state: State | None, inst: Instruction, step: StepRef) -> State:
    if state is None and not isinstance(inst, From):
        raise BuildfileError("the first instruction must be FROM", file=inst.pos.file,
                             line=inst.pos.line, column=inst.pos.column, source_line=inst.pos.source_line)
    try:
        return _dispatch(build, state, inst, step)
    except ExpandError as e:
        raise BuildfileError(str(e), file=inst.pos.file, line=inst.pos.line, column=inst.pos.column,
                             source_line=inst.pos.source_line) from None


def _dispatch(build: Build, state: State | None, inst: Instruction, step: StepRef) -> State:
    if isinstance(inst, From):
        return dispatch_from(build, inst, step)
    assert state is not None
    match inst:
        case Run():
            return dispatch_run(build, state, inst, step)
        case Cmd():
            return dispatch_cmd(build, state, inst)
        case Entrypoint():
            return dispatch_entrypoint(build, state, inst)
        case Add() | Copy():
            return dispatch_copy(build, state, inst, step)
        case Env():
            return dispatch_env(build, state, inst)
        case Label():
            return dispatch_label(build, state, inst)
        case Workdir():
            return dispatch_workdir(build, state, inst)
        case User():
            return dispatch_user(build, state, inst)
        case Expose():
            return dispatch_expose(build, state, inst)
        case Arg():
            return dispatch_arg(build, state, inst)
        case Volume():
            return dispatch_volume(build, state, inst, step)
        case Shell():
            return dispatch_shell(build, state, inst, step)
        case StopSignal():
            return dispatch_stopsignal(build, state, inst, step)
        case Healthcheck():
            return dispatch_healthcheck(build, state, inst, step)
        case Maintainer():
            return dispatch_maintainer(build, state, inst)
        case Onbuild():
            return dispatch_onbuild(build, state, inst, step)
    raise AssertionError(f"internal error: no handler for {type(inst).__name__}")
