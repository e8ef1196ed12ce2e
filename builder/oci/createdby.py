"""``created_by`` as docker's classic builder writes it: the ``#(nop)`` prefix under the
current SHELL, and Go's ``%q`` and ``time.Duration`` formatting it is built from.  Pure."""

from __future__ import annotations

DEFAULT_SHELL = ("/bin/sh", "-c")
NOP = "/bin/sh -c #(nop) "          # under the default SHELL; nop_prefix() for any other


def go_quote(s: str) -> str:
    """Go's strconv.Quote: double-quoted, with Go escapes for control and non-printable runes."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xDC80 <= code <= 0xDCFF:          # an undecodable byte (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif not ch.isprintable() and code > 0x7F:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote_list(items: tuple[str, ...] | list[str]) -> str:
    """``fmt.Sprintf("%q", []string{…})``: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(i) for i in items) + "]"


def nop_prefix(shell: tuple[str, ...] = DEFAULT_SHELL) -> str:
    """``/bin/sh -c #(nop) ``: docker's pseudo-command under the current SHELL (one space)."""
    return " ".join(shell) + " #(nop) "


def created_by_nop(text: str, shell: tuple[str, ...] = DEFAULT_SHELL) -> str:
    """Metadata steps: ``/bin/sh -c #(nop)  CMD […]`` — two spaces, as docker writes it."""
    return nop_prefix(shell) + " " + text


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``: ``0s``, ``1.5s``, ``5m0s``, ``1h0m0s``, ``500ms``."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _go_frac(ns, size) + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return sign + out + _go_frac(rest, 1_000_000_000) + "s"


def _go_frac(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def go_quote_rune(n: int) -> str:
    """Go's ``%q`` of an int: a quoted rune literal (``'\\x03'``, ``'A'``); a value that is no
    Unicode code point (a surrogate, or past U+10FFFF) is U+FFFD, as strconv.QuoteRune does."""
    if not 0 <= n <= 0x10FFFF or 0xD800 <= n <= 0xDFFF:
        n = 0xFFFD
    ch = chr(n)
    if ch == "'" or ch == "\\":
        return "'\\" + ch + "'"
    if ch in _GO_ESCAPES:
        return "'" + _GO_ESCAPES[ch] + "'"
    if n < 0x20 or n == 0x7F:
        return f"'\\x{n:02x}'"
    if not ch.isprintable():
        return f"'\\u{n:04x}'" if n <= 0xFFFF else f"'\\U{n:08x}'"
    return f"'{ch}'"
