"""Config-only instructions (CMD, ENTRYPOINT, ENV, LABEL, USER, EXPOSE, VOLUME, SHELL,
STOPSIGNAL, HEALTHCHECK, MAINTAINER, ONBUILD) and WORKDIR, which changes the config and, when it
creates the directory, the root filesystem.  created_by strings are docker classic's, under
the current SHELL."""

from __future__ import annotations

import posixpath
import re
import signal
from dataclasses import replace

from builder.build.session import Build, State, StepRef
from builder.buildfile.instructions import (Cmd, Entrypoint, Env, ExecForm, Expose, Healthcheck, Label,
                                            Maintainer, Onbuild, Shell, StopSignal, User, Volume, Workdir)
from builder.build.dispatch.common import argv_of, env_of, expand, expand_words, nop, nop1, shell_of
from builder.errors import StepError
from builder.oci.createdby import go_duration, go_quote, go_quote_list, go_quote_rune


def dispatch_cmd(build: Build, state: State, inst: Cmd) -> State:
    cmd = argv_of(inst.command, shell_of(state))
    rc = replace(state.config.config, cmd=cmd)
    # docker classic: only a non-empty CMD counts as set (a later ENTRYPOINT then keeps it)
    return build.metadata(state, rc, nop(state, f"CMD {go_quote_list(cmd)}"), cmd_set=bool(cmd))


def dispatch_entrypoint(build: Build, state: State, inst: Entrypoint) -> State:
    ep = argv_of(inst.command, shell_of(state))
    rc = replace(state.config.config, entrypoint=ep or None)
    if not state.cmd_set:                       # docker drops an inherited CMD
        rc = replace(rc, cmd=None)
    return build.metadata(state, rc, nop(state, f"ENTRYPOINT {go_quote_list(ep)}"))


def dispatch_env(build: Build, state: State, inst: Env) -> State:
    env = env_of(state)                            # every value sees the env before this step
    rc = state.config.config
    shown = []
    for key, raw in inst.pairs:
        value = expand(build, raw, env)
        rc = rc.with_env(key, value)
        shown.append(f"{key}={value}")
    return build.metadata(state, rc, nop(state, "ENV " + " ".join(shown)))


def dispatch_label(build: Build, state: State, inst: Label) -> State:
    env = env_of(state)
    rc = state.config.config
    shown = []
    for raw_key, raw in inst.pairs:
        key, value = expand(build, raw_key, env), expand(build, raw, env)
        rc = rc.with_label(key, value)
        shown.append(f"{key}={value}")
    return build.metadata(state, rc, nop(state, "LABEL " + " ".join(shown)))


def dispatch_user(build: Build, state: State, inst: User) -> State:
    user = expand(build, inst.user, env_of(state))
    rc = replace(state.config.config, user=user)
    return build.metadata(state, rc, nop(state, f"USER {user}"))


def dispatch_expose(build: Build, state: State, inst: Expose) -> State:
    env = env_of(state)
    words = [w for raw in inst.ports for w in expand_words(build, raw, env)]
    rc = state.config.config
    for word in words:
        port, _, proto = word.partition("/")
        rc = rc.with_port(f"{port}/{(proto or 'tcp').lower()}")
    # docker classic records the words sorted ("EXPOSE 53/udp 80")
    return build.metadata(state, rc, nop(state, "EXPOSE " + " ".join(sorted(words))))


def dispatch_workdir(build: Build, state: State, inst: Workdir) -> State:
    path = expand(build, inst.path, env_of(state))
    current = state.config.config.working_dir or "/"
    path = posixpath.normpath(posixpath.join(current, path))
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    from builder.context import copy as filecopy
    state = build.change_root(state, nop1(state, f"WORKDIR {path}"), filecopy.make_workdir, path)
    return replace(state, config=replace(state.config, config=replace(state.config.config, working_dir=path)))


def dispatch_volume(build: Build, state: State, inst: Volume, step: StepRef) -> State:
    env = env_of(state)
    paths = [expand(build, p, env) for p in inst.paths]
    if any(not p for p in paths):
        raise _step_error(step, "VOLUME specified can not be an empty string")
    volumes = dict(state.config.config.get_other("Volumes") or {})
    for p in paths:
        volumes[p] = {}
    rc = state.config.config.with_other("Volumes", volumes)
    return build.metadata(state, rc, nop(state, f"VOLUME [{' '.join(paths)}]"))   # Go %v of a slice


def dispatch_shell(build: Build, state: State, inst: Shell, step: StepRef) -> State:
    if not inst.argv:
        raise _step_error(step, "SHELL requires at least one argument")
    rc = state.config.config.with_other("Shell", list(inst.argv))
    new = replace(state, config=replace(state.config, config=rc))   # the entry is under the new shell
    return build.metadata(state, rc, nop(new, f"SHELL [{' '.join(inst.argv)}]"))


_SIGNALS = {s.name.removeprefix("SIG") for s in signal.Signals}


def dispatch_stopsignal(build: Build, state: State, inst: StopSignal, step: StepRef) -> State:
    sig = expand(build, inst.signal, env_of(state))
    if not valid_signal(sig):
        raise _step_error(step, f"Invalid signal: {sig}")
    rc = state.config.config.with_other("StopSignal", sig)
    return build.metadata(state, rc, nop(state, f"STOPSIGNAL {sig}"))


def valid_signal(sig: str) -> bool:
    """docker's ``signal.ParseSignal``: a number 1-64, or a name with or without SIG."""
    if sig.isdigit():
        return 0 < int(sig) <= 64
    name = sig.upper().removeprefix("SIG")
    return name in _SIGNALS or re.fullmatch(r"RTM(IN(\+([1-9]|1[0-5]))?|AX(-([1-9]|1[0-4]))?)", name) is not None


_DURATION_FLAGS = ("interval", "timeout", "start-period")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_go_duration(text: str) -> int | None:
    """Go's ``time.ParseDuration`` (``1m30s``, ``1.5h``, ``500ms``, ``0``) → ns; None if invalid."""
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body == "0":
        return 0
    parts = re.findall(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)", body)
    if not body or "".join(n + u for n, u in parts) != body:
        return None
    total = 0.0
    for number, unit in parts:
        total += float(number) * _UNITS[unit]
    return sign * int(round(total))


def dispatch_healthcheck(build: Build, state: State, inst: Healthcheck, step: StepRef) -> State:
    flags = {f.name: f.value or "" for f in inst.flags}
    for name in flags:
        if name not in _DURATION_FLAGS + ("retries",):
            raise _step_error(step, f"unknown flag: --{name}")
    health: dict[str, object] = {}
    if inst.command is None:
        test = ["NONE"]
    elif isinstance(inst.command, ExecForm):
        test = ["CMD", *inst.command.argv]
    else:
        test = ["CMD-SHELL", inst.command.text]
    health["Test"] = test
    durations = []
    for name, key in zip(_DURATION_FLAGS, ("Interval", "Timeout", "StartPeriod")):
        ns = parse_go_duration(flags.get(name) or "0")
        if ns is None:
            raise _step_error(step, f"time: invalid duration {flags[name]!r}")
        if ns < 0:
            raise _step_error(step, f"{key} {flags[name]!r} cannot be negative")
        if 0 < ns < 1_000_000:
            raise _step_error(step, f"{key} {flags[name]!r} cannot be less than 1ms")
        if ns:
            health[key] = ns
        durations.append(ns)
    retries_text = flags.get("retries") or "0"
    if not re.fullmatch(r"[+-]?\d+", retries_text):
        raise _step_error(step, f"--retries: invalid number {retries_text!r}")
    retries = int(retries_text)
    if retries < 0:
        raise _step_error(step, "--retries cannot be negative")
    if retries:
        health["Retries"] = retries
    # classic quirk (daemon/create.go merge on the step's container): a zero duration or
    # retries is filled in from the previous HEALTHCHECK of the image; created_by shows zeros
    previous = state.config.config.get_other("Healthcheck") or {}
    for key in ("Interval", "Timeout", "StartPeriod", "Retries"):
        if key not in health and previous.get(key):
            health[key] = previous[key]
    rc = state.config.config.with_other("Healthcheck", health)
    # docker 20.10 classic: fmt.Sprintf("HEALTHCHECK %q", *HealthConfig) — %q applied field by field
    shown = "&{" + " ".join([go_quote_list(test)] + [go_quote(go_duration(d)) for d in durations]
                            + [go_quote_rune(retries)]) + "}"
    return build.metadata(state, rc, nop(state, f"HEALTHCHECK {shown}"))


def dispatch_maintainer(build: Build, state: State, inst: Maintainer) -> State:
    name = inst.name
    return build.metadata(state, state.config.config, nop(state, f"MAINTAINER {name}"), maintainer=name)


def dispatch_onbuild(build: Build, state: State, inst: Onbuild, step: StepRef) -> State:
    trigger = inst.trigger
    keyword = trigger.split(None, 1)[0].upper() if trigger.strip() else ""
    if keyword in ("ONBUILD", "FROM", "MAINTAINER"):
        raise _step_error(step, f"{keyword} isn't allowed as an ONBUILD trigger")
    triggers = list(state.config.config.get_other("OnBuild") or [])
    rc = state.config.config.with_other("OnBuild", triggers + [trigger])
    return build.metadata(state, rc, nop(state, f"ONBUILD {trigger}"))


def _step_error(step: StepRef, reason: str) -> StepError:
    return StepError(step=step.number, total=step.total, instruction=step.original, reason=reason)
