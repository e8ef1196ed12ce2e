"""The store: content addressing, atomic commits, crash leftovers, tags and resolution."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.errors import ImageNotFound
from builder.layer.capture import capture
from builder.oci.config import config_bytes, empty_config
from builder.oci.digest import chain_id, sha256_bytes
from builder.oci.manifest import manifest_bytes
from builder.store.store import Store, normalize_tag, root_for


def commit(store: Store, tmp_path: Path, files: dict[str, bytes], parent: str | None = None):
    """Capture a small dir as a layer and commit it; returns its LayerInfo."""
    src = store.scratch_dir("test")
    for name, data in files.items():
        (src / name).write_bytes(data)
        os.utime(src / name, (1_600_000_000, 1_600_000_000))   # the same tar, whatever second it is
    tar = store.scratch_dir("tar") / "layer.tar"
    with open(tar, "wb") as out:
        cap = capture(src, out)
    return store.commit_layer(chain_id=chain_id(parent, cap.diff_id), diff_id=cap.diff_id,
                              parent=parent, unpacked=src, tar_path=tar, size=cap.size)


def test_blobs_are_content_addressed_and_idempotent(tmp_path):
    store = Store(tmp_path)
    d1 = store.put_blob_bytes(b"hello")
    d2 = store.put_blob_bytes(b"hello")
    assert d1 == d2 == sha256_bytes(b"hello")
    assert store.read_blob(d1) == b"hello"
    assert len(os.listdir(tmp_path / "blobs/sha256")) == 1
    assert os.listdir(tmp_path / "tmp") == []


def test_commit_layer_is_whole_or_absent(tmp_path):
    store = Store(tmp_path)
    info = commit(store, tmp_path, {"a": b"1"})
    root = store.layer_root(info.chain_id)
    assert sorted(os.listdir(root)) == ["diff", "meta.json"]
    assert (store.layer_dir(info.chain_id) / "a").read_bytes() == b"1"
    assert store.layer_info(info.chain_id) == info
    assert os.readlink(tmp_path / store.short_layer_path(info.chain_id)).endswith("/diff")
    # committing the same layer again is a no-op that consumes its inputs
    again = commit(store, tmp_path, {"a": b"1"})
    assert again == info
    assert [p for p in os.listdir(tmp_path / "tmp") if not p.startswith(f"live-{os.getpid()}-")] == []


@pytest.mark.parametrize("leftover", [
    pytest.param("live-999999999-build-x", id="dead-builds-staging"),   # pid that cannot exist
    pytest.param("live-999999999-blob-x", id="dead-writers-temp-blob"),
    pytest.param("stray", id="unnamed-leftover"),
])
def test_a_new_store_sweeps_what_crashed_writers_left(tmp_path, leftover):
    Store(tmp_path)
    path = tmp_path / "tmp" / leftover
    path.mkdir() if "build" in leftover else path.write_bytes(b"half")
    Store(tmp_path)
    assert not path.exists()


def test_a_live_writers_staging_is_not_swept(tmp_path):
    store = Store(tmp_path)
    mine = store.scratch_dir("build")
    Store(tmp_path)                              # another process opening the store
    assert mine.is_dir()


def test_images_tags_and_resolution(tmp_path):
    store = Store(tmp_path)
    data = config_bytes(empty_config())
    image_id = store.put_image(data, manifest_bytes(config_digest=sha256_bytes(data),
                                                    config_size=len(data), layers=[]))
    assert image_id == sha256_bytes(data)
    store.set_tag("web", image_id)
    assert store.tags() == {"web:latest": image_id}
    for ref in ("web", "web:latest", image_id, image_id[7:19], image_id[:11]):
        assert store.resolve(ref) == image_id, ref
    with pytest.raises(ImageNotFound, match="no such image: nope"):
        store.resolve("nope")
    assert store.remove_tag("web") == image_id
    assert store.tags() == {}


@pytest.mark.parametrize("ref, want", [
    ("webapp", "webapp:latest"),
    ("webapp:1.0", "webapp:1.0"),
    ("localhost:5000/team/app", "localhost:5000/team/app:latest"),   # the port is not a tag
    ("localhost:5000/team/app:2", "localhost:5000/team/app:2"),
])
def test_normalize_tag(ref, want):
    assert normalize_tag(ref) == want


@pytest.mark.parametrize("environ, euid, want", [
    pytest.param({}, 0, "/var/lib/pybuild", id="root"),
    pytest.param({"XDG_DATA_HOME": "/srv/data"}, 0, "/var/lib/pybuild", id="root-ignores-xdg"),
    pytest.param({}, 1000, "/home/u/.local/share/pybuild", id="user-default"),
    pytest.param({"XDG_DATA_HOME": "/srv/data"}, 1000, "/srv/data/pybuild", id="user-xdg"),
    # the XDG spec: a relative or empty XDG_DATA_HOME is invalid and ignored
    pytest.param({"XDG_DATA_HOME": "data"}, 1000, "/home/u/.local/share/pybuild", id="user-xdg-relative"),
    pytest.param({"XDG_DATA_HOME": ""}, 1000, "/home/u/.local/share/pybuild", id="user-xdg-empty"),
    pytest.param({"PYBUILD_ROOT": "/x", "XDG_DATA_HOME": "/srv/data"}, 1000, "/x", id="user-pybuild-root-wins"),
    pytest.param({"PYBUILD_ROOT": "/x"}, 0, "/x", id="root-pybuild-root"),
    pytest.param({"PYBUILD_ROOT": ""}, 0, "/var/lib/pybuild", id="empty-pybuild-root-is-unset"),
])
def test_store_root_selection(environ, euid, want):
    assert root_for(environ, euid=euid, home="/home/u") == Path(want)
