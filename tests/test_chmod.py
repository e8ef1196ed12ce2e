"""``--chmod`` values: octal replaces the bits, symbolic modes apply to each entry's own bits
the way chmod(1) does (context/chmod.py)."""

from __future__ import annotations

import pytest

from builder.context.chmod import Chmod, parse_chmod
from builder.errors import ContextError


@pytest.mark.parametrize("value, mode, is_dir, want", [
    pytest.param("0755", 0o600, False, 0o755, id="octal-replaces"),
    pytest.param("4755", 0o600, False, 0o4755, id="octal-setuid"),
    pytest.param("u+x", 0o644, False, 0o744, id="user-add"),
    pytest.param("g-r,o-r", 0o644, False, 0o600, id="two-clauses"),
    # no class letter: all three (no umask)
    pytest.param("+x", 0o640, False, 0o751, id="all-classes"),
    pytest.param("a=r", 0o777, False, 0o444, id="set-exactly"),
    pytest.param("go=", 0o755, True, 0o700, id="clear-group-other"),
    # X: execute only for directories and files someone may already execute
    pytest.param("a+X", 0o644, False, 0o644, id="capital-x-plain-file"),
    pytest.param("a+X", 0o744, False, 0o755, id="capital-x-executable-file"),
    pytest.param("a+X", 0o644, True, 0o755, id="capital-x-directory"),
    # copying another class's bits
    pytest.param("g=u", 0o740, False, 0o770, id="copy-user-to-group"),
    pytest.param("u+s,+t", 0o755, False, 0o5755, id="setuid-and-sticky"),
    pytest.param("u=rw,g=r,o=", 0o777, False, 0o640, id="three-sets"),
])
def test_apply(value, mode, is_dir, want):
    assert parse_chmod(value).apply(mode, is_dir=is_dir) == want


@pytest.mark.parametrize("value", ["", "8", "17777", "u", "u+q", "z+x", "u+x,", "u +x", "0x755"])
def test_refused(value):
    with pytest.raises(ContextError, match="invalid chmod parameter"):
        parse_chmod(value)


def test_octal_and_symbolic_are_told_apart():
    assert parse_chmod("644") == Chmod(octal=0o644)
    assert parse_chmod("u+x") == Chmod(clauses=("u+x",))
