"""Physical lines → logical lines, the way docker's parser reads a Dockerfile.

Pure text processing, no Lark: BOM and CRLF removal, parser directives at the top of the
file (``# escape=``, ``# syntax=``, ``# check=``), comment lines, and escape-character line
continuations (joined with *no* separator; comment and blank lines inside a continuation are
dropped).  Each logical line keeps a map back to physical positions so that any offset into
its text can be reported as ``line:column`` with the physical line for a caret.

``# syntax=`` picks BuildKit's frontend image.  pybuild has its own parser and fetches no
frontend: Docker's own Dockerfile frontend (``docker/dockerfile`` or ``…-upstream``, with or
without ``docker.io/``, a tag and a ``@sha256:`` digest) is accepted silently; any other image
gets a warning that it is ignored.  ``# check=`` (BuildKit's build checks) is accepted and has
no effect.

Heredocs (BuildKit syntax, which pybuild adds): after a RUN/COPY/ADD line (also under ONBUILD)
in shell form, every word ``[fd]<<[-]NAME`` opens a heredoc whose body is the following raw
physical lines up to a line equal to NAME; bodies are consumed in order and are never comments
or continuations.
[docker: moby/buildkit frontend/dockerfile/parser/parser.go, directives.go; heredocsFromLine]
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from builder.buildfile.instructions import Heredoc
from builder.errors import BuildfileError

MAX_LINE_BYTES = 65535
_DIRECTIVE = re.compile(r"^[ \t]*#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_KNOWN_DIRECTIVES = ("syntax", "escape", "check")
# Docker's Dockerfile frontend images: what pybuild implements itself.  The frontend is the
# directive value up to the first space, as BuildKit reads it.
_DOCKERFILE_FRONTEND = re.compile(r"(?:docker\.io/)?docker/dockerfile(?:-upstream)?"
                                  r"(?::\w[\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?", re.ASCII)
_BLANK = " \t"


def _blank(text: str) -> bool:
    """A line of nothing but white space, Unicode's included (\\v, \\f, U+0085, U+00A0 …), as
    docker's parser (Go's unicode.IsSpace) sees it: skipped, never an instruction."""
    return not text.strip()


_HEREDOC = re.compile(r"^(\d*)<<(-?)\s*([^<]*)$", re.S)
_HEREDOC_KEYWORDS = ("RUN", "COPY", "ADD")


@dataclass(frozen=True)
class Segment:
    """Logical text from ``offset`` on comes from physical ``line`` starting at ``column``
    (0-based) of ``source_line``."""

    offset: int
    line: int
    column: int
    source_line: str


@dataclass(frozen=True)
class LogicalLine:
    """One instruction's text after joining continuations; ``text`` is left-trimmed.
    ``heredocs`` are the bodies that followed it (``end_line`` is then the last terminator)."""

    file: str
    text: str
    segments: tuple[Segment, ...]
    end_line: int
    heredocs: tuple[Heredoc, ...] = ()

    @property
    def line(self) -> int:
        return self.segments[0].line

    def locate(self, offset: int) -> tuple[int, int, str]:
        """(line, 1-based column, physical line) of ``offset`` into ``text``."""
        segment = self.segments[0]
        for candidate in self.segments:
            if candidate.offset <= offset:
                segment = candidate
        return segment.line, segment.column + (offset - segment.offset) + 1, segment.source_line

    def sub(self, offset: int) -> LogicalLine:
        """The part of this line from ``offset`` on, as its own line (ONBUILD's trigger)."""
        line, column, source_line = self.locate(offset)
        segments = [Segment(0, line, column - 1, source_line)]
        segments += [Segment(s.offset - offset, s.line, s.column, s.source_line)
                     for s in self.segments if s.offset > offset]
        return LogicalLine(self.file, self.text[offset:], tuple(segments), self.end_line,
                           self.heredocs)

    def error(self, message: str, offset: int = 0, *, hint: str | None = None) -> BuildfileError:
        line, column, source_line = self.locate(offset)
        return BuildfileError(message, file=self.file, line=line, column=column,
                              source_line=source_line, hint=hint)


@dataclass(frozen=True)
class LineSplit:
    """The result of reading a Buildfile's lines: logical lines, the escape character in
    effect, the directives found (lower-case key → value) and warnings."""

    lines: tuple[LogicalLine, ...]
    escape: str
    directives: dict[str, str]
    warnings: tuple[str, ...]


def _is_comment(line: str) -> bool:
    return line.lstrip(_BLANK).startswith("#")


def _continuation(escape: str) -> re.Pattern[str]:
    e = re.escape(escape)
    return re.compile(rf"([^{e}]){e}[ \t]*$|^{e}[ \t]*$")


def _physical_lines(text: str, file: str) -> list[str]:
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    result = []
    for number, line in enumerate(lines, start=1):
        if line.endswith("\r"):
            line = line[:-1]
        if len(line.encode("utf-8", "surrogatepass")) > MAX_LINE_BYTES:
            raise BuildfileError(f"line is longer than the maximum of {MAX_LINE_BYTES} bytes",
                                 file=file, line=number, column=1, source_line=line[:80])
        result.append(line)
    return result


def _read_directives(lines: list[str], file: str) -> dict[str, tuple[str, int]]:
    """Directives at the top of the file (key → value, line), up to the first line that is
    not a known one (later directive-looking lines are plain comments).  Duplicates and a bad
    escape token are errors."""
    found: dict[str, tuple[str, int]] = {}
    for index, line in enumerate(lines):
        match = _DIRECTIVE.match(line)
        if not match or match.group(1).lower() not in _KNOWN_DIRECTIVES:
            break
        key, value = match.group(1).lower(), match.group(2)
        column = match.start(1) + 1
        if key in found:
            raise BuildfileError(f"only one {key} parser directive can be used", file=file,
                                 line=index + 1, column=column, source_line=line)
        if key == "escape" and value not in ("\\", "`"):
            raise BuildfileError(f"invalid escape token '{value}' does not match ` or \\",
                                 file=file, line=index + 1, column=match.start(2) + 1,
                                 source_line=line, hint="use `# escape=\\` or `# escape=``")
        found[key] = (value, index + 1)
    return found


def _syntax_warning(value: str, *, file: str, line: int) -> str | None:
    """None for Docker's own Dockerfile frontend; else the warning that it is ignored."""
    frontend = value.split(" ", 1)[0]
    if _DOCKERFILE_FRONTEND.fullmatch(frontend):
        return None
    return (f"{file}:{line}: the syntax directive names the frontend {frontend}; pybuild "
            f"ignores it and reads the file with its own Dockerfile parser")


def split_lines(text: str, *, file: str) -> LineSplit:
    """Split a Buildfile into logical lines (see the module docstring)."""
    lines = _physical_lines(text, file)
    found = _read_directives(lines, file)
    directives = {key: value for key, (value, _) in found.items()}
    escape = directives.get("escape", "\\")
    continues = _continuation(escape)
    warnings: list[str] = []
    if "syntax" in found:
        value, number = found["syntax"]
        if warning := _syntax_warning(value, file=file, line=number):
            warnings.append(warning)
    logical: list[LogicalLine] = []
    index = 0
    while index < len(lines):
        physical = lines[index]
        index += 1
        if _is_comment(physical):
            continue   # directives are comments too, once read
        trimmed = physical.lstrip(_BLANK)
        start = len(physical) - len(trimmed)
        first_line = index
        text, ended = _trim_continuation(trimmed, continues)
        if ended and _blank(text):
            continue
        segments = [Segment(0, first_line, start, physical)]
        empty_continuation = False
        while not ended and index < len(lines):
            physical = lines[index]
            index += 1
            if _is_comment(physical):
                continue
            if _blank(physical):
                empty_continuation = True
                continue
            segments.append(Segment(len(text), index, 0, physical))
            more, ended = _trim_continuation(physical, continues)
            text += more
        if empty_continuation:
            warnings.append(f"{file}:{first_line}: empty continuation line "
                            f"(docker warns and will make this an error)")
        if _blank(text):
            continue   # e.g. a lone continuation at the end of the file
        line = LogicalLine(file, text, tuple(segments), end_line=segments[-1].line)
        heredocs = []
        for offset, heredoc in _heredoc_words(text, escape):
            body, index = _heredoc_body(lines, index, heredoc)
            if body is None:
                raise line.error(
                    f"unterminated heredoc: no line {heredoc.name!r} before the end of the file",
                    offset, hint=f"end the heredoc with a line that holds only {heredoc.name}")
            heredocs.append(Heredoc(heredoc.name, body, heredoc.expand, heredoc.strip_tabs,
                                    heredoc.fd))
        if heredocs:
            line = LogicalLine(file, text, tuple(segments), end_line=index,
                               heredocs=tuple(heredocs))
        logical.append(line)
    return LineSplit(tuple(logical), escape, directives, tuple(warnings))


def _shell_words(text: str, escape: str) -> list[tuple[str, int]]:
    """Raw words (quotes and escapes kept) with their offsets, split as a shell would."""
    words: list[tuple[str, int]] = []
    index, start, quote = 0, -1, ""
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
            elif char == escape and quote == '"':
                index += 1
        elif char in " \t\v\f\r\n":
            if start >= 0:
                words.append((text[start:index], start))
                start = -1
        else:
            if start < 0:
                start = index
            if char in "'\"":
                quote = char
            elif char == escape:
                index += 1
        index += 1
    if start >= 0:
        words.append((text[start:], start))
    return words


def _unquote(word: str, escape: str) -> tuple[str, bool]:
    """A heredoc name without its quotes and escapes; True when any part was quoted."""
    result, quoted, index, quote = [], False, 0, ""
    while index < len(word):
        char = word[index]
        if quote:
            if char == quote:
                quote = ""
            elif char == escape and quote == '"' and index + 1 < len(word) \
                    and word[index + 1] in ('"', "$", escape):
                index += 1
                result.append(word[index])
            else:
                result.append(char)
        elif char in "'\"":
            quote, quoted = char, True
        elif char == escape and index + 1 < len(word):
            index += 1
            result.append(word[index])
        else:
            result.append(char)
        index += 1
    return "".join(result), quoted


def _heredoc_words(text: str, escape: str) -> list[tuple[int, Heredoc]]:
    """The heredocs a logical line opens (content still empty), with their word offsets:
    only for RUN/COPY/ADD (possibly under ONBUILD) whose arguments are not a JSON array."""
    if "<<" not in text:
        return []
    words = _shell_words(text, escape)
    first = 0
    if words and words[0][0].upper() == "ONBUILD":
        first = 1
    if len(words) <= first or words[first][0].upper() not in _HEREDOC_KEYWORDS:
        return []
    first += 1
    while first < len(words) and words[first][0].startswith("--"):
        first += 1
        if words[first - 1][0] == "--":
            break
    if first < len(words):
        rest = text[words[first][1]:].rstrip(" \t\v\f\r")
        if rest.startswith("["):
            try:
                if isinstance(json.loads(rest), list):
                    return []
            except (ValueError, RecursionError):
                pass
    found = []
    for word, offset in words[first:]:
        match = _HEREDOC.match(word)
        if not match or not match.group(3):
            continue
        name, quoted = _unquote(match.group(3), escape)
        if not name:
            continue
        fd = int(match.group(1)) if match.group(1) else None
        found.append((offset, Heredoc(name, "", expand=not quoted,
                                      strip_tabs=match.group(2) == "-", fd=fd)))
    return found


def _heredoc_body(lines: list[str], index: int, heredoc: Heredoc) -> tuple[str | None, int]:
    """(body, next index) of the heredoc starting at ``lines[index]``; body is None when the
    terminator never comes.  With ``<<-`` leading tabs leave both the check and the body."""
    body: list[str] = []
    while index < len(lines):
        physical = lines[index]
        index += 1
        if heredoc.strip_tabs:
            physical = physical.lstrip("\t")
        if physical == heredoc.name:
            return "".join(line + "\n" for line in body), index
        body.append(physical)
    return None, index


def _trim_continuation(line: str, continues: re.Pattern[str]) -> tuple[str, bool]:
    """Remove a trailing continuation escape; returns (text, True if the instruction ends)."""
    match = continues.search(line)
    if not match:
        return line, True
    return line[:match.start()] + (match.group(1) or ""), False
