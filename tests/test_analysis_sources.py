"""Where analyze reads images from: docker-archive (a blob listed twice, gzip/zstd/plain
layers), oci-archive, oci: directories, a registry (streamed, nothing stored), the store; and
one clear line with exit 2 (usage) or 1 (failure) for every bad input."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from analysisfixtures import docker_archive, layer_tar, oci_layout
from conftest import pybuild

from builder.analysis.image import load
from builder.analysis.sources import Source, open_image, parse_source, read_layers
from builder.store.store import Store

BASE = layer_tar([("etc", None, 0o755), ("etc/os-release", "ID=test\n" * 40, 0o644), ("bin", None, 0o755),
                  ("bin/tool", b"\x7fELF" + bytes(2000), 0o755)])
EMPTY = layer_tar([])                                       # a layer that changes nothing
CHMOD = layer_tar([("etc", None, 0o755), ("etc/os-release", "ID=test\n" * 40, 0o600)])
MORE = layer_tar([("data", None, 0o755), ("data/blob", b"x" * 5000, 0o644), ("data/copy", b"x" * 5000, 0o644)])
LAYERS = [BASE, EMPTY, CHMOD, MORE]
COMMANDS = ["ADD base /", "ENV A=1", "chmod 600 /etc/os-release", "COPY data /data"]
# worked out by hand: os-release is 8 * 40 = 320 bytes, stored twice (chmod); tool 2004; data
# 5000 at two paths (a duplicate, not waste to dive)
SIZES = [320 + 2004, 0, 320, 10000]
EXPECTED = {"size": 12644, "user": 10320, "wasted": 640, "score": (12644 - 320) / 12644, "reclaimable": 320,
            "duplicate": 5000}


def numbers(text: str, root: Path) -> dict:
    with open_image(parse_source(text), store=lambda: Store(root)) as image:
        a = load(image)
    return {"size": a.dive.size_bytes, "user": a.dive.user_size_bytes, "wasted": a.dive.wasted_bytes,
            "score": a.dive.score, "reclaimable": a.reclaimable_bytes, "duplicate": a.duplicate_bytes,
            "layers": [layer.size for layer in a.layers], "commands": [layer.command for layer in a.layers]}


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_docker_archive_any_compression(tmp_path, compression) -> None:
    tar = docker_archive(tmp_path / "img.tar", LAYERS, COMMANDS, compression=compression)
    got = numbers(f"docker-archive:{tar}", tmp_path / "store")
    assert {k: got[k] for k in EXPECTED} == EXPECTED
    assert got["layers"] == SIZES and got["commands"] == COMMANDS


def test_one_blob_listed_twice_is_two_layers(tmp_path) -> None:
    """containerd's exports list the one empty-layer blob at each place it is used."""
    tar = docker_archive(tmp_path / "img.tar", LAYERS, COMMANDS + ["ENV B=2"], order=[0, 1, 2, 1, 3])
    got = numbers(f"docker-archive:{tar}", tmp_path / "store")
    assert got["layers"] == [SIZES[0], 0, SIZES[2], 0, SIZES[3]]
    assert {k: got[k] for k in EXPECTED} == EXPECTED


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_oci_archive_and_oci_dir(tmp_path, compression) -> None:
    tar = oci_layout(tmp_path / "img.oci.tar", LAYERS, COMMANDS, compression=compression)
    (tmp_path / "layout").mkdir()
    layout = oci_layout(tmp_path / "layout", LAYERS, COMMANDS, compression=compression, as_tar=False)
    assert numbers(f"oci-archive:{tar}", tmp_path / "s") == numbers(f"oci:{layout}", tmp_path / "s")
    assert {k: v for k, v in numbers(f"oci:{layout}", tmp_path / "s").items() if k in EXPECTED} == EXPECTED


def test_a_tampered_oci_blob_is_refused(tmp_path) -> None:
    (tmp_path / "layout").mkdir()
    layout = oci_layout(tmp_path / "layout", LAYERS, COMMANDS, compression="none", as_tar=False)
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    blob = layout / "blobs/sha256" / manifest["layers"][3]["digest"][7:]
    blob.write_bytes(blob.read_bytes().replace(b"x" * 5000, b"y" * 5000, 1))
    proc = pybuild("analyze", f"oci:{layout}", root=tmp_path / "s", check=False)
    assert proc.returncode == 1 and "does not match its digest" in proc.stderr


def test_registry_layers_are_streamed_and_never_stored(registry, tmp_path) -> None:
    tar = docker_archive(tmp_path / "img.tar", LAYERS, COMMANDS, compression="gzip")
    pusher = tmp_path / "pusher"
    pybuild("load", "-i", str(tar), root=pusher)
    pybuild("push", "t:1", f"{registry.host}/team/analysed:1", root=pusher)
    fresh = tmp_path / "fresh"
    got = numbers(f"docker://{registry.host}/team/analysed:1", fresh)
    assert {k: got[k] for k in EXPECTED} == EXPECTED
    out = pybuild("analyze", f"docker://{registry.host}/team/analysed:1", root=fresh).stdout
    assert "reclaimableBytes   320" in out
    assert not [p for p in fresh.rglob("*") if p.is_file() and "blobs" in p.parts], "a blob was stored"
    assert pybuild("images", root=fresh).stdout.count("\n") <= 1


def test_from_the_store_by_tag_and_id(tmp_path) -> None:
    tar = docker_archive(tmp_path / "img.tar", LAYERS, COMMANDS, compression="gzip")
    root = tmp_path / "store"
    pybuild("load", "-i", str(tar), root=root)
    by_tag = numbers("t:1", root)
    assert {k: by_tag[k] for k in EXPECTED} == EXPECTED
    image_id = Store(root).resolve("t:1")
    assert numbers(image_id[7:19], root) == by_tag


def test_a_big_layer_is_streamed_not_held(tmp_path) -> None:
    big = layer_tar([("big", bytes(48 << 20), 0o644)])
    tar = docker_archive(tmp_path / "img.tar", [big], ["ADD big /"], compression="gzip")
    del big
    with open_image(parse_source(f"docker-archive:{tar}"), store=lambda: None) as image:  # type: ignore
        tracemalloc.start()
        try:
            (entries,) = read_layers(image)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert [e.size for e in entries] == [48 << 20]
    assert peak < 4 << 20, f"{peak} bytes held at once while reading a 48 MiB layer"


@pytest.mark.parametrize("text, kind, where", [
    ("webapp", "store", "webapp"), ("webapp:v1", "store", "webapp:v1"), ("sha256:abcd", "store", "sha256:abcd"),
    ("docker-archive:a.tar", "docker-archive", "a.tar"), ("oci-archive:/x/y.tar", "oci-archive", "/x/y.tar"),
    ("oci:dir", "oci", "dir"), ("docker://localhost:5000/a/b:1", "docker", "localhost:5000/a/b:1"),
    ("localhost:5000/a/b:1", "store", "localhost:5000/a/b:1"),     # no transport: a store tag
])
def test_parse_source(text, kind, where) -> None:
    assert parse_source(text) == Source(kind, where)


@pytest.mark.parametrize("args, code, says", [
    (["analyze", "nosuch:tag"], 1, "no such image: nosuch:tag"),
    (["analyze", "docker-daemon:webapp"], 2, "unknown image source docker-daemon:"),
    (["analyze", "ftp://host/x"], 2, "unknown image source"),
    (["analyze", "docker-archive:"], 2, "names nothing"),
    (["analyze", "docker-archive:{missing}"], 1, "no such file"),
    (["analyze", "docker-archive:{notar}"], 1, "not a readable tar archive"),
    (["analyze", "oci-archive:{archive}"], 1, "not an OCI layout: no index.json in it (it is a docker-archive"),
    (["analyze", "--layers", "3..1", "docker-archive:{archive}"], 2, "--layers 3..1: the image has layers 0..3"),
    (["analyze", "--layers", "x", "docker-archive:{archive}"], 2, "--layers x: expected A..B"),
    (["analyze", "--min-size", "big", "docker-archive:{archive}"], 2, "--min-size"),
    (["analyze", "--ci", "--ci-config", "{badrule}", "docker-archive:{archive}"], 2, "badrule.yaml:2: "),
    (["analyze", "--ci", "--json", "docker-archive:{archive}"], 2, "do not go together"),
    (["analyze", "docker-archive:{corrupt}"], 1, "not a readable layer tar"),
    (["cp", "docker-archive:{archive}:/nothere", "{tmp}/out"], 2, "/nothere: no such file or directory"),
    (["cp", "docker-archive:{archive}", "{tmp}/out"], 2, "expected IMAGE:/PATH"),
    (["cp", "--layer", "9", "docker-archive:{archive}:/etc", "{tmp}/out"], 2, "--layer 9: the image has layers 0..3"),
    (["report", "docker-archive:{archive}", "-o", "{tmp}/no/dir/r.html"], 2, "its directory does not exist"),
])
def test_bad_input_is_one_clear_line(tmp_path, args, code, says) -> None:
    archive = docker_archive(tmp_path / "img.tar", LAYERS, COMMANDS)
    (tmp_path / "notar").write_text("not a tar\n")
    (tmp_path / "badrule.yaml").write_text("rules:\n  lowest-efficiency: 2\n")
    corrupt = docker_archive(tmp_path / "corrupt.tar", [BASE, b"\x1f\x8b garbage" * 100], ["a", "b"])
    names = {"archive": archive, "missing": tmp_path / "missing.tar", "notar": tmp_path / "notar",
             "badrule": tmp_path / "badrule.yaml", "corrupt": corrupt, "tmp": tmp_path}
    proc = pybuild(*[a.format(**names) for a in args], root=tmp_path / "store", check=False)
    assert proc.returncode == code, proc.stderr
    assert says in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
