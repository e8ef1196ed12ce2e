"""RUN: a command over the union; what it writes becomes the layer.

Shell form runs under the current SHELL.  ARGs in scope are added to the environment and, as
docker classic records them, to created_by: ``|N K=V … <command>`` (the declared ones, sorted;
undeclared proxy args are in the environment only).  Heredocs: see buildfile/heredoc.py."""

from __future__ import annotations

from builder.build.dispatch.common import allowed_args, argv_of
from builder.build.state import Scope, State, StepRef
from builder.build.steps import RunStep, Script
from builder.buildfile import heredoc
from builder.buildfile.instructions import Run, ShellForm


def dispatch_run(inst: Run, state: State, scope: Scope, step: StepRef) -> RunStep:
    if inst.flags:
        names = ", ".join(f"--{f.name}" for f in inst.flags)
        raise step.error(f"{names} is not supported by pybuild yet")
    script = None
    if inst.heredocs and isinstance(inst.command, ShellForm):
        argv, file = heredoc.run_argv(inst.command.text, inst.heredocs, state.shell)
        script = Script(*file) if file else None
    else:
        argv = argv_of(inst.command, state.shell)
    if not argv:
        raise step.error("empty command")
    args = allowed_args(state)
    env = state.run_config.env + tuple(f"{k}={v}" for k, v in args)
    # docker classic records the container's command joined by spaces, ARGs first
    created_by = " ".join(argv)
    if args:
        declared = {k for k, _ in state.args}
        shown = sorted(f"{k}={v}" for k, v in args if k in declared)
        created_by = " ".join([f"|{len(shown)}", *shown, created_by])
    return RunStep(argv=argv, created_by=created_by, env=env, script=script)
