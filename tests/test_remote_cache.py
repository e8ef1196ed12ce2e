"""The build cache shared through a registry (issue 6: --cache-to / --cache-from) and
``inspect_remote``, against the real ``docker-registry`` on 127.0.0.1 (test_registry's
fixtures).  Two store roots act as two machines."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import requests
from buildfixtures import build, make_context
from conftest import pybuild
from registryd import free_port
from test_registry import CountingSession

from builder.errors import RegistryError
from builder.oci.config import host_architecture, parse_config
from builder.oci.digest import chain_ids, sha256_bytes
from builder.registry.inspect import inspect_remote
from builder.registry.push import compressed_layer, push
from builder.registry.remote_cache import CACHE_CONFIG_TYPE, RemoteCache, export_cache
from builder.store.cache import BuildCache
from builder.store.store import Store

BASE = "pbtest/busybox:base"
BUILDFILE = """FROM pbtest/busybox:base
RUN echo marker-run-1 && echo one > /one
ADD app /app
RUN echo marker-run-2 && cat /app/a > /copy
ENV X=1
RUN echo marker-run-3 && echo $X > /x
CMD ["cat", "/x"]
"""
STEPS = 6


#: The context of every build here.
CONTEXT = {"app/a": "a\n", "app/b": "b\n" * 1000, "Buildfile": BUILDFILE}


def markers(proc) -> list[str]:
    return sorted(line.split("] ", 1)[1] for line in proc.stdout.splitlines() if "] marker-run-" in line)


@pytest.fixture
def machines(tmp_path, base_tar):
    """Root A with the base imported; root B with the identical base (save from A, load)."""
    a, b = tmp_path / "a", tmp_path / "b"
    pybuild("import", str(base_tar), BASE, root=a)
    archive = tmp_path / "base-save.tar"
    pybuild("save", "-o", str(archive), BASE, root=a)
    pybuild("load", "-i", str(archive), root=b)
    assert Store(a).resolve(BASE) == Store(b).resolve(BASE)
    return a, b


def cache_keys(root: Path) -> list[str]:
    return ["sha256:" + p.name for p in BuildCache(Store(root)).entries()]


def build_a_and_export(machines, tmp_path, registry, ref):
    a, _ = machines
    ctx = make_context(tmp_path / "ctx", CONTEXT)
    first = build(a, ctx, tag="app").proc
    assert markers(first) == ["marker-run-1", "marker-run-2", "marker-run-3"], first.stdout
    keys = cache_keys(a)
    assert len(keys) == STEPS
    digest = export_cache(Store(a), keys, ref)
    return ctx, keys, digest


def test_cache_to_then_cache_from_on_a_second_machine(machines, tmp_path, registry):
    a, b = machines
    ref = f"{registry.host}/team/app:buildcache"
    ctx, keys, digest = build_a_and_export(machines, tmp_path, registry, ref)
    image_a = Store(a).resolve("app")
    base_chains = chain_ids(parse_config(Store(a).image_config(Store(a).resolve(BASE))).diff_ids)
    all_diff_ids = parse_config(Store(a).image_config(image_a)).diff_ids
    new_diff_ids = all_diff_ids[len(base_chains):]
    assert len(new_diff_ids) == 4                 # 3 RUNs + ADD; ENV/CMD add no layer

    # the manifest: our config type, every layer and intermediate config referenced
    info = inspect_remote(ref)
    assert info["digest"] == digest and info["config_mediaType"] == CACHE_CONFIG_TYPE
    assert set(info["config"]["entries"]) == set(keys)
    assert info["index"] is None

    # a second export pushes nothing new
    session = CountingSession()
    assert export_cache(Store(a), keys, ref, session=session) == digest
    assert not [m for m, p in session.sent if m in ("POST", "PATCH") or (m == "PUT" and "/blobs/" in p)]

    # machine B: only the base; fetch every remote entry, counting blob GETs
    store_b = Store(b)
    assert store_b.image_ids() == [Store(a).resolve(BASE)]
    session = CountingSession()
    remote = RemoteCache(store_b, ref, session=session)
    assert sorted(remote.keys()) == sorted(keys)
    assert all(remote.fetch(k) for k in remote.keys())
    assert remote.fetch("sha256:" + "0" * 64) is False
    blob_gets = [p.rsplit("/", 1)[1] for m, p in session.sent if m == "GET" and "/blobs/" in p]
    layer_blobs = {compressed_layer(Store(a), d).digest for d in new_diff_ids}
    configs = {json.loads((a / "cache" / k[7:]).read_text())["config"] for k in keys}
    assert sorted(blob_gets) == sorted(layer_blobs | configs | {info["config_digest"]}), blob_gets
    assert len(blob_gets) == len(set(blob_gets))           # each blob at most once
    assert not set(blob_gets) & {compressed_layer(Store(a), d).digest
                                 for d in all_diff_ids[:len(base_chains)]}  # base never fetched

    proc = build(b, ctx, tag="app").proc
    assert markers(proc) == [], proc.stdout              # no RUN step ran
    assert proc.stdout.count("---> Using cache") == STEPS, proc.stdout
    assert store_b.resolve("app") == image_a
    assert pybuild("run", "app", root=b).stdout.strip() == "1"


def test_corrupted_cache_blob_is_refused_and_the_build_runs(machines, tmp_path, registry):
    a, b = machines
    ref = f"{registry.host}/team/app:buildcache"
    ctx, keys, _ = build_a_and_export(machines, tmp_path, registry, ref)
    store_a = Store(a)
    diff_ids = parse_config(store_a.image_config(store_a.resolve("app"))).diff_ids
    base_len = len(parse_config(store_a.image_config(store_a.resolve(BASE))).diff_ids)
    first_run = diff_ids[base_len]                       # the layer of the first RUN
    blob = registry.blob_file(compressed_layer(store_a, first_run).digest)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))

    warnings: list[str] = []
    store_b = Store(b)
    remote = RemoteCache(store_b, ref, warn=warnings.append)
    results = {k: remote.fetch(k) for k in remote.keys()}
    assert warnings and any("digest mismatch" in w for w in warnings), warnings
    # every step after the first RUN sits on its layer: none is served; nothing bad stored
    assert not store_b.has_blob(first_run)
    assert not any(store_b.has_layer(c) for c in chain_ids(diff_ids)[base_len:])
    assert list((b / "tmp").iterdir()) == []
    assert not any(results.values())

    proc = build(b, ctx, tag="app").proc
    assert markers(proc) == ["marker-run-1", "marker-run-2", "marker-run-3"], proc.stdout


def test_missing_or_unreachable_cache_is_an_empty_cache(tmp_path, registry):
    store = Store(tmp_path / "s")
    for ref in (f"{registry.host}/team/none:buildcache", f"127.0.0.1:{free_port()}/team/x:c"):
        warnings: list[str] = []
        remote = RemoteCache(store, ref, warn=warnings.append)
        assert remote.fetch("sha256:" + "1" * 64) is False
        assert remote.keys() == [] and len(warnings) == 1, warnings
    with pytest.raises(RegistryError, match="no usable local cache entry"):
        export_cache(store, ["sha256:" + "2" * 64], f"{registry.host}/team/none:c")


def test_an_image_is_not_a_cache(tmp_path, registry, store_root):
    dest = f"{registry.host}/team/img:1"
    push(Store(store_root), BASE, dest)
    warnings: list[str] = []
    assert RemoteCache(Store(store_root), dest, warn=warnings.append).keys() == []
    assert "not a pybuild cache" in warnings[0]


def test_inspect_remote_of_a_pushed_image(registry, store_root):
    store = Store(store_root)
    dest = f"{registry.host}/team/base:1.2"
    result = push(store, BASE, dest)
    session = CountingSession()
    info = inspect_remote(dest, store=store, session=session)
    image_id = store.resolve(BASE)
    diff_ids = parse_config(store.image_config(image_id)).diff_ids
    blobs = [compressed_layer(store, d) for d in diff_ids]
    assert info["digest"] == result.manifest_digest and info["index"] is None
    assert info["config_digest"] == image_id
    assert info["config"]["rootfs"]["diff_ids"] == list(diff_ids)
    assert [(d["digest"], d["size"]) for d in info["layers"]] == [(b.digest, b.size) for b in blobs]
    assert info["layers_size"] == sum(b.size for b in blobs)
    assert info["total_size"] == info["layers_size"] + len(store.image_config(image_id))
    assert info["platform"]["architecture"] == host_architecture()
    layer_gets = [p for m, p in session.sent if m == "GET" and "/blobs/" in p and image_id[7:] not in p]
    assert layer_gets == []                               # no layer was pulled
    with pytest.raises(RegistryError, match="not found"):
        inspect_remote(f"{registry.host}/team/base:nope")


def test_inspect_remote_of_a_multi_arch_index(registry, store_root):
    """An index (arm64 + amd64 + ours) put with the registry API; the host's entry is described."""
    store = Store(store_root)
    url = registry.url
    ours = host_architecture()
    pushed = {}
    for arch in sorted({"amd64", "arm64", ours}):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = arch.encode()
            ti = tarfile.TarInfo(f"arch-{arch}")
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
        layer = buf.getvalue()
        config = json.dumps({"architecture": arch, "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [sha256_bytes(layer)]}}).encode()
        for blob in (layer, config):
            d = sha256_bytes(blob)
            r = requests.post(f"{url}/v2/team/multi/blobs/uploads/")
            assert r.status_code == 202, r.text
            location = requests.compat.urljoin(url, r.headers["Location"])
            r = requests.put(f"{location}{'&' if '?' in location else '?'}digest={d}", data=blob,
                             headers={"Content-Type": "application/octet-stream"})
            assert r.status_code == 201, r.text
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": sha256_bytes(config), "size": len(config)},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                           "digest": sha256_bytes(layer), "size": len(layer)}]}).encode()
        r = requests.put(f"{url}/v2/team/multi/manifests/{arch}", data=manifest,
                         headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert r.status_code == 201, r.text
        pushed[arch] = (sha256_bytes(manifest), len(manifest), sha256_bytes(config), sha256_bytes(layer), len(layer))
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m, "size": s,
                            "platform": {"os": "linux", "architecture": arch}}
                           for arch, (m, s, *_rest) in pushed.items()]}
    body = json.dumps(index).encode()
    r = requests.put(f"{url}/v2/team/multi/manifests/1", data=body,
                     headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
    assert r.status_code == 201, r.text

    info = inspect_remote(f"{registry.host}/team/multi:1", store=store)
    manifest_digest, _, config_digest, layer_digest, layer_size = pushed[ours]
    assert info["index_digest"] == sha256_bytes(body) and len(info["index"]["manifests"]) == len(pushed)
    assert info["digest"] == manifest_digest and info["config_digest"] == config_digest
    assert info["platform"] == {"os": "linux", "architecture": ours}
    assert info["layers"] == [{"digest": layer_digest, "size": layer_size,
                               "mediaType": "application/vnd.oci.image.layer.v1.tar"}]
    assert info["config"]["architecture"] == ours
    assert hashlib.sha256(body).hexdigest() == info["index_digest"][7:]
