"""`pybuild analyze` and `pybuild cp` on images built here (the store), and cp's safety: paths
resolve inside the image, nothing is written outside DEST, symlinks are copied, never followed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from analysisfixtures import docker_archive, layer_tar
from buildfixtures import build, make_context
from conftest import pybuild

BIG = b"B" * 100_000


@pytest.fixture(scope="module")
def root(tmp_path_factory, base_tar) -> Path:
    """A store with pbtest/busybox:base and `waste`: a COPY, a chmod copy-up, a duplicate."""
    root = tmp_path_factory.mktemp("analyze") / "store"
    pybuild("import", str(base_tar), "pbtest/busybox:base", root=root)
    ctx = make_context(tmp_path_factory.mktemp("ctx"), {"big": BIG})
    build(root, ctx, tag="waste", buildfile="FROM pbtest/busybox:base\nCOPY big /opt/big\n"
                                            "RUN chmod 600 /opt/big\nRUN cp /opt/big /opt/again\n")
    return root


def test_analyze_a_built_image(root) -> None:
    out = pybuild("analyze", "waste", root=root).stdout
    assert "Image waste: 4 layers" in out
    assert "reclaimableBytes   100000" in out and "duplicateBytes     100000" in out
    lines = out.splitlines()
    row = next(line for line in lines if line.endswith("metadata-only copy-up (same content) in layer 2"))
    assert "/opt/big" in row and "1..2" in row
    assert any("/opt/again" in line and "same content as /opt/big in layer 3" in line for line in lines)


def test_json_reasons_and_layers(root) -> None:
    doc = json.loads(pybuild("analyze", "--json", "waste", root=root).stdout)
    assert doc["image"]["fileReference"] == [{"count": 2, "sizeBytes": 200_000, "file": "/opt/big"}]
    files = {f["file"]: f for f in doc["image"]["pybuild"]["files"]}
    assert files["/opt/big"]["layers"] == [1, 2] and files["/opt/big"]["reclaimableBytes"] == 100_000
    assert files["/opt/big"]["reasons"] == [{"reason": "metadata-only", "layer": 2}]
    assert files["/opt/again"]["reasons"] == [{"reason": "duplicate", "layer": 3, "path": "/opt/big"}]
    assert [layer["command"] for layer in doc["layer"]][2] == "chmod 600 /opt/big"


def test_views_sort_min_size_and_a_range_of_layers(root) -> None:
    by_path = pybuild("analyze", "--sort", "path", "waste", root=root).stdout
    assert by_path.index("  /opt/again  ") < by_path.index("  /opt/big  ")
    by_size = pybuild("analyze", "waste", root=root).stdout         # equal savings: the bigger store first
    assert by_size.index("  /opt/big  ") < by_size.index("  /opt/again  ")
    none = pybuild("analyze", "--min-size", "1MB", "waste", root=root).stdout
    assert "No wasted files of 1.0 MB or more." in none
    diff = pybuild("analyze", "--layers", "2..3", "waste", root=root).stdout.splitlines()
    assert diff[0] == "What layers 2..3 did, as one diff (2 files, 200 kB written):"
    assert diff[1:] and any(line.split()[:2] == ["modified", "100"] and line.endswith("/opt/big") for line in diff)
    assert any(line.startswith("added") and line.endswith("/opt/again") for line in diff)


def test_cp_from_the_store_as_at_the_top_or_at_a_layer(root, tmp_path) -> None:
    pybuild("cp", "waste:/opt/big", str(tmp_path / "big"), root=root)
    assert (tmp_path / "big").read_bytes() == BIG and (tmp_path / "big").stat().st_mode & 0o777 == 0o600
    pybuild("cp", "--layer", "1", "waste:/opt", str(tmp_path), root=root)
    assert "again" not in os.listdir(tmp_path / "opt")                      # /opt/again came later
    assert (tmp_path / "opt" / "big").stat().st_mode & 0o777 == 0o644       # before the chmod


def test_cp_stays_inside_the_image_and_inside_dest(tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = docker_archive(tmp_path / "img.tar", [
        layer_tar([("etc", None, 0o755), ("etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644),
                   ("usr", None, 0o755), ("usr/lib", None, 0o755), ("usr/lib/x.so", "the library\n", 0o755),
                   ("lib", "->usr/lib", 0o777), ("up", "->../../../etc", 0o777), ("abs", "->/etc", 0o777),
                   ("escape", f"->{outside}", 0o777), ("suid", "s", 0o4755)]),
        layer_tar([("escape/pwned", "written through a symlink?\n", 0o644)])], ["base", "sneaky"])
    src = f"docker-archive:{archive}"
    dest = tmp_path / "dest"
    dest.mkdir()
    pybuild("cp", f"{src}:/lib/x.so", str(dest), root=tmp_path / "s")      # /lib → usr/lib, inside the image
    assert (dest / "x.so").read_text() == "the library\n"
    pybuild("cp", f"{src}:/up/passwd", str(dest / "p1"), root=tmp_path / "s")    # .. stops at the image's /
    pybuild("cp", f"{src}:/abs/passwd", str(dest / "p2"), root=tmp_path / "s")   # / is the image's /
    assert (dest / "p1").read_text() == (dest / "p2").read_text() == "root:x:0:0::/root:/bin/sh\n"
    pybuild("cp", f"{src}:/escape", str(dest), root=tmp_path / "s")          # a symlink is copied as one
    assert os.readlink(dest / "escape") == str(outside)
    pybuild("cp", f"{src}:/suid", str(dest), root=tmp_path / "s")
    assert (dest / "suid").stat().st_mode & 0o7777 == 0o755                  # setuid dropped
    # the whole image: escape/pwned lies under a symlink; writing it would follow it: skipped
    whole = tmp_path / "whole"
    proc = pybuild("cp", f"{src}:/", str(whole), root=tmp_path / "s")
    assert "skipped /escape/pwned: it is under the symlink /escape" in proc.stderr
    assert (whole / "etc" / "passwd").is_file() and os.readlink(whole / "escape") == str(outside)
    assert os.listdir(outside) == []
    # a symlink already in DEST is not followed either
    trap = tmp_path / "trap"
    trap.mkdir()
    (trap / "etc").symlink_to(outside)
    proc = pybuild("cp", f"{src}:/etc", str(trap), root=tmp_path / "s", check=False)
    assert proc.returncode == 1 and os.listdir(outside) == []
