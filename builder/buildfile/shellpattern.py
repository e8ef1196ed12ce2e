"""The shell patterns of ``${v#p}`` ``${v##p}`` ``${v%p}`` ``${v%%p}`` ``${v/p/r}`` ``${v//p/r}``,
matched the way BuildKit's lexer matches them.  Pure.

A pattern is translated into a regular expression: ``*`` is any run of characters (shortest
or longest, as the operator asks), ``?`` any one character, and a backslash escapes ``*``,
``?`` or itself; ``\\}`` and ``\\/`` stand for ``}`` and ``/`` (the escape only protects them
from ending the ``${…}``).  Any other escaped character is an error.  Everything else is
literal — bracket expressions (``[a-z]``) included: BuildKit has none.  ``.`` never matches a
newline (Go's regexp default, which Python's shares).

Suffix removal mirrors the value and the pattern and removes a prefix, as BuildKit does; the
result is the same as searching from the right.  ``${v//p/r}`` follows Go's ``ReplaceAllString``:
an empty match right after another match is skipped, and ``$0`` / ``${0}`` in the replacement
is the matched text, any other ``$name`` is empty, ``$$`` is ``$`` (``${v/p/r}`` inserts the
replacement as it is).  Backslashes here are always backslashes, whatever the Buildfile's
escape character.  [docker: moby/buildkit frontend/dockerfile/shell/lex.go
convertShellPatternToRegex, trimPrefix, trimSuffix, reversePattern; Go regexp.Expand]
"""

from __future__ import annotations

import re

from builder.errors import ExpandError

_REGEX_SPECIAL = frozenset("[]{}.+()|^$")


def to_regex(pattern: str, *, greedy: bool, anchored: bool) -> str:
    """The regular expression (same text in Go's and Python's syntax) for ``pattern``.
    Raises ValueError for an escape other than ``\\*`` ``\\?`` ``\\\\`` ``\\}`` ``\\/``."""
    out = ["^"] if anchored else []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "*":
            out.append(".*" if greedy else ".*?")
        elif char == "?":
            out.append(".")
        elif char == "\\":
            following = pattern[index:index + 1]
            if following in ("}", "/"):
                continue                 # the escape only kept it inside ${…}
            if following not in ("*", "?", "\\"):
                raise ValueError(f"invalid escape '\\{following}'")
            out.append("\\" + following)
            index += 1
        elif char in _REGEX_SPECIAL:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def reverse_pattern(pattern: str) -> str:
    """``pattern`` back to front, an escape staying in front of what it escapes
    (``a\\*c`` → ``c\\*a``); a trailing lone backslash is an ordinary character here."""
    pieces = []
    index = 0
    while index < len(pattern):
        size = 2 if pattern[index] == "\\" and index + 1 < len(pattern) else 1
        pieces.append(pattern[index:index + size])
        index += size
    return "".join(reversed(pieces))


def remove_prefix(value: str, pattern: str, *, longest: bool) -> str:
    """``${v#p}`` (shortest) / ``${v##p}`` (longest): ``value`` without the matching prefix."""
    match = _compile(pattern, greedy=longest, anchored=True).search(value)
    return value if match is None else value[match.end():]


def remove_suffix(value: str, pattern: str, *, longest: bool) -> str:
    """``${v%p}`` (shortest) / ``${v%%p}`` (longest): ``value`` without the matching suffix."""
    return remove_prefix(value[::-1], reverse_pattern(pattern), longest=longest)[::-1]


def replace(value: str, pattern: str, replacement: str, *, every: bool) -> str:
    """``${v/p/r}`` (the first, longest match) or ``${v//p/r}`` (every match)."""
    regex = _compile(pattern, greedy=True, anchored=False)
    if not every:
        match = regex.search(value)
        if match is None:
            return value
        return value[:match.start()] + replacement + value[match.end():]
    out = []
    last_end = search = 0
    while search <= len(value):
        match = regex.search(value, search)
        if match is None:
            break
        out.append(value[last_end:match.start()])
        if match.end() > last_end or match.start() == 0:
            out.append(_template(replacement, match.group()))
        last_end = match.end()
        search = max(search + 1, match.end())
    out.append(value[last_end:])
    return "".join(out)


def _compile(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    try:
        return re.compile(to_regex(pattern, greedy=greedy, anchored=anchored))
    except ValueError as e:
        raise ExpandError(f"invalid pattern ({pattern}) in substitution: {e}") from None


def _template(template: str, matched: str) -> str:
    """Go's ``Regexp.Expand`` for a pattern without groups: ``$0``/``${0}`` → ``matched``,
    ``$$`` → ``$``, other ``$name``/``${name}`` → nothing, a malformed ``$`` stays."""
    out = []
    index = 0
    while (dollar := template.find("$", index)) >= 0:
        out.append(template[index:dollar])
        index = dollar + 1
        if template.startswith("$", index):
            out.append("$")
            index += 1
            continue
        brace = template.startswith("{", index)
        start = end = index + brace
        while end < len(template) and _name_char(template[end]):
            end += 1
        if end == start or (brace and not template.startswith("}", end)):
            out.append("$")              # malformed: the $ is kept as text
            continue
        index = end + brace
        if template[start:end] == "0":
            out.append(matched)
    out.append(template[index:])
    return "".join(out)


def _name_char(char: str) -> bool:
    """Go's unicode.IsLetter or unicode.IsDigit (Nd only), or ``_``."""
    return char.isalpha() or char.isdecimal() or char == "_"
