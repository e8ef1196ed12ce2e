"""The command line: on bad input a one-line `pybuild: error:` message, never a Python
traceback, and the exit code cli.py documents (1 operation failed, 2 Buildfile/usage error);
the command table, lazy start-up, and `pybuild --help` (golden/help/pybuild-help.txt)."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from buildfixtures import build, make_context
from conftest import REPO, pybuild

from builder.commands import COMMANDS, MODULES
from builder.store.store import Store

HELP_GOLDEN = Path(__file__).resolve().parent / "golden" / "help" / "pybuild-help.txt"

FROM = "FROM pbtest/busybox:base\n"


def assert_clean_failure(proc, code: int, *needles: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == code, out
    assert "Traceback" not in out, out
    assert "internal error" not in out, out
    assert proc.stderr.startswith("pybuild: error: "), proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


@pytest.mark.parametrize("buildfile, code, needles", [
    # FILE:LINE:COL, the line itself, a caret under the instruction, and a suggestion
    pytest.param(FROM + "RUNN echo hi\n", 2,
                 ("Buildfile:2:1: unknown instruction: RUNN", "\n    RUNN echo hi\n    ^\n",
                  "did you mean RUN?"), id="unknown-instruction"),
    pytest.param(FROM + "  COPPY a b\n", 2, ("Buildfile:2:3:", "\n      ^\n", "did you mean COPY?"),
                 id="unknown-instruction-indented"),
    pytest.param("FROM nosuch/image\nRUN true\n", 1, ("base image nosuch/image is not in the store",),
                 id="missing-base-image"),
    pytest.param(FROM + "RUN exit 3\n", 1, ("step 2/2: RUN exit 3: exit code 3",), id="run-exits-3"),
    pytest.param(FROM + "COPY nothere /x\n", 1, ("file not found in build context",),
                 id="missing-source"),
    pytest.param("RUN true\n", 2, ("the first instruction must be FROM",), id="no-from"),
])
def test_build_failure(store_root, tmp_path, buildfile, code, needles):
    proc = build(store_root, make_context(tmp_path / "ctx"),
                 buildfile=buildfile, tag="cli/test", check=False).proc
    assert_clean_failure(proc, code, *needles)
    assert "cli/test:latest" not in Store(store_root).tags(), "a failed build must not be tagged"


def test_missing_buildfile(store_root, tmp_path):
    """No Buildfile (nor Dockerfile) in the context: a usage error naming the path."""
    proc = build(store_root, make_context(tmp_path / "ctx"), tag="cli/test", check=False).proc
    assert_clean_failure(proc, 2, str(tmp_path / "ctx" / "Buildfile"))


def test_missing_buildfile_given_with_f(store_root, tmp_path):
    proc = build(store_root, tmp_path, buildfile=tmp_path / "nosuch", check=False).proc
    assert_clean_failure(proc, 2, str(tmp_path / "nosuch"))


def test_missing_context_dir(store_root, tmp_path):
    proc = build(store_root, tmp_path / "nosuch", buildfile=FROM + "COPY a /a\n", check=False).proc
    assert_clean_failure(proc, 1, "nosuch")


@pytest.mark.parametrize("argv", [
    pytest.param(("-t", "short/form", "CTX"), id="options-first"),
    # a directory as the first word is a build context, not an unknown command
    pytest.param(("CTX", "-t", "short/form"), id="context-first"),
])
def test_build_is_the_default_command(store_root, tmp_path, argv):
    """`pybuild -t NAME CONTEXT` is short for `pybuild build …` (the tests build with `build`)."""
    ctx = make_context(tmp_path / "ctx", {"Buildfile": FROM + "RUN echo x > /x\n"})
    proc = pybuild(*(str(ctx) if a == "CTX" else a for a in argv), root=store_root)
    assert "Successfully tagged short/form:latest" in proc.stdout
    assert "short/form:latest" in Store(store_root).tags()


@pytest.mark.parametrize("args, code, needle", [
    pytest.param(("history", "nosuch"), 1, "no such image", id="history"),
    pytest.param(("inspect", "nosuch"), 1, "no such image", id="inspect"),
    pytest.param(("rmi", "nosuch"), 1, "no such image", id="rmi"),
    pytest.param(("tag", "nosuch", "other"), 1, "no such image", id="tag"),
])
def test_no_such_image(store_root, args, code, needle):
    proc = pybuild(*args, root=store_root, check=False)
    assert_clean_failure(proc, code, needle)


def test_usage_error_exit_2(store_root):
    """argparse's own errors (a missing argument) exit 2 without a traceback."""
    proc = pybuild("history", root=store_root, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "usage:" in proc.stderr


@pytest.mark.parametrize("argv, message", [
    pytest.param(("frobnicate",), "unknown command frobnicate; see `pybuild --help`", id="unknown"),
    # a near miss gets a suggestion rather than being taken as a build context
    pytest.param(("histroy", "x"), "unknown command histroy (did you mean `pybuild history`?)", id="typo"),
])
def test_unknown_command(store_root, argv, message):
    proc = pybuild(*argv, root=store_root, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(f"pybuild: error: {message}")
    assert "Traceback" not in proc.stderr


def registered_commands() -> dict[str, str]:
    """Each command the command modules register → the module registering it."""
    registered = {}
    for module in MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"builder.commands.{module}").register(sub, argparse.ArgumentParser(add_help=False))
        registered.update({name: module for name in sub.choices})
    return registered


def test_the_command_table_matches_what_modules_register():
    """cli imports only the module of the command being run; the table must be exact."""
    assert registered_commands() == COMMANDS


@pytest.mark.parametrize("command, module", [
    pytest.param("images", "images", id="images"),
    pytest.param("ps", "containers", id="ps"),
    pytest.param("df", "storage", id="df"),
])
def test_a_command_imports_only_its_own_module(tmp_path, command, module):
    """Start-up stays lazy: running a command imports no other command module."""
    code = ("import sys\nfrom builder.cli import main\nmain(['--root', sys.argv[1], sys.argv[2]])\n"
            "print(sorted(m for m in sys.modules if m.startswith('builder.commands.')))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "store"), command],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == repr([f"builder.commands.{module}"])


def test_help_golden(tmp_path):
    """`pybuild --help`: a short usage line, then the commands by family, one line each."""
    out = pybuild("--help", root=tmp_path).stdout
    if os.environ.get("PYBUILD_REGEN") == "1":
        HELP_GOLDEN.write_text(out)
    assert out == HELP_GOLDEN.read_text()


def test_help_lists_every_registered_command_once(tmp_path):
    out = pybuild("--help", root=tmp_path).stdout
    listed = re.findall(r"^  ([a-z][a-z-]*)  ", out, re.MULTILINE)     # options start with -
    assert sorted(listed) == sorted(registered_commands())
    assert len(listed) == len(set(listed)), [name for name in listed if listed.count(name) > 1]


def test_command_help_is_argparse_own(tmp_path):
    proc = pybuild("history", "--help", root=tmp_path)
    assert proc.stdout.startswith("usage: pybuild history [-h] [--root ROOT]")


def test_no_command_is_a_usage_error(tmp_path):
    proc = pybuild(root=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr == ("usage: pybuild [--root DIR] COMMAND [ARG...]\n"
                           "pybuild: error: a command is required; see `pybuild --help`\n")


@pytest.mark.parametrize("body, needle", [
    # each failure during a step names the Buildfile, the line and the step (issue 11)
    pytest.param("ADD ../../etc/passwd /x\n", "forbidden path outside the build context", id="escape"),
    pytest.param("COPY nothere /x\n", "file not found in build context", id="missing-source"),
    pytest.param("COPY --from=nosuch /a /b\n", "no stage of that name", id="copy-from-nothing"),
    pytest.param("RUN --mount=type=secret,id=tok,required true\n", "secret tok is required but was not given",
                 id="required-secret"),
    pytest.param("RUN exit 3\n", "exit code 3", id="run-fails"),
])
def test_step_errors_say_where(store_root, tmp_path, body, needle):
    ctx = make_context(tmp_path / "ctx")
    proc = build(store_root, ctx, buildfile=FROM + body, tag="cli/where", check=False).proc
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"pybuild: error: {tmp_path / 'Buildfile'}:2: step 2/2: "), last
    assert needle in last
