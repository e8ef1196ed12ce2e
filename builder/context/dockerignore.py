""".dockerignore: which context paths ADD/COPY never see, by docker's pattern rules.

Reading (moby/patternmatcher ignorefile.ReadAll): a UTF-8 BOM is dropped; a line *starting*
with ``#`` is a comment; lines are trimmed and blank ones skipped; ``!`` marks an exception
(re-include); each pattern goes through Go's filepath.Clean and loses a leading ``/``.

Matching (patternmatcher.MatchesOrParentMatches): Go filepath.Match per pattern (``*`` and
``?`` never match ``/``, ``[...]`` classes, ``\\`` escapes) plus ``**`` for any number of
directories (zero included).  A pattern matches a path if it matches the path or one of its
parent directories; the LAST pattern that matches decides.  A lone ``!`` is an error.

The same matcher serves ``ADD/COPY --exclude=PATTERN`` (BuildKit's syntax is docker's).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import ContextError

_BOM = "\ufeff"
_REGEX_SPECIAL = set(".+()|{}$^")


def go_clean(path: str) -> str:
    """Go's filepath.Clean on a slash path (Python keeps a leading ``//``; Go does not)."""
    cleaned = posixpath.normpath(path) if path else "."
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def read_patterns(text: str) -> list[str]:
    """The pattern lines of a .dockerignore, as ignorefile.ReadAll returns them."""
    patterns: list[str] = []
    for n, line in enumerate(text.splitlines()):
        if n == 0:
            line = line.removeprefix(_BOM)
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = go_clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append("!" + line if invert else line)
    return patterns


@dataclass(frozen=True)
class Pattern:
    text: str                       # cleaned, without the ``!``
    exclusion: bool                 # a ``!`` line: re-include what matches
    regex: re.Pattern = field(compare=False, repr=False)

    @classmethod
    def parse(cls, line: str) -> Pattern:
        """One pattern line (``!`` allowed); raises ContextError for a lone ``!`` or a bad class."""
        line = line.strip()
        exclusion = line.startswith("!")
        if exclusion:
            if len(line) == 1:
                raise ContextError('illegal exclusion pattern: "!"')
            line = line[1:]
        text = go_clean(line)
        try:
            regex = re.compile(_compile(text), re.DOTALL)
        except re.error as e:
            raise ContextError(f"syntax error in pattern {line!r}: {e}") from e
        return cls(text=text, exclusion=exclusion, regex=regex)

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


def _compile(pattern: str) -> str:
    """patternmatcher's Pattern.compile: the pattern as an anchored regular expression."""
    out = ["^"]
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if in_class:
            if ch == "]":
                in_class = False
                out.append("]")
            elif ch == "\\" and i + 1 < n:
                i += 1
                out.append(re.escape(pattern[i]))
            elif ch in "[&~|":
                out.append("\\" + ch)
            else:
                out.append(ch)
        elif ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 1
                if i + 1 < n and pattern[i + 1] == "/":
                    i += 1
                out.append(".*" if i + 1 >= n else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i + 1 < n:
                i += 1
                out.append(re.escape(pattern[i]))
            else:
                out.append("\\\\")
        elif ch == "[":
            in_class = True
            out.append("[")
            if i + 1 < n and pattern[i + 1] == "^":
                i += 1
                out.append("^")
        elif ch in _REGEX_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(re.escape(ch))
        i += 1
    if in_class:
        raise re.error("missing closing ]")
    out.append("$")
    return "".join(out)


@dataclass(frozen=True)
class PatternMatcher:
    """An ordered list of patterns; ``excluded(path)`` is docker's MatchesOrParentMatches."""

    patterns: tuple[Pattern, ...] = ()

    @classmethod
    def parse(cls, lines: list[str] | tuple[str, ...]) -> PatternMatcher:
        return cls(tuple(Pattern.parse(line) for line in lines if line.strip()))

    @property
    def has_exceptions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def excluded(self, path: str) -> bool:
        """Whether ``path`` (relative, slash-separated) is excluded."""
        path = go_clean(path)
        parent = posixpath.dirname(path)
        parents = parent.split("/") if parent else []
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue                   # cannot change the verdict
            hit = pattern.match(path)
            if not hit and parents:
                hit = any(pattern.match("/".join(parents[:i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched

    def __bool__(self) -> bool:
        return bool(self.patterns)


def load(buildfile: Path | None, context: Path) -> PatternMatcher:
    """The ignore rules of a build: ``<Buildfile path>.dockerignore`` if it exists (BuildKit),
    else ``<context>/.dockerignore``, else none."""
    candidates = [Path(f"{buildfile}.dockerignore")] if buildfile is not None else []
    candidates.append(Path(context) / ".dockerignore")
    for path in candidates:
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except FileNotFoundError:
            continue
        except OSError as e:
            raise ContextError(f"read {path}: {e.strerror}") from e
        try:
            return PatternMatcher.parse(read_patterns(text))
        except ContextError as e:
            raise ContextError(f"{path}: {e}") from e
    return PatternMatcher()
