"""What every handler shares: the argv of a command form under the current SHELL, the
environment for expansion (ENV, then the ARGs in scope), and word expansion with the
Buildfile's escape character."""

from __future__ import annotations

from builder.build.session import Build, State, StepRef
from builder.buildfile import expand as expansion
from builder.buildfile.instructions import Add, Command, Copy, ExecForm, Run, ShellForm
from builder.errors import StepError
from builder.oci.createdby import DEFAULT_SHELL, created_by_nop, nop_prefix

SHELL = DEFAULT_SHELL


def shell_of(state: State) -> tuple[str, ...]:
    """The SHELL in force (config ``Shell``), ``/bin/sh -c`` by default."""
    shell = state.config.config.get_other("Shell")
    return tuple(shell) if shell else SHELL


def argv_of(command: Command, shell: tuple[str, ...] = SHELL) -> tuple[str, ...]:
    if isinstance(command, ShellForm):
        return tuple(shell) + (command.text,)
    assert isinstance(command, ExecForm)
    return tuple(command.argv)


def nop(state: State, text: str) -> str:
    """created_by of a metadata step: ``<shell> #(nop)  TEXT`` (two spaces)."""
    return created_by_nop(text, shell_of(state))


def nop1(state: State, text: str) -> str:
    """created_by of WORKDIR/COPY/ADD: ``<shell> #(nop) TEXT`` (one space)."""
    return nop_prefix(shell_of(state)) + text


def expand(build: Build, word: str, env: dict[str, str]) -> str:
    return expansion.expand(word, env, escape=build.escape)


def expand_words(build: Build, text: str, env: dict[str, str]) -> list[str]:
    return expansion.expand_words(text, env, escape=build.escape)


def allowed_args(state: State) -> list[tuple[str, str]]:
    """ARG values a step sees (docker classic ``FilterAllowed``): the stage's ARGs and the
    undeclared proxy ``--build-arg``s, minus every name ENV sets (ENV always wins)."""
    env_keys = {item.partition("=")[0] for item in state.config.config.env}
    declared = {k for k, _ in state.args}
    return [(k, v) for k, v in state.args + tuple(p for p in state.proxy_args if p[0] not in declared)
            if k not in env_keys]


def env_of(state: State) -> dict[str, str]:
    """The lookup environment for ``$VAR``: the config's ENV, then the ARGs in scope."""
    env = dict(item.partition("=")[::2] for item in state.config.config.env)
    for key, value in allowed_args(state):
        env.setdefault(key, value)
    return env


def unsupported_flag(step: StepRef, inst: Run | Add | Copy) -> StepError:
    names = ", ".join(f"--{f.name}" for f in inst.flags)
    return StepError(step=step.number, total=step.total, instruction=step.original,
                     reason=f"{names} is not supported by pybuild yet")
