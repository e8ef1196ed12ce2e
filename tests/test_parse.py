"""Golden tests of the Buildfile parser, plus table tests of errors and positions.

tests/golden/parse/<case>/Buildfile must parse and dump to expected.txt;
tests/golden/parse-fail/<case>/Buildfile must fail with str(BuildfileError) == expected.txt.
A new case without expected.txt fails unless PYBUILD_REGEN=1, which writes it (review it!).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import conformance_dir
from hypothesis import given, settings, strategies as st

from builder.buildfile import instructions as ins
from builder.buildfile.dump import dump
from builder.buildfile.grammar import parser
from builder.buildfile.heredoc import run_argv
from builder.buildfile.parse import parse_buildfile, parse_file
from builder.errors import BuildfileError, UsageError

GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("PYBUILD_REGEN") == "1"


def _cases(kind: str) -> list:
    folder = GOLDEN / kind
    return [pytest.param(case, id=case.name) for case in sorted(folder.iterdir())
            if (case / "Buildfile").is_file()]


def _read_source(case: Path) -> str:
    # bytes → str without newline translation: CRLF and BOM cases must reach the parser.
    return (case / "Buildfile").read_bytes().decode("utf-8")


def _check_golden(case: Path, actual: str) -> None:
    expected = case / "expected.txt"
    if not expected.exists():
        if not REGEN:
            pytest.fail(f"{expected} is missing; run with PYBUILD_REGEN=1 to write it")
        expected.write_text(actual, encoding="utf-8", newline="\n")
    assert actual == expected.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", _cases("parse"))
def test_golden_parse(case: Path) -> None:
    actual = dump(parse_buildfile(_read_source(case), file="Buildfile"))
    _check_golden(case, actual)


@pytest.mark.parametrize("case", _cases("parse-fail"))
def test_golden_parse_fail(case: Path) -> None:
    with pytest.raises(BuildfileError) as caught:
        parse_buildfile(_read_source(case), file="Buildfile")
    _check_golden(case, str(caught.value) + "\n")


def test_golden_folders_are_big_enough() -> None:
    assert len(_cases("parse")) >= 80
    assert len(_cases("parse-fail")) >= 50


def _conformance_files() -> list:
    # conformance_dir() fails (never skips) when the cases are missing
    return [pytest.param(path, id=path.parent.name)
            for path in sorted(conformance_dir().glob("*/Buildfile"))]


@pytest.mark.parametrize("path", _conformance_files())
def test_conformance_buildfiles_parse(path: Path) -> None:
    buildfile = parse_file(path)
    assert isinstance(buildfile.instructions[0], ins.From)


def test_p14_continuation_text() -> None:
    # The brief's acceptance check: the comment line inside the continuation is dropped and
    # the next line is appended with no separator, keeping its leading spaces.
    path = conformance_dir() / "p14-syntax" / "Buildfile"
    run = parse_file(path).instructions[1]
    assert run.command == ins.ShellForm("echo a > /x &&   echo b >> /x")


def _parse(text: str) -> ins.Buildfile:
    return parse_buildfile(text, file="Buildfile")


@pytest.mark.parametrize("text, line, column", [
    pytest.param("FROM a\nRUN\n", 2, 4, id="empty-run-points-after-keyword"),
    # The column counts from the physical line, past the indentation.
    pytest.param("FROM a\n   COPY one\n", 2, 9, id="indented-copy-one-arg"),
    # The bad word is on the continuation line: line and column follow it there.
    pytest.param("FROM a\nENV A=1 \\\n  B\n", 3, 3, id="error-on-continuation-line"),
    pytest.param("FROM a\nRUN --bogus x\n", 2, 5, id="unknown-flag"),
    pytest.param("FROM a\nCMD [\"a\", 1]\n", 2, 5, id="json-non-string"),
    pytest.param("FROM a b\n", 1, 8, id="from-two-words"),
    pytest.param("", 1, 1, id="empty-file"),
])
def test_error_positions(text: str, line: int, column: int) -> None:
    with pytest.raises(BuildfileError) as caught:
        _parse(text)
    assert (caught.value.line, caught.value.column) == (line, column)


@pytest.mark.parametrize("text", [
    pytest.param("FROM a\nRUN \x00\n", id="nul-byte-is-shell-text"),
    pytest.param("FROM a\nENV \"A\n", id="unbalanced-quote"),
    pytest.param("FROM a\nENV A=\"x\\\n", id="escape-then-eof"),
    pytest.param("FROM a\nEXPOSE '\n", id="expose-single-quote"),
    pytest.param("FROM a\nCOPY [\"a\", [\"b\"]]\n", id="nested-json"),
    pytest.param("FROM a\nCOPY --=x a b\n", id="flag-without-name"),
    pytest.param("FROM a\nLABEL =x\n", id="blank-label-key"),
    pytest.param("FROM a\nFROM --platform x\n", id="platform-without-value"),
    pytest.param("FROM a\nRUN --mount=x\n", id="flag-but-no-command"),
    pytest.param("FROM a AS 1x\n", id="bad-stage-name"),
    pytest.param("\\\n", id="lone-continuation"),
    pytest.param("FROM a\nCOPY --link=maybe a b\n", id="bad-bool"),
    pytest.param("FROM a\nCOPY --chown=1 --chown=2 a b\n", id="duplicate-flag"),
])
def test_bad_input_is_a_buildfile_error(text: str) -> None:
    # Whatever the input, the only exception is BuildfileError, with a usable position.
    try:
        _parse(text)
    except BuildfileError as e:
        assert e.line >= 1 and e.column >= 1 and str(e)
    # (some rows may legitimately parse; the point is that nothing else escapes)


def test_parser_is_built_once() -> None:
    assert parser("\\") is parser("\\")
    assert parser("`") is not parser("\\")


def test_positions_and_end_line() -> None:
    buildfile = _parse("FROM a\n\n  RUN x \\\n   y\n")
    run = buildfile.instructions[1]
    assert (run.pos.line, run.pos.column, run.pos.end_line) == (3, 3, 4)
    assert run.pos.source_line == "  RUN x \\"


@pytest.mark.parametrize("content, message", [
    pytest.param(None, "Buildfile not found: ", id="missing"),
    pytest.param(b"FROM scratch\n\xff\n", "is not UTF-8 text (byte 13)", id="not-utf8"),
])
def test_parse_file_unreadable(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "Buildfile"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_file(path)


def test_onbuild_trigger_and_nested_positions() -> None:
    onbuild = _parse("FROM a\n  onbuild  copy --chown=1 a \\\n  b\n").instructions[1]
    assert isinstance(onbuild, ins.Onbuild)
    assert onbuild.trigger == "copy --chown=1 a   b"      # as written, docker keeps the case
    nested = onbuild.instruction
    assert isinstance(nested, ins.Copy) and nested.dest == "b"
    assert (nested.pos.line, nested.pos.column, nested.pos.end_line) == (2, 12, 3)


def test_heredoc_script_reassembles_line_and_bodies() -> None:
    run = _parse("FROM a\nRUN <<A cat - && cat <<-B\none\nA\n\ttwo\n\tB\n").instructions[1]
    assert run.command == ins.ShellForm("<<A cat - && cat <<-B")
    assert run_argv(run.command.text, run.heredocs, ("/bin/sh", "-c")) == (
        ("/bin/sh", "-c", "<<A cat - && cat <<-B\none\nA\ntwo\nB\n"), None)


def test_meta_args_then_stages() -> None:
    buildfile = _parse("ARG V=1\nFROM a\nARG V\n")
    assert [type(i) for i in buildfile.instructions] == [ins.Arg, ins.From, ins.Arg]
    assert buildfile.instructions[0].pairs == (("V", "1"),)
    assert buildfile.instructions[2].pairs == (("V", None),)


def test_check_syntax_command(tmp_path: Path) -> None:
    from conftest import pybuild
    good = tmp_path / "Buildfile"
    good.write_text("ARG B=a\nFROM $B\nMAINTAINER me\nRUN <<EOF\necho hi\nEOF\n")
    proc = pybuild("check-syntax", str(good), root=tmp_path / "store")
    assert proc.stdout.splitlines()[:3] == ["Step 1/4 : ARG B=a", "Step 2/4 : FROM $B",
                                            "Step 3/4 : MAINTAINER me"]
    assert f"warning: {good}:3: MAINTAINER is deprecated" in proc.stdout
    bad = tmp_path / "Bad"
    bad.write_text("FROM a\nCOPY --chwon=1 a b\n")
    proc = pybuild("check-syntax", str(bad), root=tmp_path / "store", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{bad}:2:6: unknown flag: --chwon" in proc.stderr
    assert "did you mean --chown?" in proc.stderr


_PIECES = st.sampled_from([
    "FROM a", "RUN ", "COPY ", "ADD ", "ARG ", "ENV ", "ONBUILD ", "HEALTHCHECK ", "SHELL ",
    "VOLUME ", "CMD ", "--chown=1 ", "--", "<<EOF", "<<-'E'", "3<<X", "EOF", "E", "\t", "\\",
    "\n", " ", "[", "]", "\"", "'", "=", "$x", "#", "# escape=`", "`", "NONE", "CMD", "x", "\r\n",
])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(_PIECES, max_size=30).map("".join))
def test_parser_raises_only_its_own_error(text: str) -> None:
    try:
        _parse(text)
    except BuildfileError as e:
        assert e.line >= 1 and e.column >= 1
