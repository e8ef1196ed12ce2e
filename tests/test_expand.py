"""Table tests of builder/buildfile/expand.py (BuildKit's word expansion, §1.9).

BuildKit's own tables are tests/test_expand_buildkit.py; these rows are ours: the cases
pybuild's dispatchers lean on, the other escape character, and the exact error messages."""

from __future__ import annotations

import json

import pytest

from builder.buildfile.expand import ExpandError, expand, expand_heredoc, expand_words

ENV = {"A": "x", "EMPTY": "", "P": "80 443", "HOME": "/root", "N1": "one",
       "PATHS": "/usr/local/bin:/usr/bin", "FILE": "app.tar.gz", "URL": "http://example.com"}


@pytest.mark.parametrize("word, expected", [
    pytest.param('"build"', "build", id="dquotes-removed"),
    pytest.param("'$A'", "$A", id="squotes-literal"),
    pytest.param("$A", "x", id="plain-var"),
    pytest.param("${A}y", "xy", id="braced-var"),
    pytest.param("$Ay", "", id="longest-name"),
    pytest.param("$UNSET", "", id="unset-is-empty"),
    pytest.param("a$", "a$", id="trailing-dollar"),
    pytest.param("$.x", "$.x", id="dollar-non-name"),
    # '-' is a special parameter, never set (the classic builder kept "$-x" as it was)
    pytest.param("$-x", "x", id="dollar-special-parameter"),
    pytest.param("${UNSET:-d}", "d", id="colon-dash-unset"),
    pytest.param("${EMPTY:-d}", "d", id="colon-dash-empty"),
    pytest.param("${EMPTY-d}", "", id="dash-empty-is-set"),
    pytest.param("${UNSET-d}", "d", id="dash-unset"),
    pytest.param("${A:+p}", "p", id="colon-plus-set"),
    pytest.param("${EMPTY:+p}", "", id="colon-plus-empty"),
    pytest.param("${EMPTY+p}", "p", id="plus-empty-is-set"),
    pytest.param("${UNSET+p}", "", id="plus-unset"),
    pytest.param("${A:?boom}", "x", id="question-set"),
    # The modifier word is itself expanded and may hold quotes.
    pytest.param('${UNSET:-"$A y"}', "x y", id="nested-default"),
    pytest.param("${UNSET:-${A}}", "x", id="nested-braces"),
    pytest.param(r"\$A", "$A", id="escaped-dollar"),
    pytest.param(r"a\ b", "a b", id="escaped-space"),
    pytest.param(r"c\\", "c\\", id="escaped-escape"),
    pytest.param(r'"\$A"', "$A", id="escaped-dollar-in-dquotes"),
    # In double quotes only " $ and the escape char can be escaped; others keep the backslash.
    pytest.param(r'"a\qb"', r"a\qb", id="other-escape-in-dquotes"),
    pytest.param('"$A $HOME"', "x /root", id="vars-in-dquotes"),
    pytest.param("a'b c'd", "ab cd", id="mid-word-quotes"),
    pytest.param('""', "", id="empty-quotes"),
    # A positional parameter is every digit after the $ (the classic builder took one).
    pytest.param("$1x", "x", id="positional-one-digit"),
    pytest.param("$12x", "x", id="positional-all-digits"),
    pytest.param("${1:-x}", "x", id="positional-default"),
    pytest.param("${#}", "", id="special-braced"),
    # The pattern operators.
    pytest.param("${FILE%.*}", "app.tar", id="suffix-shortest"),
    pytest.param("${FILE%%.*}", "app", id="suffix-longest"),
    pytest.param("${FILE#*.}", "tar.gz", id="prefix-shortest"),
    pytest.param("${FILE##*.}", "gz", id="prefix-longest"),
    pytest.param("${PATHS//:/ }", "/usr/local/bin /usr/bin", id="replace-all"),
    pytest.param("${PATHS/:*/}", "/usr/local/bin", id="replace-longest"),
    pytest.param("${URL/http:/https:}", "https://example.com", id="replace-first"),
    pytest.param("${UNSET#x}", "", id="pattern-on-unset"),
    # Quotes in a pattern are removed, but unlike the shell they do not make * or ? literal:
    # only the backslash does.
    pytest.param("${FILE%'.gz'}", "app.tar", id="quoted-pattern"),
    pytest.param("${FILE#'?'}", "pp.tar.gz", id="quoted-question-still-wild"),
    pytest.param(r"${FILE#\?}", "app.tar.gz", id="escaped-question-literal"),
    # No anchors in BuildKit: # after the slash is an ordinary character.
    pytest.param("${A/#x/y}", "x", id="no-anchor"),
])
def test_expand(word: str, expected: str) -> None:
    assert expand(word, ENV) == expected


@pytest.mark.parametrize("word, expected", [
    pytest.param("`$A\\b", "$A\\b", id="escaped-dollar-backslash-literal"),
    pytest.param('"a`"b"', 'a"b', id="escaped-dquote"),
    pytest.param("a` b", "a b", id="escaped-space"),
    # A pattern escapes with a backslash whatever the escape character …
    pytest.param(r"${S%\*}", "a*b", id="pattern-backslash"),
    # … and the escape character stays in the pattern as text
    pytest.param("${S%`*}", "a*b*", id="pattern-keeps-escape-char"),
])
def test_expand_backtick_escape(word: str, expected: str) -> None:
    assert expand(word, {**ENV, "S": "a*b*"}, escape="`") == expected


@pytest.mark.parametrize("word, message", [
    pytest.param("'open", "unexpected end of statement while looking for matching single-quote",
                 id="open-single"),
    pytest.param('"open', "unexpected end of statement while looking for matching double-quote",
                 id="open-double"),
    pytest.param("${A", "syntax error: missing '}'", id="missing-brace"),
    pytest.param("${A:-x", "syntax error: missing '}'", id="missing-brace-after-word"),
    pytest.param("${", "syntax error: missing '}'", id="dollar-brace-at-end"),
    pytest.param("${}", "syntax error: bad substitution", id="empty-name"),
    pytest.param("${:-x}", "syntax error: bad substitution", id="colon-first"),
    pytest.param("${UNSET:?no way}", "UNSET: no way", id="question-unset"),
    pytest.param("${UNSET?}", "UNSET: is not allowed to be unset", id="question-unset-default"),
    pytest.param("${EMPTY:?}", "EMPTY: is not allowed to be empty", id="question-empty-default"),
    pytest.param("${A=x}", "unsupported modifier (=) in substitution", id="assign"),
    pytest.param("${A:=x}", "unsupported modifier (:=) in substitution", id="colon-assign"),
    pytest.param("${A:#x}", "unsupported modifier (:#) in substitution", id="colon-hash"),
    # ${#v} (length) is the special parameter # followed by an unknown operator
    pytest.param("${#A}", "unsupported modifier (A) in substitution", id="length"),
    pytest.param("${A/x}", "syntax error: missing '/' in ${}", id="replace-no-slash"),
    pytest.param("${A/x/y", "syntax error: missing '}'", id="replace-no-brace"),
    pytest.param(r"${A#\x}", r"invalid pattern (\x) in substitution: invalid escape '\x'",
                 id="pattern-bad-escape"),
    # a suffix pattern is reported the way it is matched: mirrored
    pytest.param(r"${A%\xy}", r"invalid pattern (y\x) in substitution: invalid escape '\x'",
                 id="suffix-pattern-bad-escape"),
])
def test_expand_errors(word: str, message: str) -> None:
    with pytest.raises(ExpandError) as caught:
        expand(word, ENV)
    # BuildKit's wording: the failing word (quoted like Go's %q), then the reason
    assert str(caught.value) == f"failed to process {json.dumps(word)}: {message}"


@pytest.mark.parametrize("text, words", [
    pytest.param('org.example.team="build" version="1"', ["org.example.team=build", "version=1"],
                 id="label-line"),
    # An unquoted variable splits into several words (EXPOSE $PORTS); quoted it does not.
    pytest.param('$P 8080 "$P"', ["80", "443", "8080", "80 443"], id="var-splits"),
    pytest.param("$EMPTY a", ["a"], id="empty-var-no-word"),
    # An empty quoted string makes no word, in both builders (pybuild once kept it).
    pytest.param('"" a', ["a"], id="quoted-empty-is-no-word"),
    pytest.param(r"a\ b c", ["a b", "c"], id="escaped-space"),
    pytest.param("x${A}y z", ["xxy", "z"], id="var-inside-word"),
    pytest.param("", [], id="empty"),
    pytest.param("  lead\ttrail  ", ["lead", "trail"], id="surrounding-space"),
    # Go's white space: NBSP separates words, a zero-width space does not.
    pytest.param("a\u00a0b c\u200bd", ["a", "b", "c\u200bd"], id="unicode-space"),
])
def test_expand_words(text: str, words: list[str]) -> None:
    assert expand_words(text, ENV) == words


def test_expand_words_backtick_escape() -> None:
    assert expand_words("a` b c\\d", ENV, escape="`") == ["a b", "c\\d"]


# -- ADD/COPY heredoc bodies (BuildKit's ExpandRaw: SkipProcessQuotes, SkipUnsetEnv) ---------------
@pytest.mark.parametrize("body, expected", [
    ("$V ${V} ${V:+set} ${V#o}", "one one set ne"),
    # quotes are plain characters: a variable in single quotes expands, the quotes stay
    ("'$V' \"$V\" 'it''s'", "'one' \"one\" 'it''s'"),
    # the escape character makes the next one literal and goes: \$ is a $, \\ a \, \a an a
    ("\\$V \\\\ \\a", "$V \\ a"),
    # a variable that is not set stays as written, operator and (expanded) word included
    ("$U ${U} ${U:-x} ${U-$V} ${U:+y} ${U/a/b} ${U//a/b}", "$U ${U} ${U:-x} ${U-one} ${U:+y} ${U/a/b} ${U/a/b}"),
    ("${E:-d} ${E-d} ${E:+s} ${E+s}", "d   s"),            # set but empty: the colon forms see it as unset
    ("price: $5 and $ alone, ${V}s\n", "price: $5 and $ alone, ones\n"),
    ("#!/bin/sh\necho \"$HOME\" '$V'\n", "#!/bin/sh\necho \"$HOME\" 'one'\n"),
])
def test_expand_heredoc(body: str, expected: str) -> None:
    assert expand_heredoc(body, {"V": "one", "E": ""}) == expected


@pytest.mark.parametrize("body, message", [
    ("${V", "missing '}'"),
    ("${V:?must be set}", None),
    ("${E:?must not be empty}", "E: must not be empty"),
])
def test_expand_heredoc_errors(body: str, message: str | None) -> None:
    if message is None:
        assert expand_heredoc(body, {"V": "one", "E": ""}) == "one"
        return
    with pytest.raises(ExpandError, match=message):
        expand_heredoc(body, {"V": "one", "E": ""})
