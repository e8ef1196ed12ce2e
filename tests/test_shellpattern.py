"""Table tests of builder/buildfile/shellpattern.py: BuildKit's rows for its pattern helpers
(lex_test.go TestConvertShellPatternToRegex, TestReversePattern, TestReverseString) and ours
for the corners its tables leave open (Go's replace-all rules, brackets, newlines)."""

from __future__ import annotations

import pytest

from builder.buildfile.shellpattern import remove_prefix, remove_suffix, replace, reverse_pattern, to_regex


@pytest.mark.parametrize("pattern, regex", [
    pytest.param("*", "^.*", id="star"),
    pytest.param("?", "^.", id="question"),
    pytest.param(r"\*", r"^\*", id="escaped-star"),
    # every regular-expression character is escaped; \} loses its backslash
    pytest.param(r"(()[]{\}^$.\*\?|\\", r"^\(\(\)\[\]\{\}\^\$\.\*\?\|\\", id="specials"),
])
def test_to_regex(pattern: str, regex: str) -> None:
    assert to_regex(pattern, greedy=True, anchored=True) == regex


@pytest.mark.parametrize("pattern", [
    pytest.param("\\", id="lone-backslash"),
    pytest.param(r"\x", id="escaped-letter"),
    pytest.param("\\\\\\", id="three-backslashes"),
])
def test_to_regex_invalid_escape(pattern: str) -> None:
    with pytest.raises(ValueError, match="invalid escape"):
        to_regex(pattern, greedy=True, anchored=True)


def test_to_regex_shortest_and_unanchored() -> None:
    assert to_regex("a*b/c", greedy=False, anchored=False) == "a.*?b/c"


@pytest.mark.parametrize("pattern, reversed_", [
    pytest.param(r"a\*c", r"c\*a", id="escape-stays-in-front"),
    pytest.param(r"\\\ab", r"b\a\\", id="escaped-backslash"),
    # a trailing backslash escapes nothing and is reversed like any character
    pytest.param("ab\\", r"\ba", id="trailing-backslash"),
    pytest.param("👽\\🚀🖖", "🖖\\🚀👽", id="non-bmp"),
    pytest.param(r"\\b", r"b\\", id="leading-escaped-backslash"),
])
def test_reverse_pattern(pattern: str, reversed_: str) -> None:
    assert reverse_pattern(pattern) == reversed_


@pytest.mark.parametrize("value, suffix, rest", [
    # TestReverseString's rows: suffix removal mirrors code points, not UTF-8 bytes
    pytest.param("54321", "1", "5432", id="digits"),
    pytest.param("🖖🚀👽", "👽", "🖖🚀", id="non-bmp"),
])
def test_suffix_mirrors_code_points(value: str, suffix: str, rest: str) -> None:
    assert remove_suffix(value, suffix, longest=False) == rest


@pytest.mark.parametrize("value, pattern, longest, rest", [
    pytest.param("a.b.c", "*.", False, "b.c", id="prefix-shortest"),
    pytest.param("a.b.c", "*.", True, "c", id="prefix-longest"),
    pytest.param("abc", "x", False, "abc", id="prefix-no-match"),
    # bracket expressions are literal text in BuildKit
    pytest.param("abc", "[a-c]", False, "abc", id="brackets-literal"),
    pytest.param("[a-c]bc", "[a-c]", False, "bc", id="brackets-match-themselves"),
    # ? and * never match a newline (Go's regexp default)
    pytest.param("\nb", "?", False, "\nb", id="question-not-newline"),
    pytest.param("ab\ncd", "*d", True, "ab\ncd", id="star-stops-at-newline"),
])
def test_remove_prefix(value: str, pattern: str, longest: bool, rest: str) -> None:
    assert remove_prefix(value, pattern, longest=longest) == rest


@pytest.mark.parametrize("value, pattern, longest, rest", [
    pytest.param("a.b.c", ".*", False, "a.b", id="shortest"),
    pytest.param("a.b.c", ".*", True, "a", id="longest"),
    pytest.param("file.tar.gz", r"\*", False, "file.tar.gz", id="escaped-star-no-match"),
])
def test_remove_suffix(value: str, pattern: str, longest: bool, rest: str) -> None:
    assert remove_suffix(value, pattern, longest=longest) == rest


@pytest.mark.parametrize("value, pattern, replacement, every, result", [
    pytest.param("aXbXc", "X", "-", False, "a-bXc", id="first"),
    pytest.param("aXbXc", "X", "-", True, "a-b-c", id="every"),
    # a star takes the longest match, also for the first-match form
    pytest.param("a/b/c", "/*", "", False, "a", id="first-is-longest"),
    # Go skips an empty match right after a match: one replacement, not two
    pytest.param("abc", "*", "X", True, "X", id="every-star-once"),
    pytest.param("abc", "", "X", True, "XaXbXcX", id="every-empty-pattern"),
    pytest.param("", "", "X", True, "X", id="empty-value"),
    # ${v//p/r} expands Go templates in r: $0 is the match, $$ a $, other names nothing
    pytest.param("foo", "o", "[$0]", True, "f[o][o]", id="template-match"),
    pytest.param("foo", "o", "${0}", True, "foo", id="template-braced"),
    pytest.param("foo", "o", "$$", True, "f$$", id="template-dollar"),
    pytest.param("foo", "o", "<$x>", True, "f<><>", id="template-other-name"),
    pytest.param("foo", "o", "$-", True, "f$-$-", id="template-malformed"),
    pytest.param("foo", "o", "${0", True, "f${0${0", id="template-unclosed"),
    # ${v/p/r} inserts r as it is
    pytest.param("foo", "o", "[$0]", False, "f[$0]o", id="first-no-template"),
])
def test_replace(value: str, pattern: str, replacement: str, every: bool, result: str) -> None:
    assert replace(value, pattern, replacement, every=every) == result

