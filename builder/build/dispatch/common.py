"""What every handler shares: the argv of a command form under the current SHELL, the
environment for expansion (ENV, then the ARGs in scope), and word expansion with the
Buildfile's escape character."""

from __future__ import annotations

from builder.build.state import Scope, State
from builder.buildfile import expand as expansion
from builder.buildfile.instructions import Command, ExecForm, ShellForm
from builder.oci.createdby import DEFAULT_SHELL, created_by_nop, nop_prefix


def argv_of(command: Command, shell: tuple[str, ...] = DEFAULT_SHELL) -> tuple[str, ...]:
    if isinstance(command, ShellForm):
        return tuple(shell) + (command.text,)
    assert isinstance(command, ExecForm)
    return tuple(command.argv)


def nop(state: State, text: str) -> str:
    """created_by of a metadata step: ``<shell> #(nop)  TEXT`` (two spaces)."""
    return created_by_nop(text, state.shell)


def nop1(state: State, text: str) -> str:
    """created_by of WORKDIR/COPY/ADD: ``<shell> #(nop) TEXT`` (one space)."""
    return nop_prefix(state.shell) + text


def expand(scope: Scope, word: str, env: dict[str, str]) -> str:
    return expansion.expand(word, env, escape=scope.escape)


def expand_words(scope: Scope, text: str, env: dict[str, str]) -> list[str]:
    return expansion.expand_words(text, env, escape=scope.escape)


def allowed_args(state: State) -> list[tuple[str, str]]:
    """ARG values a step sees (docker classic ``FilterAllowed``): the stage's ARGs and the
    undeclared proxy ``--build-arg``s, minus every name ENV sets (ENV always wins)."""
    env_keys = {item.partition("=")[0] for item in state.run_config.env}
    declared = {k for k, _ in state.args}
    return [(k, v) for k, v in state.args + tuple(p for p in state.proxy_args if p[0] not in declared)
            if k not in env_keys]


def env_of(state: State) -> dict[str, str]:
    """The lookup environment for ``$VAR``: the config's ENV, then the ARGs in scope."""
    env = dict(item.partition("=")[::2] for item in state.run_config.env)
    for key, value in allowed_args(state):
        env.setdefault(key, value)
    return env
