"""Buildfile text → typed instructions (instructions.py).

Pipeline: lines.py (physical → logical lines) → keyword check (supported / not yet
supported / unknown) → grammar.py (Lark tree of one instruction) → one small builder per
instruction here.  Every failure is a BuildfileError with file, line, column and caret.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path

from lark import Token

from builder.buildfile import instructions as ins
from builder.buildfile.flags import check_flags
from builder.buildfile.grammar import parse_instruction, parse_words
from builder.buildfile.json_form import FALLBACK_WARNING, decode
from builder.buildfile.lines import LogicalLine, split_lines
from builder.errors import BuildfileError, UsageError

SUPPORTED = ("FROM", "RUN", "CMD", "ENTRYPOINT", "ADD", "COPY", "ENV", "LABEL", "WORKDIR",
             "USER", "EXPOSE")
NOT_YET = ("ARG", "VOLUME", "SHELL", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD", "MAINTAINER")
_STAGE_NAME = re.compile(r"[a-z][a-z0-9-_.]*\Z")


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

    def common(self) -> dict[str, object]:
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
    parsed = [_parse_line(logical, split.escape, warnings) for logical in split.lines]
    if not parsed:
        raise BuildfileError("file with no instructions", file=file, line=1, column=1,
                             hint="a Buildfile starts with FROM <image> (or FROM scratch)")
    first = parsed[0]
    if not isinstance(first, ins.From):
        raise split.lines[0].error(f"the first instruction must be FROM, not {first.keyword}",
                                   hint="start the Buildfile with FROM <image> (or FROM scratch)")
    return ins.Buildfile(path=file, instructions=tuple(parsed), warnings=tuple(warnings),
                         escape=split.escape)


def _parse_line(logical: LogicalLine, escape: str, warnings: list[str]) -> ins.Instruction:
    word = logical.text.split(None, 1)[0]
    keyword = word.upper()
    if keyword in NOT_YET:
        raise logical.error(f"{keyword} is not supported by pybuild yet",
                            hint="supported: " + ", ".join(SUPPORTED))
    if keyword not in SUPPORTED:
        close = difflib.get_close_matches(keyword, SUPPORTED + NOT_YET, n=1)
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
    return ins.Run(**context.common(), command=_command(context, parts[0]), flags=flags)


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
        words = parse_words(context.logical, str(rest), base=offset, keyword=context.keyword,
                            escape=context.escape)
    if len(words) < 2:
        raise context.logical.error(
            f"{context.keyword} requires at least two arguments, but only "
            f"{'one was' if words else 'none were'} provided. Destination could not be determined",
            words[0][1] if words else offset,
            hint=f"usage: {context.keyword} [flags] <src>... <dest>")
    cls = ins.Add if context.keyword == "ADD" else ins.Copy
    return cls(**context.common(), sources=tuple(w for w, _ in words[:-1]), dest=words[-1][0],
               flags=flags)


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


_BUILDERS: dict[str, Callable[[_Context, tuple[ins.Flag, ...], list], ins.Instruction]] = {
    "FROM": _from, "RUN": _run, "CMD": _cmd, "ENTRYPOINT": _entrypoint, "ADD": _add_or_copy,
    "COPY": _add_or_copy, "ENV": _env, "LABEL": _label, "WORKDIR": _workdir, "USER": _user,
    "EXPOSE": _expose,
}
