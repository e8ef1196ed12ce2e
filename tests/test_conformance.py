"""Every case of tests/conformance, built by pybuild and compared with what docker's
classic builder produced (expected/), as that folder's README prescribes.

run.txt is checked in test_conformance_docker.py, where docker's engine runs our images.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from buildfixtures import Built, build, writable_copy
from conftest import conformance_dir
from imagecheck import (
    config_view,
    history_lines,
    layer_lines,
    mask_source_hash,
    mounts_under,
    rootfs_lines,
    validate_image,
)

CASES = sorted(p.name for p in conformance_dir().iterdir() if (p / "Buildfile").is_file())


def build_case(case: str, store_root: Path, tmp_path: Path) -> Built:
    """The case built as conf/<case> from a copy of its context (validated by the caller)."""
    src = conformance_dir() / case
    ctx = writable_copy(src / "ctx" if (src / "ctx").is_dir() else src, tmp_path / "ctx")
    return build(store_root, ctx,
                 buildfile=src / "Buildfile", tag=f"conf/{case}", check=False, validate=False)


def expected(case: str, name: str) -> str:
    return (conformance_dir() / case / "expected" / name).read_text()


def expected_layers(case: str) -> list[list[str]]:
    layers: list[list[str]] = []
    for line in expected(case, "layers.txt").splitlines():
        if line.startswith("# layer"):
            layers.append([])
        elif line:
            layers[-1].append(line)
    return layers


def test_cases_are_all_here():
    assert len(CASES) == 20, CASES


@pytest.mark.parametrize("case", CASES)
def test_conformance(case, session_store, tmp_path):
    built = build_case(case, session_store, tmp_path)
    proc = built.proc
    assert mounts_under(session_store, tmp_path) == [], "a build left a mount behind"
    store = built.store
    if expected(case, "build.txt").strip() == "fail":
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "step 2/2: RUN exit 7: exit code 7" in proc.stderr
        assert f"conf/{case}:latest" not in store.tags(), "a failed build must not be tagged"
        return
    assert proc.returncode == 0, proc.stdout + proc.stderr
    image_id = store.resolve(f"conf/{case}")
    validate_image(store, image_id)

    got_layers = layer_lines(store, image_id, skip=1)
    want_layers = expected_layers(case)
    assert len(got_layers) == len(want_layers), "number of layers"
    for n, (got, want) in enumerate(zip(got_layers, want_layers), start=1):
        # non-directory lines must match exactly; directory lines show copy-ups and are
        # compared too (they match docker for every case today)
        assert got == want, f"layer {n}"

    assert rootfs_lines(store, image_id) == expected(case, "rootfs.txt").splitlines()
    assert config_view(store, image_id) == json.loads(expected(case, "config.json"))
    got_history = [mask_source_hash(h) for h in history_lines(store, image_id, skip=1)]
    want_history = [mask_source_hash(h) for h in expected(case, "history.txt").splitlines()]
    assert got_history == want_history
