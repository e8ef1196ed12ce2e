"""Table tests of builder/buildfile/expand.py (docker's shell-word rules, §1.9)."""

from __future__ import annotations

import pytest

from builder.buildfile.expand import ExpandError, expand, expand_words

ENV = {"A": "x", "EMPTY": "", "P": "80 443", "HOME": "/root", "N1": "one"}


@pytest.mark.parametrize("word, expected", [
    pytest.param('"build"', "build", id="dquotes-removed"),
    pytest.param("'$A'", "$A", id="squotes-literal"),
    pytest.param("$A", "x", id="plain-var"),
    pytest.param("${A}y", "xy", id="braced-var"),
    pytest.param("$Ay", "", id="longest-name"),
    pytest.param("$UNSET", "", id="unset-is-empty"),
    pytest.param("a$", "a$", id="trailing-dollar"),
    pytest.param("$-x", "$-x", id="dollar-non-name"),
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
    pytest.param("$1x", "x", id="positional-one-digit"),
])
def test_expand(word: str, expected: str) -> None:
    assert expand(word, ENV) == expected


def test_expand_backtick_escape() -> None:
    assert expand("`$A\\b", ENV, escape="`") == "$A\\b"


@pytest.mark.parametrize("word, message", [
    pytest.param("'open", "single-quote", id="open-single"),
    pytest.param('"open', "double-quote", id="open-double"),
    pytest.param("${A", "missing '}'", id="missing-brace"),
    pytest.param("${}", "bad substitution", id="empty-name"),
    pytest.param("${UNSET:?no way}", "UNSET: no way", id="question-unset"),
    pytest.param("${EMPTY:?}", "EMPTY: is not allowed to be empty", id="question-empty-default"),
    # Pattern operators are not implemented yet: a clear error, not a wrong value.
    pytest.param("${A#x}", "unsupported modifier", id="pattern-op"),
])
def test_expand_errors(word: str, message: str) -> None:
    with pytest.raises(ExpandError, match=message):
        expand(word, ENV)


@pytest.mark.parametrize("text, words", [
    pytest.param('org.example.team="build" version="1"', ["org.example.team=build", "version=1"],
                 id="label-line"),
    # An unquoted variable splits into several words (EXPOSE $PORTS); quoted it does not.
    pytest.param('$P 8080 "$P"', ["80", "443", "8080", "80 443"], id="var-splits"),
    pytest.param("$EMPTY a", ["a"], id="empty-var-no-word"),
    pytest.param('"" a', ["", "a"], id="quoted-empty-is-a-word"),
    pytest.param(r"a\ b c", ["a b", "c"], id="escaped-space"),
    pytest.param("x${A}y z", ["xxy", "z"], id="var-inside-word"),
])
def test_expand_words(text: str, words: list[str]) -> None:
    assert expand_words(text, ENV) == words
