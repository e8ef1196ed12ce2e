"""RUN: a command chrooted over the union; what it writes becomes the layer."""

from __future__ import annotations

from builder.build import Build, State, StepRef
from builder.buildfile.instructions import Run
from builder.dispatch.common import argv_of, unsupported_flag
from builder.errors import StepError


def dispatch_run(build: Build, state: State, inst: Run, step: StepRef) -> State:
    if inst.flags:
        raise unsupported_flag(step, inst)
    argv = argv_of(inst.command)
    if not argv:
        raise StepError(step=step.number, total=step.total, instruction=step.original,
                        reason="empty command")
    # docker classic records the container's command joined by spaces
    return build.run_command(state, step, argv, created_by=" ".join(argv))
