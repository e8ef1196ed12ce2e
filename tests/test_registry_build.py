"""Registries in builds: FROM pulls what the store lacks, --pull=never does not, and the
build cache travels between two store roots ("two machines") through --cache-to/--cache-from."""

from __future__ import annotations

import json

from buildfixtures import build, make_context
from conftest import pybuild
from test_registry import image_of

from builder.store.store import Store

BASE = "pbtest/busybox:base"
PULL = {"PYBUILD_PULL": "missing"}       # conftest's pybuild() defaults to never


def spec(buildfile: str) -> dict[str, str]:
    """A context: the Buildfile and the file its ADD takes."""
    return {"Buildfile": buildfile, "f.txt": "context file\n"}


def test_from_pulls_a_missing_base(registry, store_root, tmp_path):
    ref = f"{registry.host}/team/base:1.2"
    pybuild("push", BASE, ref, root=store_root)
    machine_b = tmp_path / "b"
    ctx = make_context(tmp_path / "ctx", spec(f"FROM {ref}\nRUN echo ok > /ok\n"))
    out = build(machine_b, ctx, tag="app", env=PULL).proc.stdout
    assert f"pulling {ref}" in out
    assert image_of(machine_b, ref) == image_of(store_root, BASE)
    assert pybuild("run", "app", "cat", "/ok", root=machine_b).stdout == "ok\n"
    # the second build finds the base in the store: no pull
    assert "pulling" not in build(machine_b, ctx, tag="app", env=PULL).proc.stdout


def test_pull_never_fails_without_touching_a_registry(store_root, tmp_path):
    ctx = make_context(tmp_path / "ctx", spec("FROM debian:bookworm\nRUN true\n"))
    proc = build(store_root, ctx, "--pull=never", tag="x", check=False).proc
    assert proc.returncode == 1
    assert "base image debian:bookworm is not in the store" in proc.stderr


def test_cache_travels_between_two_machines(registry, store_root, tmp_path):
    text = ("FROM pbtest/busybox:base\nRUN echo ran-1 && echo one > /one\nADD f.txt /f.txt\n"
            "RUN echo ran-3 && cat /f.txt > /copy\nCMD [\"cat\", \"/copy\"]\n")
    ctx = make_context(tmp_path / "ctx", spec(text))
    cache = f"{registry.host}/team/app:buildcache"
    a = build(store_root, ctx, "--cache-to", cache, tag="app").proc.stdout
    assert "] ran-1" in a and "] ran-3" in a      # RUN output lines are prefixed [N/M]
    base = tmp_path / "base.tar"                  # machine B has the same base, nothing else
    pybuild("save", BASE, "-o", str(base), root=store_root)
    machine_b = tmp_path / "b"
    pybuild("load", "-i", str(base), root=machine_b)
    b = build(machine_b, ctx, "--cache-from", cache, tag="app").proc.stdout
    assert "] ran-" not in b, "no RUN step may run on machine B"
    assert b.count("---> Using cache") == 4
    assert Store(machine_b).resolve("app") == Store(store_root).resolve("app")
    assert pybuild("run", "app", root=machine_b).stdout == "context file\n"


def test_inspect_a_remote_reference_without_pulling(registry, store_root, tmp_path):
    ref = f"{registry.host}/team/base:1"
    pybuild("push", BASE, ref, root=store_root)
    machine_b = tmp_path / "b"
    info = json.loads(pybuild("inspect", "--remote", ref, root=machine_b).stdout)
    assert info["config_digest"] == Store(store_root).resolve(BASE)
    assert len(info["layers"]) == 1 and info["total_size"] > 0
    assert not (machine_b / "tags.json").exists() or json.loads((machine_b / "tags.json").read_text()) == {}
