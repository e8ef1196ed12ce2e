"""Loading grammar/buildfile.lark and running it on one logical line.

The grammar is read once per process and each parser is built once per escape character
(``functools.cache``); ``cache=True`` also lets Lark reuse its compiled tables across runs.
Every Lark exception is turned into a BuildfileError here; nothing from Lark escapes.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

from lark import Lark, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from builder.buildfile.lines import LogicalLine
from builder.errors import BuildfileError

_BACKTICK_OVERRIDES = r"""
%override ESCAPED: /`(?:[\s\S]|$)/
%override PLAIN: /[^\s"'`]/
%override KEY_PLAIN: /[^\s"'`=]/
%override DQUOTED: /"(?:[^"`]|`[\s\S])*"/
"""

_USAGE = {
    "FROM": ("FROM requires either one or three arguments",
             "usage: FROM [--platform=<platform>] <image> [AS <name>]"),
    "ENV": ("ENV needs name=value pairs", "usage: ENV <name>=<value> ... (or ENV <name> <value>)"),
    "LABEL": ("LABEL needs name=value pairs", "usage: LABEL <name>=<value> ..."),
    "EXPOSE": ("EXPOSE needs port words", "usage: EXPOSE <port>[/<protocol>] ..."),
}


@functools.cache
def grammar_text() -> str:
    """The text of buildfile.lark, from the installed package or from the source tree."""
    try:
        return (importlib.resources.files("builder.grammar") / "buildfile.lark").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        path = Path(__file__).resolve().parents[2] / "grammar" / "buildfile.lark"
        return path.read_text("utf-8")


@functools.cache
def parser(escape: str = "\\") -> Lark:
    """The LALR parser for ``escape`` (``\\`` or a backtick); built once per process."""
    text = grammar_text() + (_BACKTICK_OVERRIDES if escape == "`" else "")
    return Lark(text, parser="lalr", lexer="contextual", start="instruction",
                propagate_positions=False, maybe_placeholders=False, cache=True)


def parse_instruction(logical: LogicalLine, *, keyword: str, escape: str) -> Tree:
    """Parse a logical line whose keyword is a supported one; the text is right-stripped."""
    text = logical.text.rstrip(" \t\v\f\r")
    try:
        return parser(escape).parse(text)
    except LarkError as e:
        raise _convert(e, logical, text, keyword=keyword) from None


def _convert(error: LarkError, logical: LogicalLine, text: str, *, keyword: str) -> BuildfileError:
    """A BuildfileError pointing at the spot Lark stopped, with a message about ``keyword``."""
    offset = len(text)
    if isinstance(error, UnexpectedCharacters):
        offset = error.pos_in_stream if error.pos_in_stream is not None else offset
    elif isinstance(error, UnexpectedToken) and error.token.type != "$END":
        offset = error.token.start_pos or 0
    elif not isinstance(error, UnexpectedEOF) and not isinstance(error, UnexpectedToken):
        return logical.error(f"internal error parsing {keyword}: {error}")
    while offset < len(text) and text[offset] in " \t\v\f\r":
        offset += 1
    at = text[offset] if offset < len(text) else ""
    message, hint = _USAGE.get(keyword, (f"{keyword}: cannot parse the arguments", None))
    if at in ("'", '"'):
        message, hint = f"{keyword}: missing closing {at} quote", "quotes must be balanced"
    elif at == "" and keyword != "FROM":
        message = f"{keyword} requires at least one argument"
    elif keyword in ("ENV", "LABEL") and at:
        word = (text[offset:].split() or [at])[0]     # `at` may be white space only str.split knows
        message = f"{keyword}: can't find = in {word!r}; must be of the form name=value"
    return logical.error(message, offset, hint=hint)
