"""A stable, readable text dump of a parsed Buildfile (golden tests, ``pybuild parse --dump``).

One block per instruction: a header ``LINE:COL[-END_LINE] KEYWORD`` and indented
``field: value`` rows; strings are JSON-quoted so whitespace and escapes are visible.
Warnings follow the instructions as ``warning: …`` rows.  Example::

    2:1 FROM
      original: "FROM pbtest/busybox:base"
      image: "pbtest/busybox:base"
    4:1-6 RUN
      original: "RUN echo a > /x &&   echo b >> /x"
      shell: "echo a > /x &&   echo b >> /x"
"""

from __future__ import annotations

import json

from builder.buildfile import instructions as ins


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(_q(item) for item in items) + "]"


def _flag(flag: ins.Flag) -> str:
    return f"--{flag.name}" if flag.value is None else f"--{flag.name}={_q(flag.value)}"


def _command(command: ins.Command) -> str:
    match command:
        case ins.ShellForm(text=text):
            return f"shell: {_q(text)}"
        case ins.ExecForm(argv=argv):
            return f"exec: {_list(argv)}"
    raise AssertionError(f"internal error: unknown command form {command!r}")


def _fields(instruction: ins.Instruction) -> list[str]:
    match instruction:
        case ins.From(image=image, stage_name=stage):
            return [f"image: {_q(image)}"] + ([f"stage: {_q(stage)}"] if stage else [])
        case ins.Run(command=command) | ins.Cmd(command=command) | \
                ins.Entrypoint(command=command):
            return [_command(command)]
        case ins.Add(sources=sources, dest=dest) | ins.Copy(sources=sources, dest=dest):
            return [f"sources: {_list(sources)}", f"dest: {_q(dest)}"]
        case ins.Env(pairs=pairs) | ins.Label(pairs=pairs):
            return [f"pair: {_q(key)} = {_q(value)}" for key, value in pairs]
        case ins.Workdir(path=path):
            return [f"path: {_q(path)}"]
        case ins.User(user=user):
            return [f"user: {_q(user)}"]
        case ins.Expose(ports=ports):
            return [f"ports: {_list(ports)}"]
    raise AssertionError(f"internal error: no dump for {type(instruction).__name__}")


def dump(buildfile: ins.Buildfile) -> str:
    """The dump text, ending in a newline."""
    rows: list[str] = []
    for instruction in buildfile.instructions:
        pos = instruction.pos
        span = f"-{pos.end_line}" if pos.end_line > pos.line else ""
        rows.append(f"{pos.line}:{pos.column}{span} {instruction.keyword}")
        rows.append(f"  original: {_q(instruction.original)}")
        rows.extend(f"  flag: {_flag(flag)}" for flag in getattr(instruction, "flags", ()))
        rows.extend(f"  {row}" for row in _fields(instruction))
    rows.extend(f"warning: {warning}" for warning in buildfile.warnings)
    return "\n".join(rows) + "\n"
