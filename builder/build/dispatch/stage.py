"""Stages and ARGs: which stages a target needs, FROM (an image or an earlier stage, then the
base's ONBUILD triggers), and ARG scoping as docker's classic builder does it.

ARG rules (classic builder, ``buildargs.go``): ARGs before the first FROM are *meta* args,
seen only by FROM lines; a stage ARG is seen from its line on, in that stage only; its value is
``--build-arg`` if given, else its default, else (``ARG X`` without one) the meta arg's value.
ARG values are RUN environment and expansion input, never config; a name that ENV sets is
hidden (ENV always wins).  Proxy args may be given with ``--build-arg`` without any ARG: RUN
sees them, but created_by and the cache key do not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from builder.build.session import Build, State, StepRef
from builder.buildfile.instructions import Add, Arg, Buildfile, Copy, From, Instruction, Onbuild
from builder.build.dispatch.common import env_of, expand, nop
from builder.errors import BuildfileError, UsageError

PROXY_ARGS = frozenset({"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
                        "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"})


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None                          # lower-cased ``AS name``
    steps: tuple[tuple[int, Instruction], ...]   # (step number, instruction), FROM first

    @property
    def label(self) -> str:
        return f"{self.index} ({self.name})" if self.name else str(self.index)


@dataclass(frozen=True)
class StagePlan:
    meta_args: tuple[tuple[int, Arg], ...]    # ARGs before the first FROM
    stages: tuple[Stage, ...]
    target: int                               # index of the stage whose image is the result
    needed: frozenset[int]                    # the target and every stage it depends on


def plan(buildfile: Buildfile, target: str | None) -> StagePlan:
    """Split the Buildfile into meta ARGs and stages; find the target and what it needs
    (``FROM <stage>`` and ``COPY --from=<stage>``, transitively).  Pure.  A ``--from`` known only
    at build time (``--from=$X``) is built then, by ``Build.image_for_copy_from``."""
    meta: list[tuple[int, Arg]] = []
    raw: list[list[tuple[int, Instruction]]] = []
    for n, inst in enumerate(buildfile.instructions, start=1):
        if isinstance(inst, From):
            raw.append([(n, inst)])
        elif raw:
            raw[-1].append((n, inst))
        elif isinstance(inst, Arg):
            meta.append((n, inst))
        else:
            raise _error(inst, f"{inst.keyword} before the first FROM (only ARG may come first)")
    if not raw:
        raise BuildfileError("no FROM instruction", file=buildfile.path, line=1, column=1,
                             hint="a Buildfile needs FROM <image> (or FROM scratch)")
    stages = tuple(Stage(i, steps[0][1].stage_name.lower() if steps[0][1].stage_name else None,
                         tuple(steps)) for i, steps in enumerate(raw))
    names = [s.name for s in stages]
    if target is None:
        goal = len(stages) - 1
    elif target.lower() in names:
        goal = names.index(target.lower())
    else:
        known = ", ".join(n for n in names if n) or "none"
        raise UsageError(f"failed to reach build target {target} in {buildfile.path} "
                         f"(stage names: {known})")
    needed: set[int] = set()
    todo = [goal]
    while todo:
        i = todo.pop()
        if i in needed:
            continue
        needed.add(i)
        todo.extend(_depends_on(stages[i], names[:i]))
    return StagePlan(meta_args=tuple(meta), stages=stages, target=goal, needed=frozenset(needed))


def _depends_on(stage: Stage, earlier: list[str | None]) -> list[int]:
    refs = [stage.steps[0][1].image]                                   # type: ignore[attr-defined]
    for _, inst in stage.steps[1:]:
        if isinstance(inst, Onbuild):
            continue
        if isinstance(inst, (Add, Copy)):
            refs += [f.value for f in inst.flags if f.name == "from" and f.value]
    out: list[int] = []
    for ref in refs:
        if ref.isdigit() and int(ref) < len(earlier):
            out.append(int(ref))
        elif ref.lower() in earlier:
            out.append(earlier.index(ref.lower()))
    return out


def dispatch_meta_arg(build: Build, inst: Arg) -> None:
    """``ARG`` before the first FROM: a value for FROM lines only; no history."""
    for name, raw in inst.pairs:
        value = None if raw is None else expand(build, raw, dict(build.meta_args))
        given = _build_arg(build, name)
        if given is not None:
            value = given
        if value is not None:
            build.meta_args[name] = value


def dispatch_from(build: Build, inst: From, step: StepRef) -> State:
    from builder.build.dispatch import dispatch
    ref = expand(build, inst.image, dict(build.meta_args))
    if not ref:
        raise _error(inst, f"base name ({inst.image}) should not be blank")
    index = build.stage_index(ref)
    if index is not None and index < build.current_stage and not ref.isdigit():
        state = build.load_base(build.stage_images[index])
    else:
        state = build.load_base(ref)
    proxies = tuple((k, v) for k, v in build.options.build_args if k in PROXY_ARGS)
    state = replace(state, proxy_args=proxies)
    triggers = state.config.config.get_other("OnBuild")
    if triggers:                       # classic: the triggers run now and leave the image
        rc = state.config.config.with_other("OnBuild", None)
        state = replace(state, config=replace(state.config, config=rc))
        for trigger in triggers:
            state = dispatch(build, state, parse_trigger(inst, trigger), step)
    return state


def parse_trigger(at: From, trigger: str) -> Instruction:
    """An ONBUILD trigger's text, parsed as a Buildfile line (errors point at the FROM)."""
    from builder.buildfile.parse import parse_buildfile
    try:
        parsed = parse_buildfile(f"FROM scratch\n{trigger}\n", file=f"ONBUILD trigger of {at.image}")
    except BuildfileError as e:
        raise _error(at, f"ONBUILD trigger {trigger!r} of the base image: {e.message}") from None
    inst = parsed.instructions[1]
    if isinstance(inst, (From, Onbuild)) or inst.keyword == "MAINTAINER":
        raise _error(at, f"{inst.keyword} isn't allowed as an ONBUILD trigger")
    return inst


def dispatch_arg(build: Build, state: State, inst: Arg) -> State:
    """``ARG a b=1``: history ``ARG a b=1`` (the defaults, expanded), values into scope."""
    env = env_of(state)
    shown = []
    args = dict(state.args)
    for name, raw in inst.pairs:
        default = None if raw is None else expand(build, raw, env)
        shown.append(name if default is None else f"{name}={default}")
        value = _build_arg(build, name)
        if value is None:
            value = default if default is not None else build.meta_args.get(name)
        args.pop(name, None)
        if value is not None:
            args[name] = value
    new = build.metadata(state, state.config.config, nop(state, "ARG " + " ".join(shown)))
    return replace(new, args=tuple(args.items()))


def _build_arg(build: Build, name: str) -> str | None:
    value = None
    for key, given in build.options.build_args:
        if key == name:
            value = given
            build.used_args.add(name)
    return value


def _error(inst: Instruction, message: str) -> BuildfileError:
    return BuildfileError(message, file=inst.pos.file, line=inst.pos.line, column=inst.pos.column,
                          source_line=inst.pos.source_line)
