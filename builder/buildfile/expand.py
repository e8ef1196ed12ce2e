"""Word expansion for the instructions that take it: quotes, the escape character and
``$VAR``, exactly as BuildKit's lexer does them.

Pure functions over strings (no positions): an ExpandError says ``failed to process "WORD":
REASON`` like BuildKit, and the caller wraps it into a BuildfileError carrying the
instruction's position.  Rules [docker: moby/buildkit frontend/dockerfile/shell/lex.go]:

* ``'…'`` is literal (it cannot hold ``'``); ``"…"`` expands variables, and the escape
  character in it only escapes ``"``, ``$`` and itself (otherwise it stays); outside quotes
  the escape character makes the next character literal (a trailing one is dropped).  Quotes
  are removed from the result.
* ``$name`` / ``${name}``.  A name is letters, digits and ``_``; a name starting with a digit
  is all the digits that follow (``$123`` is one positional parameter); ``@ * # ? - $ ! 0``
  are one-character special parameters.  Positional and special parameters are never set in
  a Buildfile, so they expand to nothing (``${1:-x}`` is ``x``).  Unset variables expand to
  nothing.  ``$`` followed by anything else is a literal ``$``.
* ``${v-w}`` ``${v:-w}`` ``${v+w}`` ``${v:+w}`` ``${v?m}`` ``${v:?m}`` (the colon forms treat an
  empty value as unset; ``?`` fails with "v: m", or "v: is not allowed to be unset/empty");
  ``${v#p}`` ``${v##p}`` ``${v%p}`` ``${v%%p}`` ``${v/p/r}`` ``${v//p/r}`` with the patterns of
  shellpattern.py.  The word after the operator is itself expanded (quotes, variables); for
  the pattern operators its escapes are kept for the pattern to read.  ``${:…}``, ``${}``,
  ``${{`` are "bad substitution"; any other operator (``${v=w}``, ``${v:#p}``, ``${#v}``) is an
  "unsupported modifier"; a ``${`` that never closes is "missing '}'".
* Word splitting (``expand_words``): unquoted white space separates words, also white space
  that an unquoted variable produced; quoted text never splits, and empty words are dropped
  (``"" a`` is one word).

BuildKit's test tables (envVarTest, wordsTest, lex_test.go) are tests/test_expand_buildkit.py.
One deliberate difference: ``${name`` cut off right after the name says "missing '}'" where
BuildKit reports an "unsupported modifier" named by Go's end-of-input marker.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from builder.buildfile import shellpattern
from builder.errors import ExpandError

_SPECIAL_PARAMETERS = frozenset("@*#?-$!0")
_OPERATORS = frozenset("+-?#%")
# Go's unicode.IsSpace: the ASCII blanks, U+0085, U+00A0 and Unicode's White_Space.
_SPACE = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
                   + "".join(chr(c) for c in range(0x2000, 0x200B)))


def expand(word: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """One word with quotes removed, escapes processed and variables substituted."""
    return _Lexer(word, env, escape).run()[0]


def expand_heredoc(body: str, env: Mapping[str, str]) -> str:
    """An ADD/COPY heredoc body whose delimiter is unquoted, as BuildKit expands it
    (``ExpandRaw``: its lexer with ``SkipProcessQuotes`` and ``SkipUnsetEnv``, escape ``\\``):
    quotes are plain characters (``'$V'`` expands), the escape character makes the next one
    literal (and goes), and a variable that is not set stays as written (``${U:-x}`` too,
    with its word expanded)."""
    return _Lexer(body, env, "\\", skip_quotes=True, keep_unset=True).run()[0]


def expand_words(text: str, env: Mapping[str, str], *, escape: str = "\\") -> list[str]:
    """Like the shell: expand ``text`` and split it into words, where whitespace produced by
    an unquoted variable also separates words (``EXPOSE $PORTS`` with ``PORTS="80 443"``)."""
    return _Lexer(text, env, escape).run()[1]


class _Words:
    """Collects the words of ``expand_words``: white space ends a word that has text."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.current = ""

    def add_raw(self, text: str) -> None:
        """Text that never splits (quoted or escaped)."""
        self.current += text

    def add_unquoted(self, text: str) -> None:
        for char in text:
            if char not in _SPACE:
                self.current += char
            elif self.current:
                self.words.append(self.current)
                self.current = ""

    def done(self) -> list[str]:
        if self.current:
            self.words.append(self.current)
        return self.words


class _Lexer:
    """One pass over ``text``.  ``raw_escapes`` (inside a pattern operator's word) keeps each
    escape character in the result beside the character it escapes.  ``skip_quotes`` makes
    quotes plain characters; ``keep_unset`` writes an unset variable back as it was written
    (BuildKit's SkipProcessQuotes and SkipUnsetEnv, for heredoc bodies)."""

    def __init__(self, text: str, env: Mapping[str, str], escape: str, *,
                 skip_quotes: bool = False, keep_unset: bool = False) -> None:
        self.text = text
        self.env = env
        self.escape = escape
        self.index = 0
        self.raw_escapes = False
        self.skip_quotes = skip_quotes
        self.keep_unset = keep_unset

    def run(self) -> tuple[str, list[str]]:
        """(the expanded word, its words); errors name the text like BuildKit's."""
        try:
            return self._until("", raw_escapes=False)
        except ExpandError as e:
            raise ExpandError(f"failed to process {json.dumps(self.text, ensure_ascii=False)}: "
                              f"{e}") from None

    def _peek(self) -> str:
        """The next character, or "" at the end."""
        return self.text[self.index:self.index + 1]

    def _next(self) -> str:
        char = self._peek()
        self.index += len(char)
        return char

    def _until(self, stop: str, *, raw_escapes: bool) -> tuple[str, list[str]]:
        """Process up to ``stop`` (consumed; "" means the end of the text)."""
        outer, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            result: list[str] = []
            words = _Words()
            while char := self._peek():
                if char == stop:
                    self.index += 1
                    return "".join(result), words.done()
                if char == "$":
                    value = self._dollar()
                    words.add_unquoted(value)
                elif char in ("'", '"') and not self.skip_quotes:
                    value = self._single_quoted() if char == "'" else self._double_quoted()
                    words.add_raw(value)
                else:
                    self.index += 1
                    value = char
                    if char == self.escape:
                        value = self._next()
                        if self.raw_escapes:
                            value = char + value
                        words.add_raw(value)
                    else:
                        words.add_unquoted(value)
                result.append(value)
            if stop:
                raise ExpandError(f"unexpected end of statement while looking for matching {stop}")
            return "".join(result), words.done()
        finally:
            self.raw_escapes = outer

    def _single_quoted(self) -> str:
        end = self.text.find("'", self.index + 1)
        if end < 0:
            raise ExpandError("unexpected end of statement while looking for matching single-quote")
        value, self.index = self.text[self.index + 1:end], end + 1
        return value

    def _double_quoted(self) -> str:
        self.index += 1
        out: list[str] = []
        while char := self._peek():
            if char == '"':
                self.index += 1
                return "".join(out)
            if char == "$":
                out.append(self._dollar())
                continue
            self.index += 1
            if char == self.escape:
                if self.raw_escapes:
                    out.append(char)
                if self._peek() in ('"', "$", self.escape) and self._peek():
                    char = self._next()
                elif not self._peek():
                    continue             # a trailing escape; the quote is unterminated
            out.append(char)
        raise ExpandError("unexpected end of statement while looking for matching double-quote")

    def _name(self) -> str:
        start = self.index
        first = self._peek()
        if first.isdecimal():
            while self._peek().isdecimal():
                self.index += 1
        elif first and first in _SPECIAL_PARAMETERS:
            self.index += 1
        else:
            while (char := self._peek()) and (char.isalpha() or char.isdecimal() or char == "_"):
                self.index += 1
        return self.text[start:self.index]

    def _lookup(self, name: str) -> str | None:
        """The variable's value, None when unset (the one place ``env`` is read)."""
        return self.env.get(name)

    def _dollar(self) -> str:
        """From a ``$``: the substituted value (or a literal ``$``)."""
        self.index += 1
        if self._peek() != "{":
            name = self._name()
            if not name:
                return "$"
            value = self._lookup(name)
            return "$" + name if value is None and self.keep_unset else value or ""
        self.index += 1
        if not self._peek():
            raise ExpandError("syntax error: missing '}'")
        if self._peek() in "{}:":
            raise ExpandError("syntax error: bad substitution")
        name = self._name()
        operator = self._next()
        if operator == "}":
            value = self._lookup(name)
            return f"${{{name}}}" if value is None and self.keep_unset else value or ""
        if operator == "/":
            return self._replace(name)
        if not operator:
            raise ExpandError("syntax error: missing '}'")
        colon = operator == ":"
        if colon:
            operator = self._next()
            if operator in ("#", "%"):
                raise ExpandError(f"unsupported modifier (:{operator}) in substitution")
        elif operator not in _OPERATORS:
            raise ExpandError(f"unsupported modifier ({operator}) in substitution")
        word = self._word("}", raw_escapes=operator in ("#", "%"), missing="'}'")
        value = self._lookup(name)
        if value is None and self.keep_unset:
            return f"${{{name}{':' if colon else ''}{operator}{word}}}"
        unset = value is None or (colon and value == "")
        match operator:
            case "-":
                return word if unset else value or ""
            case "+":
                return "" if unset else word
            case "?":
                if unset:
                    default = "is not allowed to be " + ("unset" if value is None else "empty")
                    raise ExpandError(f"{name}: {word or default}")
                return value or ""
            case "#" | "%":
                longest = word.startswith(operator)
                pattern = word[1:] if longest else word
                trim = shellpattern.remove_prefix if operator == "#" else shellpattern.remove_suffix
                return trim(value or "", pattern, longest=longest)
        raise ExpandError(f"unsupported modifier (:{operator}) in substitution")

    def _replace(self, name: str) -> str:
        """After ``${name/``: ``${v/p/r}`` or ``${v//p/r}``."""
        every = self._peek() == "/"
        if every:
            self.index += 1
        pattern = self._word("/", raw_escapes=True, missing="'/' in ${}")
        replacement = self._word("}", raw_escapes=True, missing="'}'")
        value = self._lookup(name)
        if value is None and self.keep_unset:
            return f"${{{name}/{pattern}/{replacement}}}"       # BuildKit writes one / for // too
        return shellpattern.replace(value or "", pattern, replacement, every=every)

    def _word(self, stop: str, *, raw_escapes: bool, missing: str) -> str:
        """An operator's word up to ``stop``; running off the end is "missing …"."""
        try:
            return self._until(stop, raw_escapes=raw_escapes)[0]
        except ExpandError:
            if self._peek():
                raise
            raise ExpandError(f"syntax error: missing {missing}") from None
