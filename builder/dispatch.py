"""One handler per instruction.  Each takes the state before the step and returns the state
after it; the effects (mounts, layers, store) go through the Build session."""

from __future__ import annotations

import posixpath
from dataclasses import replace

from builder.build import Build, State, StepRef
from builder.buildfile import expand as expansion
from builder.buildfile.expand import ExpandError
from builder.buildfile.instructions import (Add, Cmd, Command, Copy, Entrypoint, Env, ExecForm, Expose,
                                            From, Instruction, Label, Run, ShellForm, User, Workdir)
from builder.cache import sources_checksum
from builder.context import BuildContext, is_url
from builder.errors import BuildfileError, StepError
from builder.image import NOP, created_by_nop, go_quote_list

SHELL = ("/bin/sh", "-c")


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
    match inst:
        case From():
            return build.load_base(inst.image)
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
    raise AssertionError(f"internal error: no handler for {type(inst).__name__}")


def dispatch_run(build: Build, state: State, inst: Run, step: StepRef) -> State:
    if inst.flags:
        raise _unsupported_flag(step, inst)
    argv = _argv(inst.command)
    if not argv:
        raise StepError(step=step.number, total=step.total, instruction=step.original,
                        reason="empty command")
    # docker classic records the container's command joined by spaces
    return build.run_command(state, step, argv, created_by=" ".join(argv))


def dispatch_cmd(build: Build, state: State, inst: Cmd) -> State:
    cmd = _argv(inst.command)
    rc = replace(state.config.config, cmd=cmd)
    return build.metadata(state, rc, created_by_nop(f"CMD {go_quote_list(cmd)}"), cmd_set=True)


def dispatch_entrypoint(build: Build, state: State, inst: Entrypoint) -> State:
    ep = _argv(inst.command)
    rc = replace(state.config.config, entrypoint=ep or None)
    if not state.cmd_set:                       # docker drops an inherited CMD
        rc = replace(rc, cmd=None)
    return build.metadata(state, rc, created_by_nop(f"ENTRYPOINT {go_quote_list(ep)}"))


def dispatch_env(build: Build, state: State, inst: Env) -> State:
    env = _env(state)                            # every value sees the env before this step
    rc = state.config.config
    shown = []
    for key, raw in inst.pairs:
        value = _expand(build, raw, env)
        rc = rc.with_env(key, value)
        shown.append(f"{key}={value}")
    return build.metadata(state, rc, created_by_nop("ENV " + " ".join(shown)))


def dispatch_label(build: Build, state: State, inst: Label) -> State:
    env = _env(state)
    rc = state.config.config
    shown = []
    for raw_key, raw in inst.pairs:
        key, value = _expand(build, raw_key, env), _expand(build, raw, env)
        rc = rc.with_label(key, value)
        shown.append(f"{key}={value}")
    return build.metadata(state, rc, created_by_nop("LABEL " + " ".join(shown)))


def dispatch_user(build: Build, state: State, inst: User) -> State:
    user = _expand(build, inst.user, _env(state))
    rc = replace(state.config.config, user=user)
    return build.metadata(state, rc, created_by_nop(f"USER {user}"))


def dispatch_expose(build: Build, state: State, inst: Expose) -> State:
    env = _env(state)
    words = [w for raw in inst.ports for w in _expand_words(build, raw, env)]
    rc = state.config.config
    for word in words:
        port, _, proto = word.partition("/")
        rc = rc.with_port(f"{port}/{(proto or 'tcp').lower()}")
    # docker classic records the words sorted ("EXPOSE 53/udp 80")
    return build.metadata(state, rc, created_by_nop("EXPOSE " + " ".join(sorted(words))))


def dispatch_workdir(build: Build, state: State, inst: Workdir) -> State:
    path = _expand(build, inst.path, _env(state))
    current = state.config.config.working_dir or "/"
    path = posixpath.normpath(posixpath.join(current, path))
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    from builder import filecopy
    state = build.change_root(state, NOP + f"WORKDIR {path}", filecopy.make_workdir, path)
    return replace(state, config=replace(state.config, config=replace(state.config.config, working_dir=path)))


def dispatch_copy(build: Build, state: State, inst: Add | Copy, step: StepRef) -> State:
    from builder import filecopy
    if inst.flags:
        raise _unsupported_flag(step, inst)
    env = _env(state)
    srcs = [_expand(build, s, env) for s in inst.sources]
    dest = _expand(build, inst.dest, env)
    context = BuildContext(build.options.context)
    is_add = isinstance(inst, Add)
    items: list[filecopy.Item] = []
    for src in srcs:
        if is_url(src):
            if not is_add:
                raise StepError(step=step.number, total=step.total, instruction=step.original,
                                reason=f"source can't be a URL for COPY: {src}")
            items.append(filecopy.download(src, build.staging_path()))
            continue
        for source in context.resolve(src):
            items.append(filecopy.Item(source=source, extract=is_add and filecopy.is_archive(source)))
    if len(items) > 1 and not dest.endswith("/"):
        raise StepError(step=step.number, total=step.total, instruction=step.original,
                        reason=f"When using {inst.keyword} with more than one source file, "
                               "the destination must be a directory and end with a /")
    workdir = state.config.config.working_dir or "/"
    target = dest if dest.startswith("/") else posixpath.join(workdir, dest)
    if dest.endswith("/") and not target.endswith("/"):
        target += "/"
    created_by = NOP + f"{inst.keyword} {filecopy.checksum(items, build.hashes.sha256)} in {dest} "
    inputs = sources_checksum([(i.source.rel, i.source.path) for i in items], build.hashes) + \
        "".join(f" extract={i.extract} mode={i.mode} mtime={i.mtime}" for i in items)
    return build.change_root(state, created_by, filecopy.copy_items, items, target, inputs=inputs)


def _argv(command: Command) -> tuple[str, ...]:
    if isinstance(command, ShellForm):
        return SHELL + (command.text,)
    assert isinstance(command, ExecForm)
    return tuple(command.argv)


def _expand(build: Build, word: str, env: dict[str, str]) -> str:
    return expansion.expand(word, env, escape=build.escape)


def _expand_words(build: Build, text: str, env: dict[str, str]) -> list[str]:
    return expansion.expand_words(text, env, escape=build.escape)


def _env(state: State) -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in state.config.config.env)


def _unsupported_flag(step: StepRef, inst: Run | Add | Copy) -> StepError:
    names = ", ".join(f"--{f.name}" for f in inst.flags)
    return StepError(step=step.number, total=step.total, instruction=step.original,
                     reason=f"{names} is not supported by pybuild yet")
