"""import_rootfs, save and load (builder/export), against archives we build by hand in tmp."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from exportfixtures import (
    HELLO,
    add_bytes,
    add_symlink,
    gzip_bytes,
    image_config,
    layer_tar,
    make_rootfs,
    read_member,
    rewrite_archive,
    tar_dir,
)

from builder.errors import ArchiveError
from builder.export.docker_archive import load, save
from builder.export.reference import parse_tagged
from builder.export.rootfs_import import import_rootfs
from builder.oci.config import parse_config
from builder.oci.digest import chain_ids, hex_of, sha256_bytes, sha256_file
from builder.store import ingest as layers_mod
from builder.store.ingest import store_layer_from_tar
from builder.store.store import Store


def validate_image(store: Store, image_id: str) -> None:
    """Every invariant of a stored image: config digest, manifest ↔ config, layers and blobs."""
    config = store.image_config(image_id)
    assert sha256_bytes(config) == image_id
    cfg = parse_config(config)
    manifest = json.loads(store.image_manifest(image_id))
    assert manifest["config"] == {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": image_id, "size": len(config)}
    assert [d["digest"] for d in manifest["layers"]] == list(cfg.diff_ids)
    for desc, chain in zip(manifest["layers"], chain_ids(cfg.diff_ids)):
        assert store.has_layer(chain)
        assert store.layer_info(chain).diff_id == desc["digest"]
        assert sha256_file(store.blob_path(desc["digest"])) == (desc["digest"], desc["size"])
    non_empty = [h for h in cfg.history if not h.empty_layer]
    assert len(non_empty) == len(cfg.diff_ids)


def leftovers(store: Store) -> list[str]:
    return sorted(p.name for p in (store.root / "tmp").iterdir())


@pytest.fixture
def rootfs_tar(tmp_path: Path) -> Path:
    return tar_dir(make_rootfs(tmp_path / "rootfs"), tmp_path / "rootfs.tar.gz", compress="gz")


@pytest.fixture
def saved(tmp_path: Path, rootfs_tar: Path) -> tuple[Store, str, Path]:
    store = Store(tmp_path / "store1")
    image_id = import_rootfs(store, rootfs_tar, "webapp")
    out = tmp_path / "webapp.tar"
    save(store, ["webapp"], out)
    return store, image_id, out


def test_import_rootfs_makes_one_layer_image(tmp_path: Path, rootfs_tar: Path) -> None:
    store = Store(tmp_path / "store")
    image_id = import_rootfs(store, rootfs_tar, "webapp:v1")
    validate_image(store, image_id)
    assert store.resolve("webapp:v1") == image_id
    cfg = parse_config(store.image_config(image_id))
    assert cfg.os == "linux" and cfg.config.env == ()
    assert [h.comment for h in cfg.history] == ["Imported from rootfs.tar.gz"]
    layer = store.layer_dir(cfg.diff_ids[0])
    assert (layer / "etc/hello.txt").read_bytes() == HELLO
    assert os.readlink(layer / "etc/hello.link") == "hello.txt"
    assert os.stat(layer / "etc/hello.hard").st_ino == os.stat(layer / "etc/hello.txt").st_ino
    assert leftovers(store) == []


@pytest.mark.parametrize("compress", ["", "gz", "bz2", "xz"])
def test_import_is_canonical_whatever_the_compression(tmp_path: Path, compress: str) -> None:
    # the layer is re-captured, so its diffID depends only on the files, not on the tarball
    src = make_rootfs(tmp_path / "rootfs")
    reference = Store(tmp_path / "ref")
    plain = import_rootfs(reference, tar_dir(src, tmp_path / "plain.tar"), None)
    store = Store(tmp_path / "store")
    image_id = import_rootfs(store, tar_dir(src, tmp_path / f"r.tar.{compress}", compress=compress), "r")
    validate_image(store, image_id)
    assert parse_config(store.image_config(image_id)).diff_ids == \
        parse_config(reference.image_config(plain)).diff_ids


def test_import_refuses_a_non_tar(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive at all" * 40)
    with pytest.raises(ArchiveError, match="not a tar"):
        import_rootfs(store, junk, "junk")
    assert store.image_ids() == [] and leftovers(store) == []


def test_save_load_round_trip_into_a_second_store(tmp_path: Path, saved) -> None:
    store1, image_id, out = saved
    store2 = Store(tmp_path / "store2")
    assert load(store2, out) == [("webapp:latest", image_id)]
    validate_image(store2, image_id)
    assert store2.image_config(image_id) == store1.image_config(image_id)
    assert parse_config(store2.image_config(image_id)).diff_ids == \
        parse_config(store1.image_config(image_id)).diff_ids
    diff = parse_config(store2.image_config(image_id)).diff_ids[0]
    assert (store2.layer_dir(diff) / "etc/hello.txt").read_bytes() == HELLO
    assert leftovers(store2) == []


def test_saved_archive_is_both_layouts(saved) -> None:
    store, image_id, out = saved
    with tarfile.open(out) as tar:
        names = tar.getnames()
        for m in tar.getmembers():         # entries built by hand: nothing of the host leaks
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
    assert json.loads(read_member(out, "oci-layout")) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(read_member(out, "index.json"))
    [desc] = index["manifests"]
    assert desc["annotations"] == {"io.containerd.image.name": "docker.io/library/webapp:latest",
                                   "org.opencontainers.image.ref.name": "latest"}
    assert read_member(out, f"blobs/sha256/{hex_of(desc['digest'])}") == store.image_manifest(image_id)
    [item] = json.loads(read_member(out, "manifest.json"))
    assert item["Config"] == f"blobs/sha256/{hex_of(image_id)}"
    assert item["RepoTags"] == ["webapp:latest"]
    assert read_member(out, item["Config"]) == store.image_config(image_id)
    for layer in item["Layers"]:
        assert layer in names
    assert "repositories" in names


def test_save_is_deterministic_and_oci_format_is_the_same_file(tmp_path: Path, saved) -> None:
    store, image_id, out = saved
    again = tmp_path / "again.tar"
    save(store, ["webapp:latest"], again, fmt="oci")
    assert again.read_bytes() == out.read_bytes()
    with pytest.raises(ArchiveError, match="unknown archive format"):
        save(store, ["webapp"], tmp_path / "x.tar", fmt="zip")


def test_save_by_id_is_untagged_and_loads_untagged(tmp_path: Path, saved) -> None:
    store, image_id, _ = saved
    out = tmp_path / "byid.tar"
    save(store, [image_id[7:19]], out)
    assert json.loads(read_member(out, "manifest.json"))[0]["RepoTags"] is None
    store2 = Store(tmp_path / "store2")
    assert load(store2, out) == [(image_id, image_id)]
    assert store2.tags() == {} and store2.has_image(image_id)


def test_two_images_sharing_a_layer_write_it_once(tmp_path: Path, saved, rootfs_tar: Path) -> None:
    store, first, _ = saved
    second = import_rootfs(store, rootfs_tar, "other:v1")    # same layer, another created time
    assert second != first
    out = tmp_path / "both.tar"
    save(store, ["webapp", "other:v1", "webapp:latest"], out)
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert len(names) == len(set(names))
    items = json.loads(read_member(out, "manifest.json"))
    assert [i["RepoTags"] for i in items] == [["webapp:latest"], ["other:v1"]]
    assert items[0]["Layers"] == items[1]["Layers"]
    store2 = Store(tmp_path / "store2")
    assert load(store2, out) == [("webapp:latest", first), ("other:v1", second)]


def test_tampered_layer_fails_with_the_diff_id(tmp_path: Path, saved) -> None:
    store, image_id, out = saved
    [item] = json.loads(read_member(out, "manifest.json"))
    layer = read_member(out, item["Layers"][0])
    at = layer.index(HELLO)
    tampered = layer[:at] + b"J" + layer[at + 1:]          # one byte of file content changed
    bad = rewrite_archive(out, tmp_path / "bad.tar", replace={item["Layers"][0]: tampered})
    store2 = Store(tmp_path / "store2")
    diff = parse_config(store.image_config(image_id)).diff_ids[0]
    with pytest.raises(ArchiveError, match=f"invalid diffID for layer 0: expected {diff}, got sha256:"):
        load(store2, bad)
    assert store2.image_ids() == [] and store2.tags() == {} and not store2.has_layer(diff)
    assert leftovers(store2) == []


def test_oci_only_archive_loads(tmp_path: Path, saved) -> None:
    _, image_id, out = saved
    oci = rewrite_archive(out, tmp_path / "oci.tar", drop=("manifest.json", "repositories"))
    store2 = Store(tmp_path / "store2")
    assert load(store2, oci) == [("webapp:latest", image_id)]
    validate_image(store2, image_id)


def _docker2010_archive(path: Path) -> tuple[list[str], str, str]:
    """A docker-20.10 `docker save` of two images sharing a base layer: `<id>.json` configs,
    `<v1id>/layer.tar` (one gzip-compressed, one a symlink to the shared layer)."""
    base = layer_tar({"etc/base.txt": b"base\n"})
    top = layer_tar({"app/top.txt": b"top\n"})
    diffs = [sha256_bytes(base), sha256_bytes(top)]
    cfg1 = image_config(diffs)
    cfg2 = image_config(diffs[:1], author="other")
    id1, id2 = sha256_bytes(cfg1), sha256_bytes(cfg2)
    with tarfile.open(path, "w") as tar:
        add_bytes(tar, f"{hex_of(id1)}.json", cfg1)
        add_bytes(tar, f"{hex_of(id2)}.json", cfg2)
        for v1, data in (("a" * 64, base), ("b" * 64, gzip_bytes(top))):
            add_bytes(tar, f"{v1}/VERSION", b"1.0")
            add_bytes(tar, f"{v1}/json", b"{}")
            add_bytes(tar, f"{v1}/layer.tar", data)
        add_bytes(tar, f"{'c' * 64}/VERSION", b"1.0")
        add_symlink(tar, f"{'c' * 64}/layer.tar", f"../{'a' * 64}/layer.tar")
        add_bytes(tar, "manifest.json", json.dumps([
            {"Config": f"{hex_of(id1)}.json", "RepoTags": ["example.com/team/app:1.0"],
             "Layers": [f"{'a' * 64}/layer.tar", f"{'b' * 64}/layer.tar"]},
            {"Config": f"{hex_of(id2)}.json", "RepoTags": ["base:latest", "base:v2"],
             "Layers": [f"{'c' * 64}/layer.tar"]}]).encode())
        add_bytes(tar, "repositories", b"{}")
    return diffs, id1, id2


def test_docker_2010_archive_loads(tmp_path: Path) -> None:
    diffs, id1, id2 = _docker2010_archive(tmp_path / "d.tar")
    store = Store(tmp_path / "store")
    assert load(store, tmp_path / "d.tar") == [
        ("example.com/team/app:1.0", id1), ("base:latest", id2), ("base:v2", id2)]
    validate_image(store, id1)
    validate_image(store, id2)
    top_chain = chain_ids(diffs)[1]
    assert (store.layer_dir(top_chain) / "app/top.txt").read_bytes() == b"top\n"
    assert store.resolve("base:v2") == id2


def test_a_stored_layer_is_not_unpacked_again(tmp_path: Path, saved, monkeypatch) -> None:
    _, image_id, out = saved
    store2 = Store(tmp_path / "store2")
    load(store2, out)

    def boom(*_a, **_k):
        raise AssertionError("unpacked a layer that was already stored")
    monkeypatch.setattr(layers_mod, "unpack_layer", boom)
    assert load(store2, out) == [("webapp:latest", image_id)]
    # ... but it is still verified
    [item] = json.loads(read_member(out, "manifest.json"))
    layer = read_member(out, item["Layers"][0])
    bad = rewrite_archive(out, tmp_path / "bad.tar", replace={item["Layers"][0]: layer[:-1024] + b"x" * 1024})
    with pytest.raises(ArchiveError, match="invalid diffID for layer 0"):
        load(store2, bad)


def test_layer_count_must_match_diff_ids(tmp_path: Path) -> None:
    layer = layer_tar({"a": b"a"})
    cfg = image_config([sha256_bytes(layer), sha256_bytes(layer)])
    path = tmp_path / "short.tar"
    with tarfile.open(path, "w") as tar:
        add_bytes(tar, "c.json", cfg)
        add_bytes(tar, "l/layer.tar", layer)
        add_bytes(tar, "manifest.json", json.dumps(
            [{"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["l/layer.tar"]}]).encode())
    store = Store(tmp_path / "store")
    with pytest.raises(ArchiveError, match="layers length mismatch"):
        load(store, path)
    assert store.tags() == {}


def test_a_diff_id_that_is_not_a_digest_is_refused(tmp_path: Path) -> None:
    layer = layer_tar({"a": b"a"})
    path = tmp_path / "baddiff.tar"
    with tarfile.open(path, "w") as tar:
        add_bytes(tar, "c.json", image_config(["sha256:../../etc"]))
        add_bytes(tar, "l/layer.tar", layer)
        add_bytes(tar, "manifest.json", json.dumps(
            [{"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["l/layer.tar"]}]).encode())
    with pytest.raises(ArchiveError, match="diff_ids must be sha256 digests"):
        load(Store(tmp_path / "store"), path)


def test_oci_nested_index_picks_the_host_platform_and_gzip_layers(tmp_path: Path) -> None:
    from builder.oci.config import host_architecture
    layer = layer_tar({"hello": HELLO})
    blob = gzip_bytes(layer)
    cfg = image_config([sha256_bytes(layer)])
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha256_bytes(cfg), "size": len(cfg)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": sha256_bytes(blob), "size": len(blob)}]}).encode()
    other = b'{"schemaVersion":2}'       # another platform's manifest: never read
    nested = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                         "manifests": [
                             {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                              "digest": sha256_bytes(other), "size": len(other),
                              "platform": {"os": "linux", "architecture": "s390x"}},
                             {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                              "digest": sha256_bytes(manifest), "size": len(manifest),
                              "platform": {"os": "linux", "architecture": host_architecture()}}]}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha256_bytes(nested),
         "size": len(nested), "annotations": {"org.opencontainers.image.ref.name": "quay.io/x/y:2"}}]})
    path = tmp_path / "oci.tar.gz"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes(tar, "index.json", index.encode())
        for data in (cfg, manifest, nested, other, blob):
            add_bytes(tar, f"blobs/sha256/{hex_of(sha256_bytes(data))}", data)
    path.write_bytes(gzip_bytes(buf.getvalue()))        # the whole archive compressed, too
    store = Store(tmp_path / "store")
    assert load(store, path) == [("quay.io/x/y:2", sha256_bytes(cfg))]
    validate_image(store, sha256_bytes(cfg))


def test_store_layer_checks_the_blob_digest(tmp_path: Path) -> None:
    layer = layer_tar({"f": b"f"})
    store = Store(tmp_path / "store")
    with pytest.raises(ArchiveError, match="invalid digest for layer"):
        store_layer_from_tar(store, io.BytesIO(gzip_bytes(layer)), parent_chain=None,
                             expected_diff_id=sha256_bytes(layer), expected_digest=sha256_bytes(b"x"))
    assert not store.has_layer(sha256_bytes(layer)) and leftovers(store) == []
    info = store_layer_from_tar(store, io.BytesIO(gzip_bytes(layer)), parent_chain=None, expected_diff_id=None)
    assert info.diff_id == sha256_bytes(layer) and info.size == len(layer)


def test_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "empty.tar"
    with tarfile.open(path, "w") as tar:
        add_bytes(tar, "hello", b"x")
    with pytest.raises(ArchiveError, match="neither a manifest.json nor an OCI index.json"):
        load(Store(tmp_path / "store"), path)


@pytest.mark.parametrize("ref,full,familiar", [
    pytest.param("webapp", "docker.io/library/webapp:latest", "webapp:latest", id="official"),
    pytest.param("me/app:1", "docker.io/me/app:1", "me/app:1", id="user-repo"),
    pytest.param("docker.io/library/x:2", "docker.io/library/x:2", "x:2", id="already-full"),
    # a port in the host is not a tag
    pytest.param("localhost:5000/a/b", "localhost:5000/a/b:latest", "localhost:5000/a/b:latest", id="host-port"),
])
def test_reference_forms(ref: str, full: str, familiar: str) -> None:
    r = parse_tagged(ref)
    assert (r.full, r.familiar) == (full, familiar)


@pytest.mark.parametrize("ref", ["", "UPPER:1", "a@sha256:00", "x:bad tag"])
def test_bad_references(ref: str) -> None:
    with pytest.raises(ArchiveError, match="invalid tag"):
        parse_tagged(ref)


@pytest.mark.parametrize("codec", ["gzip", "bzip2", "xz", "zstd"])
def test_a_compressed_layer_stream_is_stored_by_its_uncompressed_diff_id(tmp_path: Path, codec: str) -> None:
    """Pulled and loaded layers come compressed; the diffID is of the tar inside."""
    import bz2
    import gzip
    import io
    import lzma

    import zstandard

    from builder.oci.digest import sha256_bytes
    from builder.store.ingest import store_layer_from_tar
    raw = layer_tar({"etc/a": b"a\n", "etc/b": b"b\n"})
    blob = {"gzip": lambda d: gzip.compress(d, mtime=0), "bzip2": bz2.compress, "xz": lzma.compress,
            "zstd": lambda d: zstandard.ZstdCompressor().compress(d)}[codec](raw)
    store = Store(tmp_path / "store")
    info = store_layer_from_tar(store, io.BytesIO(blob), parent_chain=None,
                                expected_diff_id=sha256_bytes(raw))
    assert info.diff_id == sha256_bytes(raw)
    assert (store.layer_dir(info.chain_id) / "etc/b").read_bytes() == b"b\n"
    with pytest.raises(ArchiveError, match="invalid diffID"):
        store_layer_from_tar(Store(tmp_path / "other"), io.BytesIO(blob), parent_chain=None,
                             expected_diff_id=sha256_bytes(raw + b"x"))
