"""Which stages a build has, which one is the target, and which stages the target needs.

Pure: a Buildfile in, a StagePlan out.  ARGs before the first FROM are *meta* args (seen
only by FROM lines); every FROM opens a stage; ``--target`` picks the stage whose image is the
result (the last one by default); a stage is needed when the target reaches it through
``FROM <stage>`` or ``COPY --from=<stage>``, transitively.  A ``--from`` known only at build
time (``--from=$X``) is built then, by the session.
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.buildfile.instructions import Add, Arg, Buildfile, Copy, Flag, From, Instruction, Onbuild, Run
from builder.errors import BuildfileError, UsageError


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None                          # lower-cased ``AS name``
    steps: tuple[tuple[int, Instruction], ...]   # (step number, instruction), FROM first

    @property
    def label(self) -> str:
        return f"{self.index} ({self.name})" if self.name else str(self.index)

    @property
    def base(self) -> str:
        """The FROM line's image word, unexpanded."""
        first = self.steps[0][1]
        assert isinstance(first, From), "a stage starts with FROM"
        return first.image


@dataclass(frozen=True)
class StagePlan:
    meta_args: tuple[tuple[int, Arg], ...]    # ARGs before the first FROM
    stages: tuple[Stage, ...]
    target: int                               # index of the stage whose image is the result
    needed: frozenset[int]                    # the target and every stage it depends on

    @property
    def names(self) -> tuple[str | None, ...]:
        return tuple(s.name for s in self.stages)

    @property
    def steps(self) -> int:
        """How many steps the Buildfile has (meta ARGs included): the M of ``Step N/M``."""
        return len(self.meta_args) + sum(len(s.steps) for s in self.stages)


def plan(buildfile: Buildfile, target: str | None) -> StagePlan:
    """Split the Buildfile into meta ARGs and stages; find the target and what it needs."""
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
            raise BuildfileError.at(inst.pos, f"{inst.keyword} before the first FROM "
                                              "(only ARG may come first)")
    if not raw:
        raise BuildfileError("no FROM instruction", file=buildfile.path, line=1, column=1,
                             hint="a Buildfile needs FROM <image> (or FROM scratch)")
    stages = tuple(Stage(i, _stage_name(steps[0][1]), tuple(steps)) for i, steps in enumerate(raw))
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
        todo.extend(depends_on(stages[i], names[:i]))
    return StagePlan(meta_args=tuple(meta), stages=stages, target=goal, needed=frozenset(needed))


def mount_froms(inst: Run) -> list[tuple[Flag, str]]:
    """(flag, value) of every literal ``from=`` of a RUN's ``--mount`` flags (``from`` never
    takes variables, so every one is literal)."""
    out = []
    for flag in inst.flags:
        if flag.name != "mount" or not flag.value:
            continue
        for field_ in flag.value.split(","):
            key, _, value = field_.partition("=")
            if key.strip().lower() == "from" and value:
                out.append((flag, value))
    return out


def _stage_name(inst: Instruction) -> str | None:
    assert isinstance(inst, From)
    return inst.stage_name.lower() if inst.stage_name else None


def depends_on(stage: Stage, earlier: list[str | None]) -> list[int]:
    """The earlier stages ``stage`` names literally (FROM, COPY --from, RUN --mount from=;
    not ONBUILD)."""
    refs = [stage.base]
    for _, inst in stage.steps[1:]:
        if isinstance(inst, Onbuild):
            continue
        if isinstance(inst, (Add, Copy)):
            refs += [f.value for f in inst.flags if f.name == "from" and f.value]
        if isinstance(inst, Run):
            refs += [ref for _, ref in mount_froms(inst)]
    out: list[int] = []
    for ref in refs:
        if ref.isdigit() and int(ref) < len(earlier):
            out.append(int(ref))
        elif ref.lower() in earlier:
            out.append(earlier.index(ref.lower()))
    return out
