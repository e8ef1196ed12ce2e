"""Docker's "maybe JSON" argument form (exec form of RUN/CMD/ENTRYPOINT, ADD/COPY lists).

JSON is tried only when the arguments start with ``[``; anything that does not decode as a
JSON array (single quotes, trailing text, bad escapes…) silently falls back to the shell /
whitespace form.  A valid array holding a non-string is an error.
[docker: moby/buildkit frontend/dockerfile/parser/line_parsers.go parseMaybeJSON]
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from builder.buildfile.lines import LogicalLine

FALLBACK_WARNING = ("arguments start with '[' but are not a JSON array of strings, "
                    "so they are used as shell form (JSON form needs double quotes)")


class _NotJson(ValueError):
    pass


def _reject_constant(name: str) -> None:
    # Go's encoding/json has no NaN/Infinity: such text is "not JSON" → shell form.
    raise _NotJson(name)


@dataclass(frozen=True)
class MaybeJson:
    """``argv`` is the decoded array, or None when the text is not JSON form; ``fell_back``
    is True when the text started with ``[`` but did not decode (worth a warning)."""

    argv: tuple[str, ...] | None
    fell_back: bool


def decode(logical: LogicalLine, text: str, *, offset: int, keyword: str) -> MaybeJson:
    """Try ``text`` (found at ``offset`` in the logical line) as a JSON array of strings."""
    if not text.startswith("["):
        return MaybeJson(None, fell_back=False)
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return MaybeJson(None, fell_back=True)
    if not isinstance(value, list):
        return MaybeJson(None, fell_back=True)
    if not all(isinstance(item, str) for item in value):
        raise logical.error(
            f"{keyword}: when using JSON array syntax, arrays must be comprised of strings only",
            offset, hint='quote every element: ["echo", "1"]')
    return MaybeJson(tuple(value), fell_back=False)
