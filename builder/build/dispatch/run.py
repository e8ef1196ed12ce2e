"""RUN: a command over the union; what it writes becomes the layer.

Shell form runs under the current SHELL.  ARGs in scope are added to the environment and, as
docker classic records them, to created_by: ``|N K=V … <command>`` (the declared ones, sorted;
undeclared proxy args are in the environment only).  Heredocs: see buildfile/heredoc.py.
``--mount`` values are expanded with the build's variables and validated here (a literal one
was already checked by the parser); a relative or missing target is joined to the working
directory, as BuildKit does (a bind without target under ``WORKDIR /app`` is on /app), and
one that ends on ``/`` is refused.
``--network`` is default (today's: the host's network), none or host; ``--security=sandbox``
changes nothing, ``insecure`` is refused."""

from __future__ import annotations

import posixpath
from dataclasses import replace

from builder.build.dispatch.common import allowed_args, argv_of, env_of, expand
from builder.build.state import Scope, State, StepRef
from builder.build.steps import RunStep, Script
from builder.buildfile import heredoc, runmount
from builder.buildfile.instructions import Flag, Run, ShellForm
from builder.buildfile.runmount import MountSpec
from builder.errors import BuildfileError, MountError


def dispatch_run(inst: Run, state: State, scope: Scope, step: StepRef) -> RunStep:
    script = None
    if inst.heredocs and isinstance(inst.command, ShellForm):
        argv, file = heredoc.run_argv(inst.command.text, inst.heredocs, state.shell)
        script = Script(*file) if file else None
    else:
        argv = argv_of(inst.command, state.shell)
    if not argv:
        raise step.error("empty command")
    mounts, network = _flags(inst, state, scope)
    args = allowed_args(state)
    env = state.run_config.env + tuple(f"{k}={v}" for k, v in args)
    # docker classic records the container's command joined by spaces, ARGs first
    created_by = " ".join(argv)
    if args:
        declared = {k for k, _ in state.args}
        shown = sorted(f"{k}={v}" for k, v in args if k in declared)
        created_by = " ".join([f"|{len(shown)}", *shown, created_by])
    return RunStep(argv=argv, created_by=created_by, env=env, script=script, mounts=mounts, network=network)


def _flags(inst: Run, state: State, scope: Scope) -> tuple[tuple[MountSpec, ...], str]:
    env = env_of(state)
    workdir = state.run_config.working_dir or "/"
    mounts: list[MountSpec] = []
    network = "default"
    for flag in inst.flags:
        value = expand(scope, flag.value or "", env)
        try:
            if flag.name == "mount":
                spec = runmount.parse_mount(value, ssh_index=sum(m.type == "ssh" for m in mounts))
                if spec.target or spec.env is None:        # BuildKit: Join("/", workdir, target)
                    spec = replace(spec, target=_absolute(spec.target, workdir))
                    if spec.target == "/":
                        raise MountError('invalid mount target "/"',
                                         "target=PATH: where the mount appears (not / itself)")
                mounts.append(spec)
            elif flag.name == "network":
                network = runmount.parse_network(value)
            elif flag.name == "security" and runmount.parse_security(value) == "insecure":
                raise MountError("--security=insecure is not allowed: pybuild runs every RUN confined")
        except MountError as e:
            raise _at(flag, inst, f"--{flag.name}={value}: {e}", e.hint) from None
    return tuple(mounts), network


def _absolute(target: str, workdir: str) -> str:
    path = posixpath.normpath(posixpath.join(workdir, target))
    return "/" + path.lstrip("/")


def _at(flag: Flag | None, inst: Run, message: str, hint: str | None) -> BuildfileError:
    return BuildfileError.at(flag.pos if flag is not None and flag.pos is not None else inst.pos, message,
                             hint=hint)
