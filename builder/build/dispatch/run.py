"""RUN: a command chrooted over the union; what it writes becomes the layer.

Shell form runs under the current SHELL.  ARGs in scope are added to the environment and, as
docker classic records them, to created_by: ``|N K=V … <command>`` (the declared ones, sorted;
undeclared proxy args are in the environment only).  Heredocs (``RUN <<EOF``): a lone heredoc
is the script (a ``#!`` body runs as a file); a command with heredocs gets the line, the bodies
and their terminators as one shell script, and the shell does the heredoc processing."""

from __future__ import annotations

import re

from builder.build.session import Build, State, StepRef
from builder.buildfile.instructions import Heredoc, Run, ShellForm
from builder.build.dispatch.common import allowed_args, argv_of, shell_of, unsupported_flag
from builder.errors import StepError

SCRIPT_DIR = "/.pybuild-heredoc-"      # + delimiter: a shebang heredoc's file while it runs
_LONE_HEREDOC = re.compile(r"\d*<<-?\s*(\S+)\Z")


def dispatch_run(build: Build, state: State, inst: Run, step: StepRef) -> State:
    if inst.flags:
        raise unsupported_flag(step, inst)
    script = None
    if inst.heredocs and isinstance(inst.command, ShellForm):
        argv, script = heredoc_argv(inst.command.text, inst.heredocs, shell_of(state))
    else:
        argv = argv_of(inst.command, shell_of(state))
    if not argv:
        raise StepError(step=step.number, total=step.total, instruction=step.original,
                        reason="empty command")
    args = allowed_args(state)
    env = state.config.config.env + tuple(f"{k}={v}" for k, v in args)
    # docker classic records the container's command joined by spaces, ARGs first
    created_by = " ".join(argv)
    if args:
        declared = {k for k, _ in state.args}
        shown = sorted(f"{k}={v}" for k, v in args if k in declared)
        created_by = " ".join([f"|{len(shown)}", *shown, created_by])
    return build.run_command(state, step, argv, created_by=created_by, env=env, script=script)


def heredoc_argv(text: str, heredocs: tuple[Heredoc, ...],
                 shell: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, bytes] | None]:
    """(argv, script file) for a shell-form RUN with heredocs (BuildKit's ``dispatchRun``)."""
    if len(heredocs) == 1 and _LONE_HEREDOC.match(text.strip()):
        body = heredocs[0].content
        if body.startswith("#!"):
            path = SCRIPT_DIR + re.sub(r"[^A-Za-z0-9_.-]", "_", heredocs[0].name)
            return (path,), (path, body.encode("utf-8", "surrogateescape"))
        return tuple(shell) + (body,), None
    script = text + "\n" + "".join(
        h.content + ("" if h.content.endswith("\n") or not h.content else "\n") + h.name + "\n"
        for h in heredocs)
    return tuple(shell) + (script,), None
