"""Byte sizes as dive reads and prints them (it uses go-humanize v1): ``parse_bytes("20MB")``
is 20000000 and ``parse_bytes("1.5 KiB")`` 1536; ``format_bytes(32025)`` is ``32 kB``.
Go's float syntax is matched too (``go_float``): no spaces, no ``_``, hex floats, inf, nan."""

from __future__ import annotations

import math
import re

_SI = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
       "t": 1000**4, "tb": 1000**4, "p": 1000**5, "pb": 1000**5, "e": 1000**6, "eb": 1000**6,
       "ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20, "gi": 1 << 30, "gib": 1 << 30,
       "ti": 1 << 40, "tib": 1 << 40, "pi": 1 << 50, "pib": 1 << 50, "ei": 1 << 60, "eib": 1 << 60}
_MAX_UINT64 = float(2**64)
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_HEX = re.compile(r"[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+")
_SPECIAL = re.compile(r"[+-]?(inf|infinity|nan)", re.IGNORECASE)


def go_float(text: str) -> float:
    """Go's ``strconv.ParseFloat(text, 64)``; raises ValueError where Go returns an error
    (out of range is an error in Go: ``1e400``)."""
    if _DECIMAL.fullmatch(text) or _SPECIAL.fullmatch(text):
        value = float(text)
    elif _HEX.fullmatch(text):
        value = float.fromhex(text)
    else:
        raise ValueError(f"invalid syntax: {text!r}")
    if math.isinf(value) and not _SPECIAL.fullmatch(text):
        raise ValueError(f"value out of range: {text!r}")
    return value


def parse_bytes(text: str) -> int:
    """go-humanize's ``ParseBytes``: leading digits, dots and commas (commas dropped) make a
    number, the rest (spaces trimmed, any case) a unit of ``_SI``.  Raises ValueError."""
    n = 0
    while n < len(text) and (text[n].isdecimal() or text[n] in ".,"):
        n += 1
    number = text[:n].replace(",", "")
    try:
        value = go_float(number)
    except ValueError:
        raise ValueError(f"{text!r} is not a size (a number, then B, kB, MB, KiB, MiB, …)") from None
    unit = text[n:].strip().lower()
    if unit not in _SI:
        raise ValueError(f"{text!r}: unknown unit {unit!r} (B, kB, MB, GB, KiB, MiB, GiB, …)")
    value *= _SI[unit]
    if value >= _MAX_UINT64:
        raise ValueError(f"{text!r} is too large")
    return int(value)


def format_bytes(n: int) -> str:
    """go-humanize's ``Bytes``: 1000-based, ``9 B``, ``32 kB``, ``1.2 MB``."""
    if n < 10:
        return f"{n} B"
    e = math.floor(math.log(n) / math.log(1000))
    suffix = ("B", "kB", "MB", "GB", "TB", "PB", "EB")[e]
    val = math.floor(n / 1000**e * 10 + 0.5) / 10
    return f"{val:.0f} {suffix}" if val >= 10 else f"{val:.1f} {suffix}"
