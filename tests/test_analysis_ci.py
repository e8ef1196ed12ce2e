"""CI rules (analysis/ci.py) and the byte sizes they read (analysis/units.py), as dive reads
them: go-humanize's ParseBytes and Bytes, Go's ParseFloat, .dive-ci files with their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.analysis import ci
from builder.analysis.units import format_bytes, go_float, parse_bytes
from builder.errors import CIConfigError


@pytest.mark.parametrize("text, value", [
    ("42", 42), ("42B", 42), ("42b", 42), ("42 MB", 42_000_000), ("42mib", 44_040_192),
    ("20MB", 20_000_000), ("50kB", 50_000), ("1B", 1), ("1.5 KiB", 1536),
    ("1,000kb", 1_000_000),           # go-humanize v1 drops commas between the digits
    (".5k", 500), ("5.", 5), ("1e", 10**18),   # "e" alone is exabytes: the number stops at the letter
    ("0.5mb", 500_000), ("2 GiB", 2 << 30),
])
def test_parse_bytes_as_go_humanize(text, value) -> None:
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["", "disabled", "MB", " 20MB", "20 parsecs", "1e3", "-5MB", "1.2.3kB",
                                  "99999999999999999999EB"])
def test_parse_bytes_refuses(text) -> None:
    with pytest.raises(ValueError):
        parse_bytes(text)


@pytest.mark.parametrize("n, text", [(0, "0 B"), (9, "9 B"), (10, "10 B"), (803, "803 B"), (999, "999 B"),
                                     (1000, "1.0 kB"), (1023, "1.0 kB"), (1500, "1.5 kB"), (6405, "6.4 kB"),
                                     (12810, "13 kB"), (32025, "32 kB"), (82854982, "83 MB"),
                                     (1220598, "1.2 MB")])
def test_format_bytes_as_go_humanize(n, text) -> None:
    assert format_bytes(n) == text


@pytest.mark.parametrize("text, ok", [("0.9", True), ("1", True), (".5", True), ("1e-1", True), ("+0.5", True),
                                      ("0x1p-1", True), ("NaN", True), (" 0.9", False), ("0.9 ", False),
                                      ("1_0", False), ("", False), ("0,9", False), ("90%", False)])
def test_go_float(text, ok) -> None:
    if ok:
        go_float(text)
    else:
        with pytest.raises(ValueError):
            go_float(text)


def load(tmp_path: Path, text: str | None, *, explicit: bool = True) -> tuple[dict[str, str | None], list[str]]:
    path = tmp_path / ".dive-ci"
    if text is not None:
        path.write_text(text)
    warnings: list[str] = []
    rules = ci.load_rules(path, explicit=explicit, warn=warnings.append)
    return {r.spec.name: r.value if r.threshold is not None else None for r in rules}, warnings


DEFAULTS = {"lowest-efficiency": "0.9", "highest-wasted-bytes": None, "highest-user-wasted-percent": "0.1",
            "highest-reclaimable-bytes": None}


def test_no_file_gives_dives_defaults(tmp_path) -> None:
    assert load(tmp_path, None, explicit=False) == (DEFAULTS, [])


@pytest.mark.parametrize("text, changed", [
    ("rules:\n  lowest-efficiency: 0.95\n", {"lowest-efficiency": "0.95"}),
    ("rules:\n  highest-wasted-bytes: 20MB\n", {"highest-wasted-bytes": "20MB"}),
    # every spelling of "off"
    ("rules:\n  lowest-efficiency: disabled\n", {"lowest-efficiency": None}),
    ("rules:\n  lowest-efficiency: off\n", {"lowest-efficiency": None}),
    ("rules:\n  lowest-efficiency: false\n", {"lowest-efficiency": None}),
    ("rules:\n  lowest-efficiency: ''\n", {"lowest-efficiency": None}),
    ("rules:\n  lowest-efficiency:\n", {"lowest-efficiency": None}),
    ("rules:\n  lowest-efficiency: ' Disabled '\n", {"lowest-efficiency": None}),
    ("rules:\n  highest-reclaimable-bytes: 1MiB\n", {"highest-reclaimable-bytes": "1MiB"}),
    ("", {}), ("rules:\n", {}), ("other: 1\n", {}),       # nothing said: the defaults
])
def test_rules_file(tmp_path, text, changed) -> None:
    assert load(tmp_path, text) == ({**DEFAULTS, **changed}, [])


def test_camel_case_names_warn_and_win(tmp_path) -> None:
    rules, warnings = load(tmp_path, "rules:\n  lowestEfficiency: 0.95\n  lowest-efficiency: 0.5\n"
                                     "  highestUserWastedPercent: 0.20\n  highestWastedBytes: ''\n")
    assert rules == {**DEFAULTS, "lowest-efficiency": "0.95", "highest-user-wasted-percent": "0.20"}
    assert [w.split(": ", 1)[1] for w in warnings] == [
        "lowestEfficiency is deprecated: write lowest-efficiency",
        "highestUserWastedPercent is deprecated: write highest-user-wasted-percent",
        "highestWastedBytes is deprecated: write highest-wasted-bytes"]
    assert warnings[0].startswith(f"{tmp_path / '.dive-ci'}:2: ")


@pytest.mark.parametrize("text, where, says", [
    ("rules:\n  lowest-efficiency: 1.5\n", 2, "outside 0..1"),
    ("rules:\n  lowest-efficiency: ninety\n", 2, "lowest-efficiency"),
    ("rules:\n  highest-user-wasted-percent: -0.1\n", 2, "outside 0..1"),
    ("rules:\n  # sizes\n  highest-wasted-bytes: 20 parsecs\n", 3, "unknown unit"),
    ("rules:\n  lowest-efficency: 0.9\n", 2, "unknown rule 'lowest-efficency'"),
    ("rules:\n  lowest-efficiency: [0.9]\n", 2, "expected a value"),
    ("rules: [1, 2]\n", 1, "expected a map"),
    ("rules:\n  lowest-efficiency: 0.9\n   bad: indent\n", 3, "not valid YAML"),
    ("- a list\n", 1, "expected a map"),
])
def test_bad_config_names_file_and_line(tmp_path, text, where, says) -> None:
    with pytest.raises(CIConfigError) as err:
        load(tmp_path, text)
    assert str(err.value).startswith(f"{tmp_path / '.dive-ci'}:{where}: ")
    assert says in str(err.value)
    assert err.value.exit_code == 2


def test_a_named_config_must_exist(tmp_path) -> None:
    with pytest.raises(CIConfigError, match="no such CI config file"):
        load(tmp_path, None, explicit=True)
