"""Buildfile text → typed instructions (instructions.py).

Pipeline: lines.py (physical → logical lines, heredoc bodies) → keyword check (known /
unknown, with did-you-mean) → grammar.py (Lark tree of one instruction) → one small builder per
instruction here (ONBUILD parses its trigger with the same function).  Every failure is a
BuildfileError with file, line, column and caret; accepted-but-dubious input gives warnings.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

from lark import Token

from builder.buildfile import instructions as ins
from builder.buildfile.flags import check_flags
from builder.buildfile.grammar import parse_instruction
from builder.buildfile.json_form import FALLBACK_WARNING, decode
from builder.buildfile.lines import LogicalLine, split_lines
from builder.errors import BuildfileError, UsageError

SUPPORTED = ("FROM", "RUN", "CMD", "ENTRYPOINT", "ADD", "COPY", "ENV", "LABEL", "WORKDIR",
             "USER", "EXPOSE", "ARG", "VOLUME", "SHELL", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD",
             "MAINTAINER")
_STAGE_NAME = re.compile(r"[a-z][a-z0-9-_.]*\Z")
_ARG_NAME = re.compile(r"[^\s=]+")
_NOT_TRIGGERS = {
    "ONBUILD": "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
    "FROM": "FROM isn't allowed as an ONBUILD trigger",
    "MAINTAINER": "MAINTAINER isn't allowed as an ONBUILD trigger",
}


class _Common(TypedDict):
    """The fields every instruction has (``Instruction``'s)."""

    pos: ins.Position
    keyword: str
    original: str


class _Context:
    """What a per-instruction builder needs: the line, its parts, and where to warn."""

    def __init__(self, logical: LogicalLine, keyword: str, escape: str,
                 warnings: list[str]) -> None:
        self.logical = logical
        self.keyword = keyword
        self.escape = escape
        self.warnings = warnings
        self.arguments = logical.text[len(keyword):].strip(" \t\v\f\r")
        self.original = f"{keyword} {self.arguments}"

    def common(self) -> _Common:
        line, column, source_line = self.logical.locate(0)
        pos = ins.Position(self.logical.file, line, column, source_line, self.logical.end_line)
        return {"pos": pos, "keyword": self.keyword, "original": self.original}

    def warn(self, message: str) -> None:
        self.warnings.append(f"{self.logical.file}:{self.logical.line}: {self.keyword} {message}")


def parse_file(path: str | Path) -> ins.Buildfile:
    """Read and parse a Buildfile; an unreadable file is a BuildfileError too."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UsageError(f"Buildfile not found: {path}") from None
    except OSError as e:
        raise UsageError(f"cannot read Buildfile {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"Buildfile {path} is not UTF-8 text (byte {e.start})") from None
    return parse_buildfile(text, file=str(path))


def parse_buildfile(text: str, *, file: str) -> ins.Buildfile:
    """Parse Buildfile ``text``; ``file`` is only used in positions and messages."""
    split = split_lines(text, file=file)
    warnings = list(split.warnings)
    parsed: list[ins.Instruction] = []
    stage: _StageNames | None = None
    for logical in split.lines:
        instruction = _parse_line(logical, split.escape, warnings)
        if isinstance(instruction, ins.From):
            stage = _StageNames()
        elif stage is None and not isinstance(instruction, ins.Arg):
            raise logical.error(
                f"the first instruction must be FROM, not {instruction.keyword}",
                hint="start the Buildfile with FROM <image> (or FROM scratch); only ARG, "
                     "comments and parser directives may come before it")
        else:
            if stage is not None:
                stage.check(instruction, warnings)
        parsed.append(instruction)
    if not parsed:
        raise BuildfileError("file with no instructions", file=file, line=1, column=1,
                             hint="a Buildfile starts with FROM <image> (or FROM scratch)")
    if stage is None:
        raise split.lines[-1].error(
            "no FROM instruction: ARG instructions alone make no build stage",
            hint="add FROM <image> (or FROM scratch) after the ARG instructions")
    return ins.Buildfile(path=file, instructions=tuple(parsed), warnings=tuple(warnings),
                         escape=split.escape)


class _StageNames:
    """The ARG and ENV names of the current stage, to warn when one name is both: the classic
    builder lets the ENV value win (BuildKit: the later declaration), a known trap."""

    def __init__(self) -> None:
        self.args: set[str] = set()
        self.envs: set[str] = set()

    def check(self, instruction: ins.Instruction, warnings: list[str]) -> None:
        pos = instruction.pos
        if isinstance(instruction, ins.Arg):
            for name, _ in instruction.pairs:
                if name in self.envs:
                    warnings.append(f"{pos.file}:{pos.line}: ARG {name} has the same name as an "
                                    f"ENV of this stage; the ENV value wins over the ARG")
                self.args.add(name)
        elif isinstance(instruction, ins.Env):
            for name, _ in instruction.pairs:
                if name in self.args:
                    warnings.append(f"{pos.file}:{pos.line}: ENV {name} has the same name as an "
                                    f"ARG of this stage; the ENV value wins over the ARG")
                self.envs.add(name)


def _parse_line(logical: LogicalLine, escape: str, warnings: list[str]) -> ins.Instruction:
    words = logical.text.split(None, 1)
    if not words:                       # lines.py drops blank lines; never index an empty split
        raise logical.error("empty instruction")
    word = words[0]
    keyword = word.upper()
    if keyword not in SUPPORTED:
        close = difflib.get_close_matches(keyword, SUPPORTED, n=1)
        raise logical.error(f"unknown instruction: {keyword}",
                            hint=f"did you mean {close[0]}?" if close else None)
    context = _Context(logical, keyword, escape, warnings)
    if not context.arguments:
        raise logical.error(f"{keyword} requires at least one argument", len(logical.text))
    tree = parse_instruction(logical, keyword=keyword, escape=escape)
    raw_flags = [(str(t), t.start_pos or 0) for t in tree.children
                 if isinstance(t, Token) and t.type == "FLAG"]
    parts = [t for t in tree.children
             if not (isinstance(t, Token) and t.type in ("FLAG", "END_OF_FLAGS"))]
    flags = check_flags(logical, keyword, raw_flags)
    return _BUILDERS[keyword](context, flags, parts)


def _command(context: _Context, rest: Token) -> ins.Command:
    maybe = decode(context.logical, str(rest), offset=rest.start_pos or 0,
                   keyword=context.keyword)
    if maybe.fell_back:
        context.warn(FALLBACK_WARNING)
    return ins.ShellForm(str(rest)) if maybe.argv is None else ins.ExecForm(maybe.argv)


def _from(context: _Context, flags: tuple[ins.Flag, ...], parts: list) -> ins.From:
    image, *rest = parts
    stage = None
    if rest:
        name = rest[-1]
        stage = str(name).lower()
        if not _STAGE_NAME.match(stage):
            raise context.logical.error(
                f"invalid stage name {str(name)!r}", name.start_pos,
                hint="stage names start with a letter and use letters, digits, '-', '_', '.'")
    return ins.From(**context.common(), image=str(image), stage_name=stage, flags=flags)


def _run(context: _Context, flags: tuple[ins.Flag, ...], parts: list) -> ins.Run:
    return ins.Run(**context.common(), command=_command(context, parts[0]), flags=flags,
                   heredocs=context.logical.heredocs)


def _cmd(context: _Context, flags: tuple[ins.Flag, ...], parts: list) -> ins.Cmd:
    return ins.Cmd(**context.common(), command=_command(context, parts[0]))


def _entrypoint(context: _Context, flags: tuple[ins.Flag, ...], parts: list) -> ins.Entrypoint:
    return ins.Entrypoint(**context.common(), command=_command(context, parts[0]))


def _add_or_copy(context: _Context, flags: tuple[ins.Flag, ...], parts: list) -> ins.Instruction:
    rest: Token = parts[0]
    offset = rest.start_pos or 0
    maybe = decode(context.logical, str(rest), offset=offset, keyword=context.keyword)
    if maybe.argv is not None:
        words = [(word, offset) for word in maybe.argv]
    else:
        if maybe.fell_back:
            context.warn(FALLBACK_WARNING)
        words = _fields(str(rest), offset)
    if len(words) < 2:
        raise context.logical.error(
            f"{context.keyword} requires at least two arguments, but only "
            f"{'one was' if words else 'none were'} provided. Destination could not be determined",
            words[0][1] if words else offset,
            hint=f"usage: {context.keyword} [flags] <src>... <dest>")
    heredocs = context.logical.heredocs if maybe.argv is None else ()
    dest, dest_offset = words[-1]
    if heredocs and re.match(r"\d*<<-?\s*[^<]", dest):
        raise context.logical.error(f"{context.keyword}: a heredoc cannot be the destination",
                                    dest_offset,
                                    hint=f"usage: {context.keyword} <<EOF <dest> (body, then EOF)")
    cls = ins.Add if context.keyword == "ADD" else ins.Copy
    return cls(**context.common(), sources=tuple(w for w, _ in words[:-1]), dest=dest,
               flags=flags, heredocs=heredocs)


def _pairs(context: _Context, parts: list) -> tuple[tuple[str, str], ...]:
    (tree,) = parts
    if tree.data == "legacy":
        key, *value = tree.children
        if not value:
            raise context.logical.error(
                f"{context.keyword} must have two arguments", key.start_pos,
                hint=f"use {context.keyword} {key}=<value> (or {context.keyword} {key} <value>)")
        return ((str(key), str(value[0])),)
    pairs = []
    for token in tree.children:
        key, _, value = str(token).partition("=")
        if not key:
            raise context.logical.error(f"{context.keyword} names can not be blank",
                                        token.start_pos)
        pairs.append((key, value))
    return tuple(pairs)


def _env(context: _Context, flags: tuple[ins.Flag, ...], parts: list) -> ins.Env:
    return ins.Env(**context.common(), pairs=_pairs(context, parts))


def _label(context: _Context, flags: tuple[ins.Flag, ...], parts: list) -> ins.Label:
    return ins.Label(**context.common(), pairs=_pairs(context, parts))


def _workdir(context: _Context, flags: tuple[ins.Flag, ...], parts: list) -> ins.Workdir:
    return ins.Workdir(**context.common(), path=str(parts[0]))


def _user(context: _Context, flags: tuple[ins.Flag, ...], parts: list) -> ins.User:
    return ins.User(**context.common(), user=str(parts[0]))


def _expose(context: _Context, flags: tuple[ins.Flag, ...], parts: list) -> ins.Expose:
    (words,) = parts
    return ins.Expose(**context.common(), ports=tuple(str(t) for t in words.children))


def _arg(context: _Context, flags: tuple[ins.Flag, ...], parts: list) -> ins.Arg:
    (words,) = parts
    pairs: list[tuple[str, str | None]] = []
    for token in words.children:
        name, equals, value = str(token).partition("=")
        if not name:
            raise context.logical.error("ARG names can not be blank", token.start_pos,
                                        hint="usage: ARG <name>[=<default>] ...")
        pairs.append((name, value if equals else None))
    return ins.Arg(**context.common(), pairs=tuple(pairs))


def _fields(text: str, base: int) -> list[tuple[str, int]]:
    """ADD/COPY/VOLUME shell form: words split on white space only, quotes and escapes left in
    place for the expander (docker classic's strings.Fields; ``COPY "a b" /d/`` is the words
    ``"a``, ``b"`` and ``/d/``, and the first then fails expansion, as in docker)."""
    return [(m.group(), base + m.start()) for m in re.finditer(r"[^ \t\n\r\f\v]+", text)]


def _volume(context: _Context, flags: tuple[ins.Flag, ...], parts: list) -> ins.Volume:
    rest: Token = parts[0]
    offset = rest.start_pos or 0
    maybe = decode(context.logical, str(rest), offset=offset, keyword=context.keyword)
    if maybe.argv is not None:
        paths = list(maybe.argv)
    else:
        if maybe.fell_back:
            context.warn(FALLBACK_WARNING)
        paths = [word for word, _ in _fields(str(rest), offset)]
    if not paths:
        raise context.logical.error("VOLUME requires at least one argument", offset,
                                    hint='usage: VOLUME <path>... or VOLUME ["<path>", ...]')
    if any(not path.strip() for path in paths):
        raise context.logical.error("VOLUME specified can not be an empty string", offset)
    return ins.Volume(**context.common(), paths=tuple(paths))


def _shell(context: _Context, flags: tuple[ins.Flag, ...], parts: list) -> ins.Shell:
    rest: Token = parts[0]
    offset = rest.start_pos or 0
    maybe = decode(context.logical, str(rest), offset=offset, keyword=context.keyword)
    if maybe.argv is None:
        advice = "JSON form needs double quotes" if maybe.fell_back else "write a JSON array"
        hint = f'{advice}: SHELL ["/bin/sh", "-c"]'
        raise context.logical.error("SHELL requires the arguments to be in JSON form", offset,
                                    hint=hint)
    if not maybe.argv:
        raise context.logical.error("SHELL requires at least one argument", offset,
                                    hint='usage: SHELL ["executable", "parameters"]')
    return ins.Shell(**context.common(), argv=maybe.argv)


def _stopsignal(context: _Context, flags: tuple[ins.Flag, ...], parts: list) -> ins.StopSignal:
    return ins.StopSignal(**context.common(), signal=str(parts[0]))


def _maintainer(context: _Context, flags: tuple[ins.Flag, ...], parts: list) -> ins.Maintainer:
    context.warn("is deprecated; use LABEL maintainer=\"<name>\" (docker still accepts it)")
    return ins.Maintainer(**context.common(), name=str(parts[0]))


def _healthcheck(context: _Context, flags: tuple[ins.Flag, ...],
                 parts: list) -> ins.Healthcheck:
    rest: Token = parts[0]
    offset = rest.start_pos or 0
    text = str(rest)
    kind = _first_word(text)
    command = text[len(kind):].lstrip(" \t\v\f\r")
    if kind.upper() == "NONE":
        if command:
            raise context.logical.error("HEALTHCHECK NONE takes no arguments",
                                        offset + len(text) - len(command))
        return ins.Healthcheck(**context.common(), command=None, flags=flags)
    if kind.upper() != "CMD":
        raise context.logical.error(f"Unknown type {kind!r} in HEALTHCHECK (try CMD)", offset,
                                    hint="usage: HEALTHCHECK [flags] CMD <command> "
                                         "or HEALTHCHECK NONE")
    if not command:
        raise context.logical.error("Missing command after HEALTHCHECK CMD", offset + len(kind),
                                    hint="usage: HEALTHCHECK [flags] CMD <command>")
    at = offset + len(text) - len(command)
    token = Token("REST", command, start_pos=at)
    return ins.Healthcheck(**context.common(), command=_command(context, token), flags=flags)


def _first_word(text: str) -> str:
    """The leading run of characters docker's parser does not take for white space."""
    end = 0
    while end < len(text) and text[end] not in " \t\v\f\r":
        end += 1
    return text[:end]


def _onbuild(context: _Context, flags: tuple[ins.Flag, ...], parts: list) -> ins.Onbuild:
    rest: Token = parts[0]
    offset = rest.start_pos or 0
    trigger = str(rest)
    nested_keyword = (trigger.split(None, 1) or [""])[0].upper()
    if nested_keyword in _NOT_TRIGGERS:
        raise context.logical.error(_NOT_TRIGGERS[nested_keyword], offset)
    nested = _parse_line(context.logical.sub(offset), context.escape, context.warnings)
    return ins.Onbuild(**context.common(), trigger=trigger, instruction=nested)


_BUILDERS: dict[str, Callable[[_Context, tuple[ins.Flag, ...], list], ins.Instruction]] = {
    "FROM": _from, "RUN": _run, "CMD": _cmd, "ENTRYPOINT": _entrypoint, "ADD": _add_or_copy,
    "COPY": _add_or_copy, "ENV": _env, "LABEL": _label, "WORKDIR": _workdir, "USER": _user,
    "EXPOSE": _expose, "ARG": _arg, "VOLUME": _volume, "SHELL": _shell, "STOPSIGNAL": _stopsignal,
    "HEALTHCHECK": _healthcheck, "ONBUILD": _onbuild, "MAINTAINER": _maintainer,
}
