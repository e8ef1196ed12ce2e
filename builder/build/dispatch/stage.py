"""FROM and ARG, as docker's classic builder scopes them.  Pure.

ARG rules (classic builder, ``buildargs.go``): ARGs before the first FROM are *meta* args,
seen only by FROM lines; a stage ARG is seen from its line on, in that stage only; its value is
``--build-arg`` if given, else its default, else (``ARG X`` without one) the meta arg's value.
ARG values are RUN environment and expansion input, never config; a name that ENV sets is
hidden (ENV always wins).  Proxy args may be given with ``--build-arg`` without any ARG: RUN
sees them, but created_by and the cache key do not.
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.build.dispatch.common import env_of, expand, nop
from builder.build.state import Scope, State, StepRef
from builder.build.steps import ConfigStep, FromStep
from builder.buildfile.instructions import Arg, From, Instruction, Onbuild
from builder.errors import BuildfileError

PROXY_ARGS = frozenset({"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
                        "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"})


@dataclass(frozen=True)
class MetaArgs:
    """The meta ARGs after an ``ARG`` before the first FROM, and the --build-args it used."""

    values: tuple[tuple[str, str], ...]
    consumed: frozenset[str]


def dispatch_meta_arg(inst: Arg, scope: Scope) -> MetaArgs:
    """``ARG`` before the first FROM: a value for FROM lines only; no history."""
    values = dict(scope.meta_args)
    consumed = set()
    for name, raw in inst.pairs:
        value = None if raw is None else expand(scope, raw, values)
        given = scope.build_arg(name)
        if given is not None:
            value = given
            consumed.add(name)
        if value is not None:
            values[name] = value
    return MetaArgs(tuple(values.items()), frozenset(consumed))


def dispatch_from(inst: From, state: State | None, scope: Scope, step: StepRef) -> FromStep:
    ref = expand(scope, inst.image, dict(scope.meta_args))
    if not ref:
        raise BuildfileError.at(inst.pos, f"base name ({inst.image}) should not be blank")
    index = scope.stage_index(ref)
    stage = index if index is not None and index < scope.stage and not ref.isdigit() else None
    proxies = tuple((k, v) for k, v in scope.build_args if k in PROXY_ARGS)
    return FromStep(image=ref, stage=stage, proxy_args=proxies)


def parse_trigger(at: From, trigger: str) -> Instruction:
    """An ONBUILD trigger's text, parsed as a Buildfile line (errors point at the FROM)."""
    # start-up: the parser (and Lark) only when a base image has ONBUILD triggers
    from builder.buildfile.parse import parse_buildfile
    try:
        parsed = parse_buildfile(f"FROM scratch\n{trigger}\n", file=f"ONBUILD trigger of {at.image}")
    except BuildfileError as e:
        raise BuildfileError.at(at.pos, f"ONBUILD trigger {trigger!r} of the base image: "
                                        f"{e.message}") from None
    inst = parsed.instructions[1]
    if isinstance(inst, (From, Onbuild)) or inst.keyword == "MAINTAINER":
        raise BuildfileError.at(at.pos, f"{inst.keyword} isn't allowed as an ONBUILD trigger")
    return inst


def dispatch_arg(inst: Arg, state: State, scope: Scope, step: StepRef) -> ConfigStep:
    """``ARG a b=1``: history ``ARG a b=1`` (the defaults, expanded), values into scope."""
    env = env_of(state)
    shown = []
    args = dict(state.args)
    consumed = set()
    for name, raw in inst.pairs:
        default = None if raw is None else expand(scope, raw, env)
        shown.append(name if default is None else f"{name}={default}")
        value = scope.build_arg(name)
        if value is not None:
            consumed.add(name)
        else:
            value = default if default is not None else dict(scope.meta_args).get(name)
        args.pop(name, None)
        if value is not None:
            args[name] = value
    return ConfigStep(created_by=nop(state, "ARG " + " ".join(shown)), run_config=state.run_config,
                      args=tuple(args.items()), consumed=frozenset(consumed))
