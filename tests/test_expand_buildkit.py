"""BuildKit's own lexer tables, every row, run against builder/buildfile/expand.py.

The rows are facts copied from moby/buildkit frontend/dockerfile/shell/ (test data, not
code): ``envVarTest`` (read from the copy vendored at moby/moby
vendor/github.com/moby/buildkit/frontend/dockerfile/shell/envVarTest @e5d2811, the newest
stored; the ``line…`` ids are its line numbers), ``wordsTest`` (from the vendored copy at
ydb-platform/nbs @0900e84, whose stored text had lost the trailing spaces that its own comments
say some lines "MUST have"; they are restored here) and the tables of ``lex_test.go``
(moby/buildkit @12f04ef, plus the ``${v:#}`` rows of the newest copy found, dagger/dagger
internal/buildkit @aae5c45).  BuildKit's helpers that have no counterpart here
(convertShellPatternToRegex, reversePattern, reverseString) are tests/test_shellpattern.py.

How BuildKit runs them, and how these tests do:
* envVarTest: escape ``\\``, env PWD=/home SHELL=bash KOREAN=한국어 NULL=(empty).  Rows tagged
  ``A`` run on every platform, ``U`` only off Windows, ``W`` only on Windows, where env keys
  compare case-insensitively.  Here ``A`` rows run twice, once with a plain dict and once with
  a case-insensitive mapping standing in for Windows; ``U`` and ``W`` rows run once each.
  ``error`` means any error.
* wordsTest: ``ENV k=v`` lines add to the env of the rows after them; the expected words are
  comma separated.  (BuildKit loops over a second mode, raw quotes + keep unset variables, but
  re-reads the already exhausted file, so only the normal mode ever runs; pybuild has only
  that mode.)
* TestProcessWithMatches also checks which names were found and which were not; here a
  recording mapping notes every lookup.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from builder.buildfile.expand import expand, expand_words
from builder.errors import ExpandError

ERROR = None     # "the expansion fails"

ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


class _WindowsEnv(Mapping[str, str]):
    """An env whose keys compare case-insensitively, as BuildKit's do on Windows."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = {key.upper(): value for key, value in env.items()}

    def __getitem__(self, key: str) -> str:
        return self._env[key.upper()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)


class _Recording(Mapping[str, str]):
    """An env that notes each name looked up: found (``matched``) or not (``unmatched``)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = dict(env)
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    def __getitem__(self, key: str) -> str:
        if key in self._env:
            self.matched.add(key)
            return self._env[key]
        self.unmatched.add(key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)


def _outcome(word: str, env: Mapping[str, str]) -> str | None:
    try:
        return expand(word, env)
    except ExpandError:
        return ERROR


ENV_VAR_TEST = [
    pytest.param('A', 'hello', 'hello', id="line1"),
    pytest.param('A', "he'll'o", 'hello', id="line2"),
    pytest.param('A', "he'llo", ERROR, id="line3"),
    pytest.param('A', r"he\'llo", "he'llo", id="line4"),
    # an escaped backslash, then an unterminated quote
    pytest.param('A', r"he\\'llo", ERROR, id="line5"),
    pytest.param('A', r'abc\tdef', 'abctdef', id="line6"),
    pytest.param('A', r'"abc\tdef"', r'abc\tdef', id="line7"),
    pytest.param('A', r'"abc\\tdef"', r'abc\tdef', id="line8"),
    pytest.param('A', r"'abc\tdef'", r'abc\tdef', id="line9"),
    # a trailing escape character is dropped
    pytest.param('A', 'hello\\', 'hello', id="line10"),
    pytest.param('A', 'hello\\\\', 'hello\\', id="line11"),
    pytest.param('A', '"hello', ERROR, id="line12"),
    pytest.param('A', r'"hello\"', ERROR, id="line13"),
    pytest.param('A', '"hel\'lo"', "hel'lo", id="line14"),
    pytest.param('A', "'hello", ERROR, id="line15"),
    # no escapes inside single quotes: the backslash stays and the quote closes them
    pytest.param('A', r"'hello\'", 'hello\\', id="line16"),
    pytest.param('A', r"'hello\there'", r'hello\there', id="line17"),
    pytest.param('A', r"'hello\\there'", r'hello\\there', id="line18"),
    pytest.param('A', '"\'\'"', "''", id="line19"),
    pytest.param('A', '$.', '$.', id="line20"),
    # $1 is a positional parameter, never set
    pytest.param('A', 'he$1x', 'hex', id="line21"),
    pytest.param('A', 'he$.x', 'he$.x', id="line22"),
    # $pwd is unset, except on Windows, where it names $PWD (keys ignore case there)
    pytest.param('U', 'he$pwd.', 'he.', id="line24"),
    pytest.param('W', 'he$pwd.', 'he/home.', id="line25"),
    pytest.param('A', 'he$PWD', 'he/home', id="line26"),
    pytest.param('A', r'he\$PWD', 'he$PWD', id="line27"),
    # an escaped escape character is literal; the variable after it still expands
    pytest.param('A', r'he\\$PWD', r'he\/home', id="line28"),
    pytest.param('A', r'"he\$PWD"', 'he$PWD', id="line29"),
    pytest.param('A', r'"he\\$PWD"', r'he\/home', id="line30"),
    pytest.param('A', r'\${}', '${}', id="line31"),
    pytest.param('A', r'\${}aaa', '${}aaa', id="line32"),
    pytest.param('A', r'he\${}', 'he${}', id="line33"),
    pytest.param('A', r'he\${}xx', 'he${}xx', id="line34"),
    # ${} is a bad substitution, wherever it stands
    pytest.param('A', '${}', ERROR, id="line35"),
    pytest.param('A', '${}aaa', ERROR, id="line36"),
    pytest.param('A', 'he${}', ERROR, id="line37"),
    pytest.param('A', 'he${}xx', ERROR, id="line38"),
    pytest.param('A', 'he${hi}', 'he', id="line39"),
    pytest.param('A', 'he${hi}xx', 'hexx', id="line40"),
    pytest.param('A', 'he${PWD}', 'he/home', id="line41"),
    # '.' is no name: an unsupported modifier
    pytest.param('A', 'he${.}', ERROR, id="line42"),
    pytest.param('A', 'he${XXX:-000}xx', 'he000xx', id="line43"),
    pytest.param('A', 'he${PWD:-000}xx', 'he/homexx', id="line44"),
    pytest.param('A', 'he${XXX:-$PWD}xx', 'he/homexx', id="line45"),
    pytest.param('A', 'he${XXX:-${PWD:-yyy}}xx', 'he/homexx', id="line46"),
    pytest.param('A', 'he${XXX:-${YYY:-yyy}}xx', 'heyyyxx', id="line47"),
    # ':' must be followed by - + or ?
    pytest.param('A', 'he${XXX:YYY}', ERROR, id="line48"),
    # ?: unset fails with or without the colon; empty only with it
    pytest.param('A', 'he${XXX?}', ERROR, id="line49"),
    pytest.param('A', 'he${XXX:?}', ERROR, id="line50"),
    pytest.param('A', 'he${PWD?}', 'he/home', id="line51"),
    pytest.param('A', 'he${PWD:?}', 'he/home', id="line52"),
    pytest.param('A', 'he${NULL?}', 'he', id="line53"),
    pytest.param('A', 'he${NULL:?}', ERROR, id="line54"),
    pytest.param('A', 'he${XXX:+${PWD}}xx', 'hexx', id="line55"),
    pytest.param('A', 'he${PWD:+${XXX}}xx', 'hexx', id="line56"),
    pytest.param('A', 'he${PWD:+${SHELL}}xx', 'hebashxx', id="line57"),
    pytest.param('A', 'he${XXX:+000}xx', 'hexx', id="line58"),
    pytest.param('A', 'he${PWD:+000}xx', 'he000xx', id="line59"),
    pytest.param('A', "'he${XX}'", 'he${XX}', id="line60"),
    pytest.param('A', '"he${PWD}"', 'he/home', id="line61"),
    pytest.param('A', '"he\'$PWD\'"', "he'/home'", id="line62"),
    pytest.param('A', '"$PWD"', '/home', id="line63"),
    pytest.param('A', "'$PWD'", '$PWD', id="line64"),
    pytest.param('A', r"'\$PWD'", r'\$PWD', id="line65"),
    pytest.param('A', '\'"hello"\'', '"hello"', id="line66"),
    pytest.param('A', r'he\$PWD', 'he$PWD', id="line67"),
    pytest.param('A', r'"he\$PWD"', 'he$PWD', id="line68"),
    pytest.param('A', r"'he\$PWD'", r'he\$PWD', id="line69"),
    pytest.param('A', 'he${PWD', ERROR, id="line70"),
    # assignment (:=) is refused
    pytest.param('A', 'he${PWD:=000}xx', ERROR, id="line71"),
    pytest.param('A', 'he${PWD:+${PWD}:}xx', 'he/home:xx', id="line72"),
    # an escaped $ inside an operator word is literal
    pytest.param('A', r'he${XXX:-\$PWD:}xx', 'he$PWD:xx', id="line73"),
    # …also before a brace, which is then plain text
    pytest.param('A', r'he${XXX:-\${PWD}z}xx', 'he${PWDz}xx', id="line74"),
    pytest.param('A', '안녕하세요', '안녕하세요', id="line75"),
    pytest.param('A', "안'녕'하세요", '안녕하세요', id="line76"),
    pytest.param('A', "안'녕하세요", ERROR, id="line77"),
    pytest.param('A', r"안녕\'하세요", "안녕'하세요", id="line78"),
    pytest.param('A', r"안\\'녕하세요", ERROR, id="line79"),
    pytest.param('A', r'안녕\t하세요', '안녕t하세요', id="line80"),
    pytest.param('A', r'"안녕\t하세요"', r'안녕\t하세요', id="line81"),
    pytest.param('A', r"'안녕\t하세요", ERROR, id="line82"),
    pytest.param('A', '안녕하세요\\', '안녕하세요', id="line83"),
    pytest.param('A', '안녕하세요\\\\', '안녕하세요\\', id="line84"),
    pytest.param('A', '"안녕하세요', ERROR, id="line85"),
    pytest.param('A', r'"안녕하세요\"', ERROR, id="line86"),
    pytest.param('A', '"안녕\'하세요"', "안녕'하세요", id="line87"),
    pytest.param('A', "'안녕하세요", ERROR, id="line88"),
    pytest.param('A', r"'안녕하세요\'", '안녕하세요\\', id="line89"),
    pytest.param('A', '안녕$1x', '안녕x', id="line90"),
    pytest.param('A', '안녕$.x', '안녕$.x', id="line91"),
    # $pwd is unset, except on Windows, where it names $PWD (keys ignore case there)
    pytest.param('U', '안녕$pwd.', '안녕.', id="line93"),
    pytest.param('W', '안녕$pwd.', '안녕/home.', id="line94"),
    pytest.param('A', '안녕$PWD', '안녕/home', id="line95"),
    pytest.param('A', r'안녕\$PWD', '안녕$PWD', id="line96"),
    pytest.param('A', r'안녕\\$PWD', r'안녕\/home', id="line97"),
    pytest.param('A', r'안녕\${}', '안녕${}', id="line98"),
    pytest.param('A', r'안녕\${}xx', '안녕${}xx', id="line99"),
    pytest.param('A', '안녕${}', ERROR, id="line100"),
    pytest.param('A', '안녕${}xx', ERROR, id="line101"),
    pytest.param('A', '안녕${hi}', '안녕', id="line102"),
    pytest.param('A', '안녕${hi}xx', '안녕xx', id="line103"),
    pytest.param('A', '안녕${PWD}', '안녕/home', id="line104"),
    pytest.param('A', '안녕${.}', ERROR, id="line105"),
    pytest.param('A', '안녕${XXX:-000}xx', '안녕000xx', id="line106"),
    pytest.param('A', '안녕${PWD:-000}xx', '안녕/homexx', id="line107"),
    pytest.param('A', '안녕${XXX:-$PWD}xx', '안녕/homexx', id="line108"),
    pytest.param('A', '안녕${XXX:-${PWD:-yyy}}xx', '안녕/homexx', id="line109"),
    pytest.param('A', '안녕${XXX:-${YYY:-yyy}}xx', '안녕yyyxx', id="line110"),
    pytest.param('A', '안녕${XXX:YYY}', ERROR, id="line111"),
    pytest.param('A', '안녕${XXX:+${PWD}}xx', '안녕xx', id="line112"),
    pytest.param('A', '안녕${PWD:+${XXX}}xx', '안녕xx', id="line113"),
    pytest.param('A', '안녕${PWD:+${SHELL}}xx', '안녕bashxx', id="line114"),
    pytest.param('A', '안녕${XXX:+000}xx', '안녕xx', id="line115"),
    pytest.param('A', '안녕${PWD:+000}xx', '안녕000xx', id="line116"),
    pytest.param('A', "'안녕${XX}'", '안녕${XX}', id="line117"),
    pytest.param('A', '"안녕${PWD}"', '안녕/home', id="line118"),
    pytest.param('A', '"안녕\'$PWD\'"', "안녕'/home'", id="line119"),
    pytest.param('A', '\'"안녕"\'', '"안녕"', id="line120"),
    pytest.param('A', r'안녕\$PWD', '안녕$PWD', id="line121"),
    pytest.param('A', r'"안녕\$PWD"', '안녕$PWD', id="line122"),
    pytest.param('A', r"'안녕\$PWD'", r'안녕\$PWD', id="line123"),
    pytest.param('A', '안녕${PWD', ERROR, id="line124"),
    pytest.param('A', '안녕${PWD:=000}xx', ERROR, id="line125"),
    pytest.param('A', '안녕${PWD:+${PWD}:}xx', '안녕/home:xx', id="line126"),
    pytest.param('A', r'안녕${XXX:-\$PWD:}xx', '안녕$PWD:xx', id="line127"),
    pytest.param('A', r'안녕${XXX:-\${PWD}z}xx', '안녕${PWDz}xx', id="line128"),
    pytest.param('A', '$KOREAN', '한국어', id="line129"),
    pytest.param('A', '안녕$KOREAN', '안녕한국어', id="line130"),
    pytest.param('A', '${{aaa}', ERROR, id="line131"),
    pytest.param('A', '${aaa}}', '}', id="line132"),
    # unterminated ${ (BuildKit's message names Go's end-of-input rune; ours says missing '}')
    pytest.param('A', '${aaa', ERROR, id="line133"),
    pytest.param('A', '${{aaa:-bbb}', ERROR, id="line134"),
    pytest.param('A', '${aaa:-bbb}}', 'bbb}', id="line135"),
    pytest.param('A', '${aaa:-bbb', ERROR, id="line136"),
    pytest.param('A', '${aaa:-bbb}', 'bbb', id="line137"),
    pytest.param('A', '${aaa:-${bbb:-ccc}}', 'ccc', id="line138"),
    # the first } closes the inner ${foo}; the outer one never closes
    pytest.param('A', '${aaa:-bbb ${foo}', ERROR, id="line139"),
    # braces inside the word do not nest
    pytest.param('A', '${aaa:-bbb {foo}', 'bbb {foo', id="line140"),
    # a name must come first: ${: ${} ${{ are bad substitutions
    pytest.param('A', '${:}', ERROR, id="line141"),
    pytest.param('A', '${:-bbb}', ERROR, id="line142"),
    pytest.param('A', '${:+bbb}', ERROR, id="line143"),

    # Positional parameters (POSIX sh 2.5.1: $1, $999, $001 …) are never set in a Buildfile.
    pytest.param('A', '$1', '', id="line147"),
    pytest.param('A', '${1}', '', id="line148"),
    pytest.param('A', '${1:+bbb}', '', id="line149"),
    pytest.param('A', '${1:-bbb}', 'bbb', id="line150"),
    pytest.param('A', '$2', '', id="line151"),
    pytest.param('A', '${2}', '', id="line152"),
    pytest.param('A', '${2:+bbb}', '', id="line153"),
    pytest.param('A', '${2:-bbb}', 'bbb', id="line154"),
    pytest.param('A', '$3', '', id="line155"),
    pytest.param('A', '${3}', '', id="line156"),
    pytest.param('A', '${3:+bbb}', '', id="line157"),
    pytest.param('A', '${3:-bbb}', 'bbb', id="line158"),
    pytest.param('A', '$4', '', id="line159"),
    pytest.param('A', '${4}', '', id="line160"),
    pytest.param('A', '${4:+bbb}', '', id="line161"),
    pytest.param('A', '${4:-bbb}', 'bbb', id="line162"),
    pytest.param('A', '$5', '', id="line163"),
    pytest.param('A', '${5}', '', id="line164"),
    pytest.param('A', '${5:+bbb}', '', id="line165"),
    pytest.param('A', '${5:-bbb}', 'bbb', id="line166"),
    pytest.param('A', '$6', '', id="line167"),
    pytest.param('A', '${6}', '', id="line168"),
    pytest.param('A', '${6:+bbb}', '', id="line169"),
    pytest.param('A', '${6:-bbb}', 'bbb', id="line170"),
    pytest.param('A', '$7', '', id="line171"),
    pytest.param('A', '${7}', '', id="line172"),
    pytest.param('A', '${7:+bbb}', '', id="line173"),
    pytest.param('A', '${7:-bbb}', 'bbb', id="line174"),
    pytest.param('A', '$8', '', id="line175"),
    pytest.param('A', '${8}', '', id="line176"),
    pytest.param('A', '${8:+bbb}', '', id="line177"),
    pytest.param('A', '${8:-bbb}', 'bbb', id="line178"),
    pytest.param('A', '$9', '', id="line179"),
    pytest.param('A', '${9}', '', id="line180"),
    pytest.param('A', '${9:+bbb}', '', id="line181"),
    pytest.param('A', '${9:-bbb}', 'bbb', id="line182"),
    pytest.param('A', '$999', '', id="line183"),
    pytest.param('A', '${999}', '', id="line184"),
    pytest.param('A', '${999:+bbb}', '', id="line185"),
    pytest.param('A', '${999:-bbb}', 'bbb', id="line186"),
    pytest.param('A', '$999aaa', 'aaa', id="line187"),
    pytest.param('A', '${999}aaa', 'aaa', id="line188"),
    pytest.param('A', '${999:+bbb}aaa', 'aaa', id="line189"),
    pytest.param('A', '${999:-bbb}aaa', 'bbbaaa', id="line190"),
    pytest.param('A', '$001', '', id="line191"),
    pytest.param('A', '${001}', '', id="line192"),
    pytest.param('A', '${001:+bbb}', '', id="line193"),
    pytest.param('A', '${001:-bbb}', 'bbb', id="line194"),
    pytest.param('A', '$001aaa', 'aaa', id="line195"),
    pytest.param('A', '${001}aaa', 'aaa', id="line196"),
    pytest.param('A', '${001:+bbb}aaa', 'aaa', id="line197"),
    pytest.param('A', '${001:-bbb}aaa', 'bbbaaa', id="line198"),

    # Special parameters (POSIX sh 2.5.2: $@ $* $# $? $- $$ $! $0) are never set either.
    pytest.param('A', '$@', '', id="line202"),
    pytest.param('A', '${@}', '', id="line203"),
    pytest.param('A', '${@:+bbb}', '', id="line204"),
    pytest.param('A', '${@:-bbb}', 'bbb', id="line205"),
    # a special parameter is one character: $@, then a literal @@
    pytest.param('A', '$@@@', '@@', id="line206"),
    pytest.param('A', '$@aaa', 'aaa', id="line207"),
    pytest.param('A', '${@}aaa', 'aaa', id="line208"),
    pytest.param('A', '${@:+bbb}aaa', 'aaa', id="line209"),
    pytest.param('A', '${@:-bbb}aaa', 'bbbaaa', id="line210"),
    pytest.param('A', '$*', '', id="line211"),
    pytest.param('A', '${*}', '', id="line212"),
    pytest.param('A', '${*:+bbb}', '', id="line213"),
    pytest.param('A', '${*:-bbb}', 'bbb', id="line214"),
    pytest.param('A', '$#', '', id="line215"),
    pytest.param('A', '${#}', '', id="line216"),
    pytest.param('A', '${#:+bbb}', '', id="line217"),
    pytest.param('A', '${#:-bbb}', 'bbb', id="line218"),
    pytest.param('A', '$?', '', id="line219"),
    pytest.param('A', '${?}', '', id="line220"),
    pytest.param('A', '${?:+bbb}', '', id="line221"),
    pytest.param('A', '${?:-bbb}', 'bbb', id="line222"),
    # $- is a special parameter (pybuild's tests once expected $-x to stay literal)
    pytest.param('A', '$-', '', id="line223"),
    pytest.param('A', '${-}', '', id="line224"),
    pytest.param('A', '${-:+bbb}', '', id="line225"),
    pytest.param('A', '${-:-bbb}', 'bbb', id="line226"),
    pytest.param('A', '$$', '', id="line227"),
    pytest.param('A', '${$}', '', id="line228"),
    pytest.param('A', '${$:+bbb}', '', id="line229"),
    pytest.param('A', '${$:-bbb}', 'bbb', id="line230"),
    pytest.param('A', '$!', '', id="line231"),
    pytest.param('A', '${!}', '', id="line232"),
    pytest.param('A', '${!:+bbb}', '', id="line233"),
    pytest.param('A', '${!:-bbb}', 'bbb', id="line234"),
    pytest.param('A', '$0', '', id="line235"),
    pytest.param('A', '${0}', '', id="line236"),
    pytest.param('A', '${0:+bbb}', '', id="line237"),
    pytest.param('A', '${0:-bbb}', 'bbb', id="line238"),

]


@pytest.mark.parametrize("platform, source, expected", ENV_VAR_TEST)
def test_env_var_test(platform: str, source: str, expected: str | None) -> None:
    envs = {"A": [ENV, _WindowsEnv(ENV)], "U": [ENV], "W": [_WindowsEnv(ENV)]}[platform]
    for env in envs:
        assert _outcome(source, env) == expected


# wordsTest: (env so far, input, expected words).  ``ENV`` lines of the file are folded
# into the env column of the rows after them.
_HI = {"hi": "hi"}
_SPACE = {**_HI, "space": "abc  def"}
_LEADING = {**_SPACE, "leading": "  ab c"}
_TRAILING = {**_LEADING, "trailing": "ab c   "}      # three trailing spaces

WORDS_TEST = [
    pytest.param({}, "hello", ["hello"], id="hello"),
    pytest.param({}, "hello${hi}bye", ["hellobye"], id="unset-var"),
    pytest.param(_HI, "hello${hi}bye", ["hellohibye"], id="set-var"),
    # white space from an unquoted variable splits; quoted it does not
    pytest.param(_SPACE, "hello${space}bye", ["helloabc", "defbye"], id="var-splits"),
    pytest.param(_SPACE, 'hello"${space}"bye', ["helloabc  defbye"], id="quoted-var"),
    pytest.param(_SPACE, 'hello "${space}"bye', ["hello", "abc  defbye"], id="space-then-quoted"),
    pytest.param(_LEADING, "hello${leading}def", ["hello", "ab", "cdef"], id="leading-splits"),
    pytest.param(_LEADING, 'hello"${leading}" def', ["hello  ab c", "def"], id="leading-quoted"),
    pytest.param(_LEADING, 'hello"${leading}"', ["hello  ab c"], id="leading-quoted-end"),
    pytest.param(_LEADING, "hello${leading}", ["hello", "ab", "c"], id="leading-end"),
    # trailing white space of an unquoted variable ends the word and makes no empty word
    pytest.param(_TRAILING, "hello${trailing}", ["helloab", "c"], id="trailing"),
    pytest.param(_TRAILING, "hello${trailing}d", ["helloab", "c", "d"], id="trailing-then-text"),
    pytest.param(_TRAILING, 'hello"${trailing}"d', ["helloab c   d"], id="trailing-quoted"),
    pytest.param(_TRAILING, 'hel"lo${trailing}"', ["helloab c   "], id="trailing-quoted-end"),
    pytest.param(_TRAILING, 'hello" there  "', ["hello there  "], id="quoted-spaces-kept"),
    # (BuildKit trims the input column: its trailing blanks are not part of the row)
    pytest.param(_TRAILING, "hello there", ["hello", "there"], id="plain-split"),
    pytest.param(_TRAILING, r"hello\ there", ["hello there"], id="escaped-space"),
    pytest.param(_TRAILING, 'hello" there', ERROR, id="open-quote"),
    pytest.param(_TRAILING, r'hello\" there', ['hello"', "there"], id="escaped-quote"),
    pytest.param(_TRAILING, r'hello"\\there"', [r"hello\there"], id="dquote-escaped-escape"),
    pytest.param(_TRAILING, r'hello"\there"', [r"hello\there"], id="dquote-other-escape"),
    pytest.param(_TRAILING, r"hello'\\there'", [r"hello\\there"], id="squote-backslashes"),
    pytest.param(_TRAILING, r"hello'\there'", [r"hello\there"], id="squote-backslash"),
    pytest.param(_TRAILING, "hello'$there'", ["hello$there"], id="squote-dollar"),
]


@pytest.mark.parametrize("env, text, words", WORDS_TEST)
def test_words_test(env: dict[str, str], text: str, words: list[str] | None) -> None:
    try:
        result: list[str] | None = expand_words(text, env)
    except ExpandError:
        result = ERROR
    assert result == words


# TestShellParserMandatoryEnvVars: ${VAR:?…} and ${VAR?…}, the message itself expanded.
_SET, _EMPTY, _UNSET = {"VAR": "plain", "ARG": "x"}, {"VAR": "", "ARG": "x"}, {"ARG": "x"}


@pytest.mark.parametrize("word, env, expected", [
    pytest.param("${VAR:?message here$ARG}", _SET, "plain", id="no-empty-set"),
    pytest.param("${VAR:?message here$ARG}", _EMPTY, ERROR, id="no-empty-empty"),
    pytest.param("${VAR:?message here$ARG}", _UNSET, ERROR, id="no-empty-unset"),
    pytest.param("${VAR?message here$ARG}", _SET, "plain", id="no-unset-set"),
    pytest.param("${VAR?message here$ARG}", _EMPTY, "", id="no-unset-empty"),
    pytest.param("${VAR?message here$ARG}", _UNSET, ERROR, id="no-unset-unset"),
])
def test_mandatory_env_vars(word: str, env: dict[str, str], expected: str | None) -> None:
    if expected is ERROR:
        with pytest.raises(ExpandError, match="message herex"):
            expand(word, env)
    else:
        assert expand(word, env) == expected


# TestGetEnv: an env list ("k=v", or a bare "k" for an empty value) becomes the lookup map
# the way dispatch/common.py's env_of builds it (split at the first "=", the last one wins).
@pytest.mark.parametrize("items, name, value", [
    pytest.param([], "foo", "", id="empty-env"),
    pytest.param(["foo"], "foo", "", id="bare-name"),
    pytest.param(["foo="], "foo", "", id="empty-value"),
    pytest.param(["foo=bar"], "foo", "bar", id="one"),
    pytest.param(["foo=bar", "car=hat"], "foo", "bar", id="first-of-two"),
    pytest.param(["foo=bar", "car=hat"], "car", "hat", id="second-of-two"),
    pytest.param(["foo=bar", "car=hat", "car=bike"], "car", "bike", id="last-wins"),
])
def test_get_env(items: list[str], name: str, value: str) -> None:
    env = dict(item.partition("=")[::2] for item in items)
    assert expand("$" + name, env) == value


_FB = {"FOO": "xxx", "BAR": ""}

# TestProcessWithMatches: (input, env, result, names found, names not found).
PROCESS_WITH_MATCHES = [
    pytest.param("x", {"DUMMY": "dummy"}, "x", set(), set(), id="no-vars"),
    pytest.param("x ${UNUSED}", {"DUMMY": "dummy"}, "x ", set(), {"UNUSED"}, id="unset"),
    pytest.param("x ${FOO}", {"FOO": "y"}, "x y", {"FOO"}, set(), id="set"),
    pytest.param("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", _FB, "xxx  ccc", {"FOO", "BAR"}, {"BAZ"},
                 id="dash"),
    pytest.param("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", _FB, "xxx bbb ccc", {"FOO", "BAR"},
                 {"BAZ"}, id="colon-dash"),
    pytest.param("${FOO:-}", _FB, "xxx", {"FOO"}, set(), id="colon-dash-empty-word"),
    pytest.param("${FOO:-}", {}, "", set(), {"FOO"}, id="colon-dash-empty-word-unset"),
    pytest.param("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", _FB, "aaa bbb ", {"FOO", "BAR"}, {"BAZ"},
                 id="plus"),
    pytest.param("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", _FB, "aaa  ", {"FOO", "BAR"}, {"BAZ"},
                 id="colon-plus"),
    pytest.param("${FOO?aaa}", _FB, "xxx", {"FOO"}, set(), id="question-set"),
    pytest.param("${BAR?bbb}", _FB, "", {"BAR"}, set(), id="question-empty"),
    pytest.param("${BAZ?ccc}", _FB, ERROR, set(), {"BAZ"}, id="question-unset"),
    pytest.param("${FOO:?aaa}", _FB, "xxx", {"FOO"}, set(), id="colon-question-set"),
    pytest.param("${BAR:?bbb}", _FB, ERROR, set(), set(), id="colon-question-empty"),
    pytest.param("${BAZ:?ccc}", _FB, ERROR, set(), {"BAZ"}, id="colon-question-unset"),
    pytest.param("${BAZ:?}", _FB, ERROR, set(), {"BAZ"}, id="colon-question-no-message"),
    # assignment is refused in every spelling
    pytest.param("${FOO=aaa}", _FB, ERROR, set(), set(), id="assign"),
    pytest.param("${FOO=:aaa}", _FB, ERROR, set(), set(), id="assign-colon"),
    pytest.param("${FOO=}", {}, ERROR, set(), set(), id="assign-empty"),
    # regular-expression characters are literal; \} keeps the } from closing the ${
    pytest.param(r"${FOO#()[]{\}^$.\*\?|\\}", {"FOO": r"()[]{}^$.*?|\x"}, "x", {"FOO"}, set(),
                 id="prefix-regex-chars"),
    pytest.param(r"${FOO%%\**}", {"FOO": "xx**"}, "xx", {"FOO"}, set(), id="suffix-escaped-star"),
    pytest.param("${FOO#*x*y}", {"FOO": "xxyy"}, "y", {"FOO"}, set(), id="prefix-shortest"),
    pytest.param("${FOO#*}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set(), id="prefix-star-empty"),
    pytest.param("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "x"}, "xyy", {"FOO", "BAR"}, set(),
                 id="prefix-from-var"),
    pytest.param("${FOO#$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy", {"FOO", "BAR"}, set(),
                 id="prefix-empty-var"),
    pytest.param("${FOO#}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set(), id="prefix-empty"),
    pytest.param("${FOO##*x}", {"FOO": "xxyy"}, "yy", {"FOO"}, set(), id="prefix-longest"),
    pytest.param("${FOO##}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set(), id="prefix-longest-empty"),
    pytest.param(r"${FOO#?\?}", {"FOO": "???y"}, "?y", {"FOO"}, set(), id="prefix-question"),
    pytest.param("${ABC:-.}${FOO%x}${ABC:-.}", {"FOO": "xxyy"}, ".xxyy.", {"FOO"}, {"ABC"},
                 id="suffix-no-match"),
    pytest.param(r"${FOO%%\**\*}", {"FOO": "a***yy*"}, "a", {"FOO"}, set(), id="suffix-longest"),
    pytest.param("${FOO%}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set(), id="suffix-empty"),
    pytest.param("${FOO%%$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy", {"FOO", "BAR"}, set(),
                 id="suffix-longest-empty-var"),
    # the pattern operators take no colon (newest BuildKit)
    pytest.param("${FOO:#}", {}, ERROR, set(), set(), id="colon-hash"),
    pytest.param("${FOO:##}", {}, ERROR, set(), set(), id="colon-hash-hash"),
    pytest.param("${FOO:%}", {}, ERROR, set(), set(), id="colon-percent"),
    pytest.param("${FOO:%%}", {}, ERROR, set(), set(), id="colon-percent-percent"),
    pytest.param("${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
                 {"FOO": "/foo*/*/*.txt", "NEEDLE": r"\*/"}, "/foo.*/*.txt - /foo..*.txt",
                 {"FOO", "NEEDLE"}, set(), id="replace-escaped-star"),
    pytest.param("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
                 {"FOO": "/tmp/tmp/bar.txt", "NEEDLE": "/tmp"}, "/tmp/bar.txt - /bar.txt",
                 {"FOO", "NEEDLE"}, set(), id="replace-slash-from-var"),
    pytest.param("${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
                 {"FOO": "/a/foo/b/c.txt", "NEEDLE": "/?/", "REPLACEMENT": "/"},
                 "/foo/b/c.txt - /foo/c.txt", {"FOO", "NEEDLE", "REPLACEMENT"}, set(),
                 id="replace-question"),
    pytest.param("${FOO/$NEEDLE/$REPLACEMENT}",
                 {"FOO": "http://google.de", "NEEDLE": "http://", "REPLACEMENT": "https://"},
                 "https://google.de", {"FOO", "NEEDLE", "REPLACEMENT"}, set(), id="replace-url"),
    # \/ in the pattern is a /; in the replacement the backslash stays
    pytest.param(r"${FOO//\//\/}", {"FOO": "/tmp/foo.txt"}, r"\/tmp\/foo.txt", {"FOO"}, set(),
                 id="replace-escaped-slash"),
    # BuildKit calls the rest "not guaranteed", kept so partial input never crashes
    pytest.param("${FOO/$BAR/ww}", {"FOO": "xxyy", "BAR": ""}, "wwxxyy", {"FOO", "BAR"}, set(),
                 id="replace-empty-pattern"),
    pytest.param("${FOO//ww}", {"FOO": "xxyy"}, ERROR, set(), set(), id="replace-no-second-slash"),
    pytest.param("${FOO//}", {"FOO": "xxyy"}, ERROR, set(), set(), id="replace-nothing"),
    pytest.param("${FOO///}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set(), id="replace-all-empty"),
    pytest.param("${FOO///}", {}, "", set(), {"FOO"}, id="replace-all-empty-unset"),
]


@pytest.mark.parametrize("word, env, expected, matched, unmatched", PROCESS_WITH_MATCHES)
def test_process_with_matches(word: str, env: dict[str, str], expected: str | None,
                              matched: set[str], unmatched: set[str]) -> None:
    recording = _Recording(env)
    if expected is ERROR:
        with pytest.raises(ExpandError):
            expand(word, recording)
        return
    assert expand(word, recording) == expected
    assert (recording.matched, recording.unmatched) == (matched, unmatched)


_RELEASE = "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz"


# TestProcessWithMatchesPlatform: BuildKit's release file names.
@pytest.mark.parametrize("env, expected", [
    pytest.param({"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm",
                  "TARGETVARIANT": "v7"}, "something-v1.2.3.linux-arm-v7.tar.gz", id="variant"),
    pytest.param({"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm64",
                  "TARGETVARIANT": ""}, "something-v1.2.3.linux-arm64.tar.gz", id="empty-variant"),
    pytest.param({"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm64"},
                 "something-v1.2.3.linux-arm64.tar.gz", id="no-variant"),
])
def test_process_with_matches_platform(env: dict[str, str], expected: str) -> None:
    assert expand(_RELEASE, env) == expected
