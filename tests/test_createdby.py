"""Table tests of builder/oci/createdby.py: Go's quoting and duration formatting, which docker's
classic builder writes into created_by (`%q` of CMD/ENTRYPOINT lists and of HEALTHCHECK's
*HealthConfig).  Each expected value is what Go prints, from its documented rules:

* strconv.Quote (and `%q` of a string): `\\"` and `\\\\`; `\\a \\b \\f \\n \\r \\t \\v`; other runes
  below U+0020 and U+007F as `\\xHH`; a byte that is not UTF-8 as `\\xHH`; other runes that are
  not unicode.IsPrint (letters, marks, numbers, punctuation, symbols and the ASCII space) as
  `\\uHHHH` or `\\UHHHHHHHH`; everything else as itself.  Hex digits are lower case.
* `%q` of a []string: `[` the quoted elements joined by one space `]`.
* `%q` of an int: strconv.QuoteRune — a single-quoted rune literal, `\\'` escaped, `"` not.
* time.Duration.String: `0s`; below one second the largest unit of ms, µs (U+00B5), ns that
  keeps a non-zero leading digit; from one second on h, m and s, with every smaller unit shown
  once a larger one is (`1h0m0s`); fractions without trailing zeros; a leading `-`.
"""

from __future__ import annotations

import pytest

from builder.oci.createdby import go_duration, go_quote, go_quote_list, go_quote_rune

NS, US, MS, S = 1, 1_000, 1_000_000, 1_000_000_000
M, H = 60 * S, 3600 * S


@pytest.mark.parametrize("text, quoted", [
    pytest.param("", '""', id="empty"),
    pytest.param("echo hi", '"echo hi"', id="plain-ascii"),
    pytest.param('say "hi"', r'"say \"hi\""', id="double-quote"),
    pytest.param("a\\b", r'"a\\b"', id="backslash"),
    # a single quote needs no escape inside a double-quoted Go string
    pytest.param("it's", '"it\'s"', id="single-quote-kept"),
    pytest.param("\a\b\f\n\r\t\v", r'"\a\b\f\n\r\t\v"', id="named-escapes"),
    pytest.param("\x00\x01\x1b\x1f", r'"\x00\x01\x1b\x1f"', id="c0-controls-hex"),
    pytest.param("\x7f", r'"\x7f"', id="del-hex"),
    # Go's ExampleQuote, verbatim
    pytest.param('"Fran & Freddie\'s Diner\t☺"', r'"\"Fran & Freddie' + "'" + r's Diner\t☺\""',
                 id="go-example-quote"),
    pytest.param("café ☺ 😀", '"café ☺ 😀"', id="printable-non-ascii-kept"),
    # a combining mark is a mark (category M): printable
    pytest.param("e\u0301", '"e\u0301"', id="combining-mark-kept"),
    # a C1 control is above U+007F: \u, not \x
    pytest.param("\u0085", r'"\u0085"', id="c1-control"),
    # spaces other than U+0020 are not IsPrint
    pytest.param("a\u00a0b\u3000c", r'"a\u00a0b\u3000c"', id="non-ascii-spaces"),
    pytest.param("\u200b\ufeff\u2028", r'"\u200b\ufeff\u2028"', id="format-and-separators"),
    pytest.param("\ue000", r'"\ue000"', id="private-use"),
    # beyond the BMP: eight hex digits
    pytest.param("\U000e0001", r'"\U000e0001"', id="non-bmp-format-char"),
    pytest.param("\U0010ffff", r'"\U0010ffff"', id="last-code-point"),
    # a byte that is not UTF-8 reaches us as a surrogateescape; Go quotes the byte
    pytest.param(b"a\xffb\x80".decode("utf-8", "surrogateescape"), r'"a\xffb\x80"', id="invalid-utf8-bytes"),
])
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


@pytest.mark.parametrize("items, quoted", [
    pytest.param([], "[]", id="empty"),
    pytest.param(["true"], '["true"]', id="one"),
    pytest.param(("/bin/sh", "-c", "echo hi"), '["/bin/sh" "-c" "echo hi"]', id="tuple-space-separated"),
    # an empty element is still quoted, so it stays visible
    pytest.param(["a", "", "b"], '["a" "" "b"]', id="empty-element"),
    pytest.param(['a "b"', "c\td"], r'["a \"b\"" "c\td"]', id="elements-escaped"),
])
def test_go_quote_list(items, quoted: str) -> None:
    assert go_quote_list(items) == quoted


@pytest.mark.parametrize("n, quoted", [
    # HEALTHCHECK's Retries: 0 unless --retries is given
    pytest.param(0, r"'\x00'", id="zero"),
    pytest.param(3, r"'\x03'", id="small-count"),
    pytest.param(7, r"'\a'", id="bell-named-escape"),
    pytest.param(10, r"'\n'", id="newline"),
    pytest.param(31, r"'\x1f'", id="last-c0"),
    pytest.param(32, "' '", id="space"),
    pytest.param(65, "'A'", id="letter"),
    pytest.param(39, r"'\''", id="single-quote-escaped"),
    # the double quote needs no escape inside a rune literal
    pytest.param(34, "'\"'", id="double-quote-kept"),
    pytest.param(92, r"'\\'", id="backslash"),
    pytest.param(127, r"'\x7f'", id="del"),
    pytest.param(0xA0, r"'\u00a0'", id="nbsp"),
    pytest.param(0x263A, "'☺'", id="printable-bmp"),
    pytest.param(0x1F600, "'😀'", id="printable-non-bmp"),
    pytest.param(0xE0001, r"'\U000e0001'", id="non-printable-non-bmp"),
    # no code point: strconv.QuoteRune prints the replacement character (HEALTHCHECK --retries=2000000)
    pytest.param(0xD800, "'\ufffd'", id="surrogate"),
    pytest.param(2_000_000, "'\ufffd'", id="past-unicode"),
])
def test_go_quote_rune(n: int, quoted: str) -> None:
    assert go_quote_rune(n) == quoted


@pytest.mark.parametrize("ns, text", [
    pytest.param(0, "0s", id="zero"),
    pytest.param(1 * NS, "1ns", id="one-ns"),
    pytest.param(999 * NS, "999ns", id="largest-ns"),
    pytest.param(1 * US, "1\u00b5s", id="one-us-micro-sign"),
    pytest.param(1 * US + 1, "1.001\u00b5s", id="us-fraction"),
    pytest.param(1500 * US, "1.5ms", id="ms-fraction"),
    # Go's ExampleDuration_String
    pytest.param(300 * MS, "300ms", id="go-example-300ms"),
    pytest.param(1 * H + 2 * M + 300 * MS, "1h2m0.3s", id="go-example-1h2m0.3s"),
    pytest.param(S - 1, "999.999999ms", id="just-under-a-second"),
    pytest.param(1 * S, "1s", id="one-second"),
    pytest.param(1 * S + 1, "1.000000001s", id="ns-precision-kept"),
    pytest.param(1500 * MS, "1.5s", id="second-fraction"),
    # from a minute on, the seconds are always shown
    pytest.param(1 * M, "1m0s", id="one-minute"),
    pytest.param(90 * S, "1m30s", id="minute-and-a-half"),
    pytest.param(5 * M, "5m0s", id="five-minutes"),
    # from an hour on, minutes and seconds are always shown
    pytest.param(1 * H, "1h0m0s", id="one-hour"),
    pytest.param(1 * H + 1 * S, "1h0m1s", id="hour-zero-minutes"),
    pytest.param(100 * H, "100h0m0s", id="hours-never-become-days"),
    pytest.param(-1500 * MS, "-1.5s", id="negative-seconds"),
    pytest.param(-1 * NS, "-1ns", id="negative-ns"),
    pytest.param(2**63 - 1, "2562047h47m16.854775807s", id="max-int64"),
    pytest.param(-2**63, "-2562047h47m16.854775808s", id="min-int64"),
])
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text
