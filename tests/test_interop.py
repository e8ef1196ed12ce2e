"""Our archives against the real tools: dockerd (20.10 here), skopeo and umoci.

No test skips: a missing tool fails with a message pointing at the CI install step.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from dockerd import DockerDaemon, require_tool
from exportfixtures import HELLO, make_rootfs, tar_dir

from builder.export.docker_archive import load, save
from builder.export.rootfs_import import import_rootfs
from builder.oci.config import parse_config
from builder.store.store import Store

TAG = "pybuild-interop/webapp:latest"


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> tuple[Store, str, tuple[str, ...], Path]:
    """A one-layer image with busybox as /bin/cat, saved to an archive: (store, id, diffIDs, tar)."""
    tmp = tmp_path_factory.mktemp("interop")
    rootfs = tar_dir(make_rootfs(tmp / "rootfs", busybox=True), tmp / "rootfs.tar")
    store = Store(tmp / "store")
    image_id = import_rootfs(store, rootfs, TAG)
    out = tmp / "webapp.tar"
    save(store, [TAG], out)
    return store, image_id, parse_config(store.image_config(image_id)).diff_ids, out


@pytest.fixture(scope="module")
def loaded(docker: DockerDaemon, image) -> str:
    _, _, _, out = image
    result = docker.run("load", "-i", str(out))
    return result.stdout


def test_docker_loads_our_archive(docker: DockerDaemon, image, loaded: str) -> None:
    _, image_id, diff_ids, _ = image
    assert f"Loaded image: {TAG}" in loaded
    [info] = json.loads(docker.run("image", "inspect", TAG).stdout)
    assert info["Id"] == image_id
    assert info["RootFS"]["Layers"] == list(diff_ids)
    assert TAG in info["RepoTags"]


def test_docker_runs_our_image(docker: DockerDaemon, loaded: str) -> None:
    result = docker.run("run", "--rm", "--network", "none", TAG, "cat", "/etc/hello.txt")
    assert result.stdout.encode() == HELLO


def test_docker_save_loads_back_with_our_load(docker: DockerDaemon, image, loaded: str,
                                              tmp_path: Path) -> None:
    _, image_id, diff_ids, _ = image
    out = tmp_path / "docker-saved.tar"
    docker.run("save", "-o", str(out), TAG)
    store = Store(tmp_path / "store")
    assert load(store, out) == [(TAG, image_id)]
    assert parse_config(store.image_config(image_id)).diff_ids == diff_ids
    assert (store.layer_dir(diff_ids[0]) / "etc/hello.txt").read_bytes() == HELLO


def test_skopeo_inspects_our_archive(image) -> None:
    skopeo = require_tool("skopeo")
    _, image_id, diff_ids, out = image
    proc = subprocess.run([skopeo, "inspect", f"oci-archive:{out}"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["Layers"] == list(diff_ids)
    assert info["Os"] == "linux"
    proc = subprocess.run([skopeo, "inspect", "--config", "--raw", f"oci-archive:{out}:latest"],
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == image[0].image_config(image_id)


def test_umoci_unpacks_our_layout(image, tmp_path: Path) -> None:
    umoci = require_tool("umoci")
    _, _, _, out = image
    layout = tmp_path / "layout"
    layout.mkdir()
    subprocess.run(["tar", "-C", str(layout), "-xf", str(out)], check=True)
    bundle = tmp_path / "bundle"
    proc = subprocess.run([umoci, "unpack", "--image", f"{layout}:latest", str(bundle)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (bundle / "rootfs" / "etc" / "hello.txt").read_bytes() == HELLO
    assert (bundle / "rootfs" / "etc" / "hello.link").readlink() == Path("hello.txt")


def test_a_missing_tool_fails_with_the_install_hint() -> None:
    with pytest.raises(AssertionError, match="run the CI install step"):
        require_tool("no-such-tool-pybuild")
