"""`pip install .` (not editable) into a fresh venv gives a working `pybuild` command: the
grammar ships inside the package, and a build runs from outside the source tree."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO, conformance_dir, writable_copy


def test_pip_install_gives_a_working_pybuild(tmp_path, base_tar):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = subprocess.run([str(venv / "bin/pip"), "install", "-q", str(REPO)], env=env,
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    pybuild = str(venv / "bin/pybuild")
    elsewhere = tmp_path / "elsewhere"            # never the source tree: the installed copy runs
    elsewhere.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([pybuild, "--root", str(tmp_path / "store"), *args], cwd=elsewhere,
                              env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    assert "usage: pybuild" in subprocess.run([pybuild, "--help"], env=env, cwd=elsewhere,
                                              capture_output=True, text=True).stdout
    where = subprocess.run([str(venv / "bin/python"), "-c", "import builder; print(builder.__file__)"],
                           env=env, cwd=elsewhere, capture_output=True, text=True).stdout
    assert str(venv) in where, f"the test must exercise the installed package, not {where}"
    run("import", str(base_tar), "pbtest/busybox:base")
    case = writable_copy(conformance_dir() / "p01-run-creates", tmp_path / "case")
    out = run("-f", str(case / "Buildfile"), "-t", "installed", str(case)).stdout
    assert "Successfully tagged installed:latest" in out
    assert "mkdir -p /app/bin" in run("history", "--no-trunc", "installed").stdout
