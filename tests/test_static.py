"""Types and lint, as CI checks them: mypy (configured in pyproject.toml, no module silenced)
and ruff (the rule set chosen there) must both report nothing."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True)


def test_mypy_is_clean():
    proc = run("mypy")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_is_clean():
    proc = run("ruff", "check", "builder", "tests")
    assert proc.returncode == 0, proc.stdout + proc.stderr
