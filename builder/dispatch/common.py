"""What every handler shares: the argv of a command form, the environment for expansion,
and word expansion with the Buildfile's escape character."""

from __future__ import annotations

from builder.build import Build, State, StepRef
from builder.buildfile import expand as expansion
from builder.buildfile.instructions import Add, Command, Copy, ExecForm, Run, ShellForm
from builder.errors import StepError

SHELL = ("/bin/sh", "-c")


def argv_of(command: Command) -> tuple[str, ...]:
    if isinstance(command, ShellForm):
        return SHELL + (command.text,)
    assert isinstance(command, ExecForm)
    return tuple(command.argv)


def expand(build: Build, word: str, env: dict[str, str]) -> str:
    return expansion.expand(word, env, escape=build.escape)


def expand_words(build: Build, text: str, env: dict[str, str]) -> list[str]:
    return expansion.expand_words(text, env, escape=build.escape)


def env_of(state: State) -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in state.config.config.env)


def unsupported_flag(step: StepRef, inst: Run | Add | Copy) -> StepError:
    names = ", ".join(f"--{f.name}" for f in inst.flags)
    return StepError(step=step.number, total=step.total, instruction=step.original,
                     reason=f"{names} is not supported by pybuild yet")
