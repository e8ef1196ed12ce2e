"""`pybuild build --explain`: a golden text for a 3-step Buildfile (hashes and staging paths
masked, everything else exact), and the JSON form agreeing with the stored image."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from buildfixtures import build
from conftest import pybuild

from builder.oci.digest import chain_id

GOLDEN = Path(__file__).parent / "golden" / "explain"


def mask(text: str) -> str:
    text = re.sub(r"tmp/live-\d+-build-[^/\s]+/step-[0-9a-f]+", "<step>", text)
    text = re.sub(r"sha256:[0-9a-f]{64}", "sha256:<hex>", text)
    text = re.sub(r"\b[0-9a-f]{16}\b", "<id16>", text)
    return re.sub(r"\b[0-9a-f]{12}\b", "<id>", text)


def test_explain_text_golden(store_root, tmp_path):
    proc = build(store_root, tmp_path, "--explain", buildfile=GOLDEN / "Buildfile", tag="ex").proc
    got = mask(proc.stdout)
    golden = GOLDEN / "three-steps.txt"
    if os.environ.get("PYBUILD_REGEN") == "1":
        golden.write_text(got)
    assert got == golden.read_text()


def test_explain_json_matches_the_image(store_root, tmp_path):
    proc = build(store_root, tmp_path, "--explain=json", "-q", buildfile=GOLDEN / "Buildfile", tag="ex").proc
    doc = json.loads(proc.stdout)
    inspect = json.loads(pybuild("inspect", "ex", root=store_root).stdout)
    assert doc["image"] == inspect["Id"]
    assert [s["kind"] for s in doc["steps"]] == ["layer", "layer", "config"]
    layers = [s for s in doc["steps"] if s["kind"] == "layer"]
    assert [s["diff_id"] for s in layers] == inspect["DiffIDs"][1:]
    assert [s["chain_id"] for s in layers] == inspect["ChainIDs"][1:]
    for step in layers:                     # the formula the text shows, recomputed
        assert chain_id(step["parent_chain"], step["diff_id"]) == step["chain_id"]
    whiteouts = [e for e in layers[0]["entries"] if "whiteout" in e["what"]]
    assert [w["tar"] for w in whiteouts] == [["usr/share/doc/pkg-b/.wh.README"]]
    opaque = [e for e in layers[1]["entries"] if "opaque" in e["what"]]
    assert [o["tar"] for o in opaque] == [["opt/data/", "opt/data/.wh..wh..opq"]]
