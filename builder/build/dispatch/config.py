"""Config-only instructions (CMD, ENTRYPOINT, ENV, LABEL, USER, EXPOSE, VOLUME, SHELL,
STOPSIGNAL, HEALTHCHECK, MAINTAINER, ONBUILD) and WORKDIR, which changes the config and, when it
creates the directory, the root filesystem.  created_by strings are docker classic's, under
the current SHELL.  Every handler is pure: instruction, state and scope in, a step out."""

from __future__ import annotations

import posixpath
import re
import signal
from dataclasses import replace
from typing import Any

from builder.build.dispatch.common import argv_of, env_of, expand, expand_words, nop, nop1
from builder.build.state import Scope, State, StepRef
from builder.build.steps import ConfigStep, WorkdirStep
from builder.buildfile.instructions import (
    Cmd,
    Entrypoint,
    Env,
    ExecForm,
    Expose,
    Healthcheck,
    Label,
    Maintainer,
    Onbuild,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from builder.oci.config import RunConfig
from builder.oci.createdby import go_duration, go_quote, go_quote_list, go_quote_rune


def dispatch_cmd(inst: Cmd, state: State, scope: Scope, step: StepRef) -> ConfigStep:
    cmd = argv_of(inst.command, state.shell)
    rc = replace(state.run_config, cmd=cmd)
    # docker classic: only a non-empty CMD counts as set (a later ENTRYPOINT then keeps it)
    return _config(rc, nop(state, f"CMD {go_quote_list(cmd)}"), cmd_set=bool(cmd))


def dispatch_entrypoint(inst: Entrypoint, state: State, scope: Scope, step: StepRef) -> ConfigStep:
    ep = argv_of(inst.command, state.shell)
    rc = replace(state.run_config, entrypoint=ep or None)
    if not state.cmd_set:                       # docker drops an inherited CMD
        rc = replace(rc, cmd=None)
    return _config(rc, nop(state, f"ENTRYPOINT {go_quote_list(ep)}"))


def dispatch_env(inst: Env, state: State, scope: Scope, step: StepRef) -> ConfigStep:
    env = env_of(state)                            # every value sees the env before this step
    rc = state.run_config
    shown = []
    for key, raw in inst.pairs:
        value = expand(scope, raw, env)
        rc = rc.with_env(key, value)
        shown.append(f"{key}={value}")
    return _config(rc, nop(state, "ENV " + " ".join(shown)))


def dispatch_label(inst: Label, state: State, scope: Scope, step: StepRef) -> ConfigStep:
    env = env_of(state)
    rc = state.run_config
    shown = []
    for raw_key, raw in inst.pairs:
        key, value = expand(scope, raw_key, env), expand(scope, raw, env)
        rc = rc.with_label(key, value)
        shown.append(f"{key}={value}")
    return _config(rc, nop(state, "LABEL " + " ".join(shown)))


def dispatch_user(inst: User, state: State, scope: Scope, step: StepRef) -> ConfigStep:
    user = expand(scope, inst.user, env_of(state))
    rc = replace(state.run_config, user=user)
    return _config(rc, nop(state, f"USER {user}"))


def dispatch_expose(inst: Expose, state: State, scope: Scope, step: StepRef) -> ConfigStep:
    env = env_of(state)
    words = [w for raw in inst.ports for w in expand_words(scope, raw, env)]
    rc = state.run_config
    for word in words:
        port, _, proto = word.partition("/")
        rc = rc.with_port(f"{port}/{(proto or 'tcp').lower()}")
    # docker classic records the words sorted ("EXPOSE 53/udp 80")
    return _config(rc, nop(state, "EXPOSE " + " ".join(sorted(words))))


def dispatch_workdir(inst: Workdir, state: State, scope: Scope, step: StepRef) -> WorkdirStep:
    path = expand(scope, inst.path, env_of(state))
    current = state.run_config.working_dir or "/"
    path = posixpath.normpath(posixpath.join(current, path))
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return WorkdirStep(path=path, created_by=nop1(state, f"WORKDIR {path}"))


def dispatch_volume(inst: Volume, state: State, scope: Scope, step: StepRef) -> ConfigStep:
    env = env_of(state)
    paths = [expand(scope, p, env) for p in inst.paths]
    if any(not p for p in paths):
        raise step.error("VOLUME specified can not be an empty string")
    volumes = dict(state.run_config.get_other("Volumes") or {})
    for p in paths:
        volumes[p] = {}
    rc = state.run_config.with_other("Volumes", volumes)
    return _config(rc, nop(state, f"VOLUME [{' '.join(paths)}]"))   # Go %v of a slice


def dispatch_shell(inst: Shell, state: State, scope: Scope, step: StepRef) -> ConfigStep:
    if not inst.argv:
        raise step.error("SHELL requires at least one argument")
    rc = state.run_config.with_other("Shell", list(inst.argv))
    new = replace(state, config=replace(state.config, config=rc))   # the entry is under the new shell
    return _config(rc, nop(new, f"SHELL [{' '.join(inst.argv)}]"))


_SIGNALS = {s.name.removeprefix("SIG") for s in signal.Signals}


def dispatch_stopsignal(inst: StopSignal, state: State, scope: Scope, step: StepRef) -> ConfigStep:
    sig = expand(scope, inst.signal, env_of(state))
    if not valid_signal(sig):
        raise step.error(f"Invalid signal: {sig}")
    rc = state.run_config.with_other("StopSignal", sig)
    return _config(rc, nop(state, f"STOPSIGNAL {sig}"))


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


def dispatch_healthcheck(inst: Healthcheck, state: State, scope: Scope, step: StepRef) -> ConfigStep:
    flags = {f.name: f.value or "" for f in inst.flags}
    for name in flags:
        if name not in _DURATION_FLAGS + ("retries",):
            raise step.error(f"unknown flag: --{name}")
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
            raise step.error(f"time: invalid duration {flags[name]!r}")
        if ns < 0:
            raise step.error(f"{key} {flags[name]!r} cannot be negative")
        if 0 < ns < 1_000_000:
            raise step.error(f"{key} {flags[name]!r} cannot be less than 1ms")
        if ns:
            health[key] = ns
        durations.append(ns)
    retries_text = flags.get("retries") or "0"
    if not re.fullmatch(r"[+-]?\d+", retries_text):
        raise step.error(f"--retries: invalid number {retries_text!r}")
    retries = int(retries_text)
    if retries < 0:
        raise step.error("--retries cannot be negative")
    if retries:
        health["Retries"] = retries
    # classic quirk (daemon/create.go merge on the step's container): a zero duration or
    # retries is filled in from the previous HEALTHCHECK of the image; created_by shows zeros
    previous = state.run_config.get_other("Healthcheck") or {}
    for key in ("Interval", "Timeout", "StartPeriod", "Retries"):
        if key not in health and previous.get(key):
            health[key] = previous[key]
    rc = state.run_config.with_other("Healthcheck", health)
    # docker 20.10 classic: fmt.Sprintf("HEALTHCHECK %q", *HealthConfig) — %q applied field by field
    shown = "&{" + " ".join([go_quote_list(test)] + [go_quote(go_duration(d)) for d in durations]
                            + [go_quote_rune(retries)]) + "}"
    return _config(rc, nop(state, f"HEALTHCHECK {shown}"))


def dispatch_maintainer(inst: Maintainer, state: State, scope: Scope, step: StepRef) -> ConfigStep:
    name = inst.name
    return _config(state.run_config, nop(state, f"MAINTAINER {name}"), maintainer=name)


def dispatch_onbuild(inst: Onbuild, state: State, scope: Scope, step: StepRef) -> ConfigStep:
    trigger = inst.trigger
    keyword = trigger.split(None, 1)[0].upper() if trigger.strip() else ""
    if keyword in ("ONBUILD", "FROM", "MAINTAINER"):
        raise step.error(f"{keyword} isn't allowed as an ONBUILD trigger")
    triggers = list(state.run_config.get_other("OnBuild") or [])
    rc = state.run_config.with_other("OnBuild", triggers + [trigger])
    return _config(rc, nop(state, f"ONBUILD {trigger}"))


def _config(run_config: RunConfig, created_by: str, **changes: Any) -> ConfigStep:
    return ConfigStep(created_by=created_by, run_config=run_config, **changes)
