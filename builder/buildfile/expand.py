"""Docker-style word processing for the planner: remove quotes, expand ``$VAR``.

Pure functions over strings (no positions): the caller wraps an ExpandError into a
BuildfileError carrying the instruction's position.  Rules [docker: moby/buildkit
frontend/dockerfile/shell/lex.go]:

* ``'…'`` is literal (no escapes, no variables); ``"…"`` expands variables and the escape
  character only escapes ``"``, ``$`` and itself; outside quotes the escape character makes
  the next character literal.  Quotes are removed from the result.
* ``$name`` / ``${name}``; ``${v:-w}`` ``${v-w}`` ``${v:+w}`` ``${v+w}`` ``${v:?m}`` ``${v?m}``;
  ``w`` may itself contain quotes and variables.  Unset variables expand to ``""``.
  ``$`` not followed by a name is a literal ``$``.
"""

from __future__ import annotations

from collections.abc import Mapping

from builder.errors import ExpandError


def expand(word: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """One word with quotes removed, escapes processed and variables substituted."""
    return "".join(_Lexer(word, env, escape, split=False).words())


def expand_words(text: str, env: Mapping[str, str], *, escape: str = "\\") -> list[str]:
    """Like the shell: expand ``text`` and split it into words, where whitespace produced by
    an unquoted variable also separates words (``EXPOSE $PORTS`` with ``PORTS="80 443"``)."""
    return _Lexer(text, env, escape, split=True).words()


class _Lexer:
    """One pass over ``text``; ``split`` turns unquoted whitespace into word boundaries."""

    def __init__(self, text: str, env: Mapping[str, str], escape: str, *, split: bool) -> None:
        self.text = text
        self.env = env
        self.escape = escape
        self.split = split
        self.index = 0

    def _peek(self) -> str:
        return self.text[self.index] if self.index < len(self.text) else ""

    def _next(self) -> str:
        ch = self._peek()
        self.index += 1
        return ch

    def words(self, stop: str = "") -> list[str]:
        """Process up to ``stop`` (consumed) or the end; returns the word list."""
        words: list[str] = []
        current: list[str] = []
        started = False          # a quoted "" still makes a word
        while self.index < len(self.text):
            ch = self._next()
            if stop and ch == stop:
                break
            if ch == "'":
                current.append(self._single_quoted())
                started = True
            elif ch == '"':
                current.append(self._double_quoted())
                started = True
            elif ch == "$":
                value = self._dollar()
                if not self.split:
                    current.append(value)
                    continue
                for piece in value:           # unquoted expansion splits like literal text
                    if piece.isspace():
                        if current or started:
                            words.append("".join(current))
                        current, started = [], False
                    else:
                        current.append(piece)
                        started = True
            elif ch == self.escape:
                if self.index < len(self.text):
                    current.append(self._next())
                    started = True
            elif self.split and ch.isspace():
                if current or started:
                    words.append("".join(current))
                current, started = [], False
            else:
                current.append(ch)
                started = True
        else:
            if stop:
                raise ExpandError(f"missing '{stop}'")
        if current or started or not self.split:
            words.append("".join(current))
        return words

    def _single_quoted(self) -> str:
        end = self.text.find("'", self.index)
        if end < 0:
            raise ExpandError("unexpected end of statement while looking for matching single-quote")
        value, self.index = self.text[self.index:end], end + 1
        return value

    def _double_quoted(self) -> str:
        out: list[str] = []
        while True:
            if self.index >= len(self.text):
                raise ExpandError(
                    "unexpected end of statement while looking for matching double-quote")
            ch = self._next()
            if ch == '"':
                return "".join(out)
            if ch == "$":
                out.append(self._dollar())
            elif ch == self.escape and self._peek() in ('"', "$", self.escape) and self._peek():
                out.append(self._next())
            else:
                out.append(ch)

    def _name(self) -> str:
        start = self.index
        if self._peek().isdigit():
            self.index += 1      # $1 is one positional parameter, like the shell
            return self.text[start:self.index]
        while self._peek() and (self._peek().isalnum() or self._peek() == "_"):
            self.index += 1
        return self.text[start:self.index]

    def _dollar(self) -> str:
        """After a ``$``: the substituted value (or a literal ``$``)."""
        if self._peek() != "{":
            name = self._name()
            return self.env.get(name, "") if name else "$"
        self.index += 1
        name = self._name()
        if not name:
            raise ExpandError("bad substitution")
        ch = self._next()
        if ch == "}":
            return self.env.get(name, "")
        if ch == "":
            raise ExpandError("missing '}'")
        colon = ch == ":"
        if colon:
            ch = self._next()
        if ch not in ("-", "+", "?"):
            raise ExpandError(f"unsupported modifier '{':' if colon else ''}{ch}' in ${{{name}}}")
        inner = _Lexer(self.text, self.env, self.escape, split=False)   # the modifier word
        inner.index = self.index
        word = "".join(inner.words(stop="}"))
        self.index = inner.index
        value = self.env.get(name)
        present = value is not None and (value != "" or not colon)
        if ch == "-":
            return value if present else word       # type: ignore[return-value]
        if ch == "+":
            return word if present else ""
        if present:
            return value                             # type: ignore[return-value]
        default = "is not allowed to be " + ("empty" if colon and value == "" else "unset")
        raise ExpandError(f"{name}: {word or default}")
