"""A stable, readable text dump of a parsed Buildfile (golden tests, ``pybuild parse --dump``).

One block per instruction: a header ``LINE:COL[-END_LINE] KEYWORD`` and indented
``field: value`` rows; strings are JSON-quoted so whitespace and escapes are visible.
Heredocs add a ``heredoc:`` row each (name, options, body).  ONBUILD shows its trigger and then
the nested instruction as an indented ``> KEYWORD`` block.  Warnings follow the instructions
as ``warning: …`` rows.  Example::

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
        case ins.Arg(pairs=pairs):
            return [f"arg: {_q(name)}" + ("" if value is None else f" = {_q(value)}")
                    for name, value in pairs]
        case ins.Volume(paths=paths):
            return [f"paths: {_list(paths)}"]
        case ins.Shell(argv=argv):
            return [f"argv: {_list(argv)}"]
        case ins.StopSignal(signal=signal):
            return [f"signal: {_q(signal)}"]
        case ins.Healthcheck(command=command):
            return ["none"] if command is None else [_command(command)]
        case ins.Maintainer(name=name):
            return [f"name: {_q(name)}"]
        case ins.Onbuild(trigger=trigger, instruction=nested):
            return [f"trigger: {_q(trigger)}"] + [f"  {row}" for row in _block(nested, "> ")]
    raise AssertionError(f"internal error: no dump for {type(instruction).__name__}")


def _heredoc(heredoc: ins.Heredoc) -> str:
    options = [f"fd={heredoc.fd}"] if heredoc.fd is not None else []
    options += ["strip_tabs"] if heredoc.strip_tabs else []
    options += [] if heredoc.expand else ["no_expand"]
    return " ".join([f"heredoc: {_q(heredoc.name)}", *options, f"body: {_q(heredoc.content)}"])


def _block(instruction: ins.Instruction, prefix: str = "") -> list[str]:
    pos = instruction.pos
    span = f"-{pos.end_line}" if pos.end_line > pos.line else ""
    rows = [f"{prefix}{pos.line}:{pos.column}{span} {instruction.keyword}",
            f"  original: {_q(instruction.original)}"]
    rows.extend(f"  flag: {_flag(flag)}" for flag in getattr(instruction, "flags", ()))
    rows.extend(f"  {row}" for row in _fields(instruction))
    rows.extend(f"  {_heredoc(h)}" for h in getattr(instruction, "heredocs", ()))
    return rows


def dump(buildfile: ins.Buildfile) -> str:
    """The dump text, ending in a newline."""
    rows: list[str] = []
    for instruction in buildfile.instructions:
        rows.extend(_block(instruction))
    rows.extend(f"warning: {warning}" for warning in buildfile.warnings)
    return "\n".join(rows) + "\n"
