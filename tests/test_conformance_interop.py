"""The conformance images in other people's tools: docker's engine loads and runs each one
and prints expected/run.txt; skopeo reads the OCI form; umoci unpacks it, and the rootfs it
makes from our layers (whiteouts, opaque dirs, hardlinks) is expected/rootfs.txt."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import conformance_dir, pybuild, require_tool
from listing import tree_lines
from test_conformance import CASES, build_case, expected

from builder.store.store import Store

OK_CASES = [c for c in CASES if (conformance_dir() / c / "expected" / "build.txt").read_text().strip() == "ok"]


@pytest.fixture(scope="module")
def archives(session_store, tmp_path_factory) -> dict[str, Path]:
    """Every passing case built once and saved with `pybuild save`."""
    out: dict[str, Path] = {}
    for case in OK_CASES:
        tmp = tmp_path_factory.mktemp(case)
        proc = build_case(case, session_store, tmp).proc
        assert proc.returncode == 0, proc.stderr
        out[case] = tmp / f"{case}.tar"
        pybuild("save", f"conf/{case}", "-o", str(out[case]), root=session_store)
    return out


@pytest.mark.parametrize("case", OK_CASES)
def test_docker_loads_and_runs(case, docker, archives, session_store):
    loaded = docker.run("load", "-i", str(archives[case]))
    assert f"Loaded image: conf/{case}:latest" in loaded.stdout
    [info] = json.loads(docker.run("image", "inspect", f"conf/{case}").stdout)
    assert info["Id"] == Store(session_store).resolve(f"conf/{case}")
    view = {k: info["Config"].get(k) for k in json.loads(expected(case, "config.json"))}
    assert view == json.loads(expected(case, "config.json")), "docker reads our config differently"
    run = docker.run("run", "--rm", "--network", "none", f"conf/{case}", check=False)
    assert f"exit {run.returncode}\n{run.stdout}" == expected(case, "run.txt"), run.stderr


@pytest.mark.parametrize("case", OK_CASES)
def test_skopeo_and_umoci_read_the_oci_form(case, archives, tmp_path):
    skopeo, umoci = require_tool("skopeo"), require_tool("umoci")
    proc = subprocess.run([skopeo, "inspect", f"oci-archive:{archives[case]}"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    layout = tmp_path / "layout"
    layout.mkdir()
    subprocess.run(["tar", "-C", str(layout), "-xf", str(archives[case])], check=True)
    bundle = tmp_path / "bundle"
    proc = subprocess.run([umoci, "unpack", "--image", f"{layout}:latest", str(bundle)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    got = tree_lines(bundle / "rootfs")
    want = expected(case, "rootfs.txt").splitlines()
    # umoci makes the rootfs dir itself (0755 root) as docker does; compare everything
    assert got == want
