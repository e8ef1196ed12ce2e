"""dive's own test image (../shared/fixtures/dive, a `docker save` of 14 layers): dive's
numbers to the last digit, dive's export schema, dive's CI rule cases, through `pybuild`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import pybuild, shared_fixture

from builder.analysis import ci
from builder.analysis.image import Analysis, load
from builder.analysis.sources import open_image, parse_source

pytestmark = pytest.mark.shared_fixture


@pytest.fixture(scope="module")
def dive_tar() -> Path:
    return shared_fixture("dive/test-docker-image.tar")


@pytest.fixture(scope="module")
def analysis(dive_tar) -> Analysis:
    with open_image(parse_source(f"docker-archive:{dive_tar}"), store=lambda: None) as image:  # type: ignore
        return load(image)


def test_dive_numbers_to_the_last_digit(analysis) -> None:
    d = analysis.dive
    assert d.score == 0.9844212134184309
    assert d.size_bytes == 1220598
    assert d.user_size_bytes == 66237
    assert d.wasted_bytes == 32025
    assert d.wasted_user_percent == 0.4834911001404049


def test_json_is_dives_export(dive_tar, tmp_path) -> None:
    out = pybuild("analyze", "--json", f"docker-archive:{dive_tar}", root=tmp_path / "store").stdout
    doc = json.loads(out)
    assert list(doc) == ["layer", "image"]
    image = doc["image"]
    assert list(image) == ["sizeBytes", "inefficientBytes", "efficiencyScore", "fileReference", "pybuild"]
    assert (image["sizeBytes"], image["inefficientBytes"], image["efficiencyScore"]) == \
        (1220598, 32025, 0.9844212134184309)
    # dive's order: largest first; of equals, the one found inefficient last first
    assert image["fileReference"] == [
        {"count": 2, "sizeBytes": 12810, "file": "/root/saved.txt"},
        {"count": 2, "sizeBytes": 12810, "file": "/root/example/somefile1.txt"},
        {"count": 2, "sizeBytes": 6405, "file": "/root/example/somefile3.txt"}]
    layers = doc["layer"]
    assert [list(layer) for layer in layers][0] == ["index", "id", "digestId", "sizeBytes", "command", "fileList"]
    assert [layer["sizeBytes"] for layer in layers] == [1154361, 6405, 0, 6405, 6405, 6405, 6405, 6405, 6405, 0,
                                                        2187, 6405, 6405, 6405]
    first = layers[0]
    assert first["id"] == "28cfe03618aa2e914e81fdd90345245c15f4478e35252c06ca52d238fd3cc694"
    assert first["digestId"] == "sha256:23bc2b70b2014dec0ac22f27bb93e9babd08cdd6f1115d0c955b9ff22b382f5a"
    assert first["command"].startswith("#(nop) ADD file:ce026b62")
    # dive's fileList: children first, in name order, Go's FileMode (ModeDir is 1<<31)
    assert first["fileList"][:2] == [
        {"path": "bin/[", "typeFlag": 48, "linkName": "", "size": 1075464, "fileMode": 493, "uid": 0, "gid": 0,
         "isDir": False},
        {"path": "bin/[[", "typeFlag": 49, "linkName": "bin/[", "size": 0, "fileMode": 493, "uid": 0, "gid": 0,
         "isDir": False}]
    tmp = next(e for e in first["fileList"] if e["path"] == "tmp")
    assert tmp["fileMode"] == 2148532735                  # ModeDir | ModeSticky | 0777
    assert layers[7]["fileList"][0] == {"path": "root/example/.wh.somefile3.txt", "typeFlag": 48, "linkName": "",
                                        "size": 0, "fileMode": 0, "uid": 0, "gid": 0, "isDir": False}
    assert [e["path"] for e in layers[9]["fileList"]] == ["root/.wh.example", "root"]
    extra = image["pybuild"]
    assert (extra["userSizeBytes"], extra["wastedUserPercent"]) == (66237, 0.4834911001404049)
    assert extra["reclaimableBytes"] == 32025 and extra["duplicateBytes"] == 25620


@pytest.mark.parametrize("efficiency, wasted, percent, passes, statuses", [
    # dive's evaluator cases (runtime/ci evaluator_test): all fail, all pass, all off, mixed
    ("0.99", "1B", "0.01", False, {"lowestEfficiency": "FAIL", "highestWastedBytes": "FAIL",
                                   "highestUserWastedPercent": "FAIL"}),
    ("0.9", "50kB", "0.5", True, {"lowestEfficiency": "PASS", "highestWastedBytes": "PASS",
                                  "highestUserWastedPercent": "PASS"}),
    ("disabled", "disabled", "disabled", True, {"lowestEfficiency": "SKIP", "highestWastedBytes": "SKIP",
                                                "highestUserWastedPercent": "SKIP"}),
    ("0.9", "1B", "0.5", False, {"lowestEfficiency": "PASS", "highestWastedBytes": "FAIL",
                                 "highestUserWastedPercent": "PASS"}),
])
def test_dive_rule_cases(analysis, efficiency, wasted, percent, passes, statuses) -> None:
    values = {"lowest-efficiency": efficiency, "highest-wasted-bytes": wasted,
              "highest-user-wasted-percent": percent, "highest-reclaimable-bytes": "disabled"}
    rules = [ci.make_rule(s, values[s.name], "test") for s in ci.RULES]
    results = ci.evaluate(analysis, rules)
    assert ci.passed(results) is passes
    assert {r.rule.key: r.status for r in results if r.rule.key in statuses} == statuses


def test_ci_report_has_dives_shape(dive_tar, tmp_path) -> None:
    (tmp_path / ".dive-ci").write_text("rules:\n  lowest-efficiency: 0.95\n  highest-wasted-bytes: 20MB\n"
                                       "  highest-user-wasted-percent: 0.6\n  highest-reclaimable-bytes: 32kB\n")
    proc = pybuild("analyze", "--ci", f"docker-archive:{dive_tar}", root=tmp_path / "store", cwd=tmp_path,
                   check=False)
    assert proc.returncode == 1, proc.stderr              # 32025 reclaimable bytes > 32 kB
    lines = proc.stdout.splitlines()
    assert lines[:5] == ["Analysis:", "  efficiency:        98.44 %", "  wastedBytes:       32025 bytes (32 kB)",
                         "  userWastedPercent: 48.35 %", "  reclaimableBytes:  32025 bytes (32 kB)"]
    assert "  Count  Wasted Space  File Path" in lines
    assert "  2      13 kB         /root/saved.txt" in lines
    evaluation = lines[lines.index("Evaluation:") + 1:]
    assert evaluation[:4] == ["  FAIL  highestReclaimableBytes (32025 bytes reclaimable, more than 32000)",
                              "  PASS  highestUserWastedPercent (0.6)",
                              "  PASS  highestWastedBytes (20MB)",
                              "  PASS  lowestEfficiency (0.95)"]
    assert evaluation[-1] == "FAIL [pass:3 fail:1]"
