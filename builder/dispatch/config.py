"""Config-only instructions (CMD, ENTRYPOINT, ENV, LABEL, USER, EXPOSE) and WORKDIR, which
changes the config and, when it creates the directory, the root filesystem."""

from __future__ import annotations

import posixpath
from dataclasses import replace

from builder.build import Build, State
from builder.buildfile.instructions import Cmd, Entrypoint, Env, Expose, Label, User, Workdir
from builder.dispatch.common import argv_of, env_of, expand, expand_words
from builder.image import NOP, created_by_nop, go_quote_list


def dispatch_cmd(build: Build, state: State, inst: Cmd) -> State:
    cmd = argv_of(inst.command)
    rc = replace(state.config.config, cmd=cmd)
    return build.metadata(state, rc, created_by_nop(f"CMD {go_quote_list(cmd)}"), cmd_set=True)


def dispatch_entrypoint(build: Build, state: State, inst: Entrypoint) -> State:
    ep = argv_of(inst.command)
    rc = replace(state.config.config, entrypoint=ep or None)
    if not state.cmd_set:                       # docker drops an inherited CMD
        rc = replace(rc, cmd=None)
    return build.metadata(state, rc, created_by_nop(f"ENTRYPOINT {go_quote_list(ep)}"))


def dispatch_env(build: Build, state: State, inst: Env) -> State:
    env = env_of(state)                            # every value sees the env before this step
    rc = state.config.config
    shown = []
    for key, raw in inst.pairs:
        value = expand(build, raw, env)
        rc = rc.with_env(key, value)
        shown.append(f"{key}={value}")
    return build.metadata(state, rc, created_by_nop("ENV " + " ".join(shown)))


def dispatch_label(build: Build, state: State, inst: Label) -> State:
    env = env_of(state)
    rc = state.config.config
    shown = []
    for raw_key, raw in inst.pairs:
        key, value = expand(build, raw_key, env), expand(build, raw, env)
        rc = rc.with_label(key, value)
        shown.append(f"{key}={value}")
    return build.metadata(state, rc, created_by_nop("LABEL " + " ".join(shown)))


def dispatch_user(build: Build, state: State, inst: User) -> State:
    user = expand(build, inst.user, env_of(state))
    rc = replace(state.config.config, user=user)
    return build.metadata(state, rc, created_by_nop(f"USER {user}"))


def dispatch_expose(build: Build, state: State, inst: Expose) -> State:
    env = env_of(state)
    words = [w for raw in inst.ports for w in expand_words(build, raw, env)]
    rc = state.config.config
    for word in words:
        port, _, proto = word.partition("/")
        rc = rc.with_port(f"{port}/{(proto or 'tcp').lower()}")
    # docker classic records the words sorted ("EXPOSE 53/udp 80")
    return build.metadata(state, rc, created_by_nop("EXPOSE " + " ".join(sorted(words))))


def dispatch_workdir(build: Build, state: State, inst: Workdir) -> State:
    path = expand(build, inst.path, env_of(state))
    current = state.config.config.working_dir or "/"
    path = posixpath.normpath(posixpath.join(current, path))
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    from builder import filecopy
    state = build.change_root(state, NOP + f"WORKDIR {path}", filecopy.make_workdir, path)
    return replace(state, config=replace(state.config, config=replace(state.config.config, working_dir=path)))
