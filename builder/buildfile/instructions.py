"""Typed Buildfile instructions: what the parser produces and the planner consumes.

All are frozen dataclasses.  Arguments are kept *raw* (quotes and ``$VAR`` untouched) where
docker substitutes variables at dispatch time (ENV, LABEL, WORKDIR, USER, EXPOSE, ADD/COPY,
FROM): the value of a variable depends on earlier steps, so expand.py does it during planning.
RUN/CMD/ENTRYPOINT text is never expanded by the builder (the shell does it at run time).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Position:
    """Where an instruction (or part of one) starts in its Buildfile; lines and columns are 1-based.

    ``source_line`` is the physical line at ``line`` (without its newline), used to draw a caret.
    ``end_line`` is the last physical line of the instruction (continuations included).
    """

    file: str
    line: int
    column: int
    source_line: str = ""
    end_line: int = 0


@dataclass(frozen=True)
class Flag:
    """A builder flag such as ``--chown=1:1``; ``value`` is None for a bare ``--link``.
    ``pos`` is where the flag starts (for errors about its value)."""

    name: str
    value: str | None
    pos: Position | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ShellForm:
    """``RUN echo hi``: the text after the keyword, continuations joined as docker joins them."""

    text: str


@dataclass(frozen=True)
class ExecForm:
    """``RUN ["echo", "hi"]``: the decoded JSON array."""

    argv: tuple[str, ...]


Command = ShellForm | ExecForm


@dataclass(frozen=True)
class Instruction:
    """Common part.  ``keyword`` is upper-case (``RUN``); ``original`` is the logical line as
    docker sees it after joining continuations and dropping comment lines (keyword included)."""

    pos: Position
    keyword: str
    original: str


@dataclass(frozen=True)
class From(Instruction):
    image: str                      # raw, e.g. "pbtest/busybox:base" or "scratch"
    stage_name: str | None = None   # from "FROM x AS name", lower-cased
    flags: tuple[Flag, ...] = ()


@dataclass(frozen=True)
class Run(Instruction):
    command: Command
    flags: tuple[Flag, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()     # bodies of <<EOF words in the shell-form text


@dataclass(frozen=True)
class Cmd(Instruction):
    command: Command


@dataclass(frozen=True)
class Entrypoint(Instruction):
    command: Command


@dataclass(frozen=True)
class Add(Instruction):
    sources: tuple[str, ...]        # raw words (JSON form already decoded); "<<EOF" names a heredoc
    dest: str
    flags: tuple[Flag, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True)
class Copy(Instruction):
    sources: tuple[str, ...]
    dest: str
    flags: tuple[Flag, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True)
class Env(Instruction):
    """``ENV K=V K2=V2`` or legacy ``ENV K V W``: (key, raw value) pairs, quotes not yet removed."""

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Label(Instruction):
    pairs: tuple[tuple[str, str], ...]   # raw, quotes not yet removed


@dataclass(frozen=True)
class Workdir(Instruction):
    path: str                       # raw


@dataclass(frozen=True)
class User(Instruction):
    user: str                       # raw


@dataclass(frozen=True)
class Expose(Instruction):
    ports: tuple[str, ...]          # raw words


@dataclass(frozen=True)
class Heredoc:
    """``<<EOF`` … ``EOF``: ``name`` is the delimiter word; ``expand`` is False when any part
    of the delimiter was quoted; ``strip_tabs`` for ``<<-``; ``fd`` is the optional number
    before ``<<`` (``3<<EOF``)."""

    name: str
    content: str
    expand: bool = True
    strip_tabs: bool = False
    fd: int | None = None


@dataclass(frozen=True)
class Arg(Instruction):
    """``ARG a b=1 c=``: (name, raw default or None when no ``=``)."""

    pairs: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class Volume(Instruction):
    paths: tuple[str, ...]          # raw words (JSON form decoded)


@dataclass(frozen=True)
class Shell(Instruction):
    argv: tuple[str, ...]           # SHELL must be JSON


@dataclass(frozen=True)
class StopSignal(Instruction):
    signal: str                     # raw


@dataclass(frozen=True)
class Healthcheck(Instruction):
    """``HEALTHCHECK NONE`` (command None) or ``HEALTHCHECK [flags] CMD …``."""

    command: Command | None
    flags: tuple[Flag, ...] = ()


@dataclass(frozen=True)
class Onbuild(Instruction):
    """``ONBUILD <instruction>``: ``trigger`` is the nested instruction's text, as docker keeps it
    in the config; ``instruction`` is its parse (positions inside the ONBUILD line)."""

    trigger: str
    instruction: Instruction


@dataclass(frozen=True)
class Maintainer(Instruction):
    name: str


Any = (From | Run | Cmd | Entrypoint | Add | Copy | Env | Label | Workdir | User | Expose | Arg | Volume
       | Shell | StopSignal | Healthcheck | Onbuild | Maintainer)


@dataclass(frozen=True)
class Buildfile:
    """A parsed Buildfile: its path (as given) and instructions in order.

    ``warnings`` are ``FILE:LINE: message`` strings for accepted-but-dubious input (a JSON
    form that fell back to shell form, an ignored ``# syntax=`` directive, …)."""

    path: str
    instructions: tuple[Instruction, ...]
    warnings: tuple[str, ...] = ()
    escape: str = "\\"             # the escape character (``# escape=`` directive)
