"""One handler per instruction, dispatched by ``match``.  A handler is pure: the instruction,
the state before the step and the scope in, a step description (build/steps.py) out; the
executor does what it describes.  Handlers live by family: stage.py (FROM, ARG), run.py,
copy.py, config.py (the config-only instructions and WORKDIR)."""

from __future__ import annotations

from builder.build.dispatch.config import (
    dispatch_cmd,
    dispatch_entrypoint,
    dispatch_env,
    dispatch_expose,
    dispatch_healthcheck,
    dispatch_label,
    dispatch_maintainer,
    dispatch_onbuild,
    dispatch_shell,
    dispatch_stopsignal,
    dispatch_user,
    dispatch_volume,
    dispatch_workdir,
)
from builder.build.dispatch.copy import dispatch_copy
from builder.build.dispatch.run import dispatch_run
from builder.build.dispatch.stage import dispatch_arg, dispatch_from
from builder.build.state import Scope, State, StepRef
from builder.build.steps import Step
from builder.buildfile.instructions import (
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from builder.errors import BuildfileError, ExpandError


def dispatch(inst: Instruction, state: State | None, scope: Scope, step: StepRef) -> Step:
    """The description of ``inst`` run on ``state`` (None before the stage's FROM).  Raises
    BuildfileError (with the instruction's position) or StepError; never does I/O."""
    if state is None and not isinstance(inst, From):
        raise BuildfileError.at(inst.pos, "the first instruction must be FROM")
    try:
        return _dispatch(inst, state, scope, step)
    except ExpandError as e:
        raise BuildfileError.at(inst.pos, str(e)) from None


def _dispatch(inst: Instruction, state: State | None, scope: Scope, step: StepRef) -> Step:
    if isinstance(inst, From):
        return dispatch_from(inst, state, scope, step)
    assert state is not None
    match inst:
        case Run():
            return dispatch_run(inst, state, scope, step)
        case Cmd():
            return dispatch_cmd(inst, state, scope, step)
        case Entrypoint():
            return dispatch_entrypoint(inst, state, scope, step)
        case Add() | Copy():
            return dispatch_copy(inst, state, scope, step)
        case Env():
            return dispatch_env(inst, state, scope, step)
        case Label():
            return dispatch_label(inst, state, scope, step)
        case Workdir():
            return dispatch_workdir(inst, state, scope, step)
        case User():
            return dispatch_user(inst, state, scope, step)
        case Expose():
            return dispatch_expose(inst, state, scope, step)
        case Arg():
            return dispatch_arg(inst, state, scope, step)
        case Volume():
            return dispatch_volume(inst, state, scope, step)
        case Shell():
            return dispatch_shell(inst, state, scope, step)
        case StopSignal():
            return dispatch_stopsignal(inst, state, scope, step)
        case Healthcheck():
            return dispatch_healthcheck(inst, state, scope, step)
        case Maintainer():
            return dispatch_maintainer(inst, state, scope, step)
        case Onbuild():
            return dispatch_onbuild(inst, state, scope, step)
    raise AssertionError(f"internal error: no handler for {type(inst).__name__}")
