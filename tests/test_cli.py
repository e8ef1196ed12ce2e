"""The command line on bad input: a one-line `pybuild: error:` message, never a Python
traceback, and the exit code cli.py documents (1 operation failed, 2 Buildfile/usage error)."""

from __future__ import annotations

import pytest

from builder.store.store import Store
from buildfixtures import build, make_context
from conftest import pybuild

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


def test_the_command_table_matches_what_modules_register():
    """cli imports only the module of the command being run; the table must be exact."""
    import argparse
    import importlib

    from builder.commands import COMMANDS, MODULES
    registered = {}
    for module in MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"builder.commands.{module}").register(sub, argparse.ArgumentParser(add_help=False))
        registered.update({name: module for name in sub.choices})
    assert registered == COMMANDS
