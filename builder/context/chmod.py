"""``ADD/COPY --chmod``: an octal mode (``0755``) or a symbolic one (``u+x,g-w``, ``a=rX``), as
BuildKit takes them.  Pure.

An octal mode replaces every copied entry's permission bits.  A symbolic mode is applied to
each entry's own bits the way chmod(1) applies it: clauses separated by commas, each
``[ugoa]*`` then one or more ``[+-=]`` followed by ``[rwxXst]*`` or one of ``u``, ``g``, ``o``
(copy that class's bits).  No ``ugoa`` means all three (the umask plays no part), and ``X``
is execute for directories and for files that are already executable by someone.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass

from builder.errors import ContextError

_CLAUSE = re.compile(r"([ugoa]*)((?:[-+=](?:[rwxXst]*|[ugo]))+)\Z")
_ACTION = re.compile(r"([-+=])([ugo]|[rwxXst]*)")
_WHO = {"u": 0o4700, "g": 0o2070, "o": 0o1007}        # the bits each class owns (with s/t)
_SHIFT = {"u": 6, "g": 3, "o": 0}


@dataclass(frozen=True)
class Chmod:
    """``octal`` for ``--chmod=0755``, else the symbolic ``clauses`` (text) to apply."""

    octal: int | None = None
    clauses: tuple[str, ...] = ()

    def apply(self, mode: int, *, is_dir: bool) -> int:
        """The permission bits (with setuid/setgid/sticky) an entry of ``mode`` gets."""
        if self.octal is not None:
            return self.octal
        bits = stat.S_IMODE(mode)
        for clause in self.clauses:
            bits = _apply_clause(clause, bits, is_dir)
        return bits


def parse_chmod(value: str) -> Chmod:
    """``--chmod``'s value; raises ContextError (BuildKit's message) when it is neither."""
    if value and re.fullmatch(r"[0-7]+", value):
        mode = int(value, 8)
        if mode <= 0o7777:
            return Chmod(octal=mode)
    clauses = tuple(value.split(","))
    if value and all(_CLAUSE.match(c) for c in clauses):
        return Chmod(clauses=clauses)
    raise ContextError(f"invalid chmod parameter: '{value}'. it should be octal string and between 0 and 07777, "
                       "or a symbolic mode such as u+x,g-w")


def _apply_clause(clause: str, bits: int, is_dir: bool) -> int:
    match = _CLAUSE.match(clause)
    assert match is not None
    who = match.group(1).replace("a", "ugo") or "ugo"
    mask = 0
    for w in set(who):
        mask |= _WHO[w]
    for op, perms in _ACTION.findall(match.group(2)):
        value = _perm_bits(perms, who, bits, is_dir) & mask
        if op == "+":
            bits |= value
        elif op == "-":
            bits &= ~value
        else:
            bits = (bits & ~mask) | value
    return bits


def _perm_bits(perms: str, who: str, bits: int, is_dir: bool) -> int:
    """The mode bits ``perms`` stands for, for every class (masked by ``who`` later)."""
    if perms in ("u", "g", "o"):
        rwx = (bits >> _SHIFT[perms]) & 0o7
        return rwx << 6 | rwx << 3 | rwx
    value = 0
    for p in perms:
        if p == "r":
            value |= 0o444
        elif p == "w":
            value |= 0o222
        elif p == "x" or (p == "X" and (is_dir or bits & 0o111)):
            value |= 0o111
        elif p == "s":
            value |= (stat.S_ISUID if "u" in who else 0) | (stat.S_ISGID if "g" in who else 0)
        elif p == "t":
            value |= stat.S_ISVTX
    return value
