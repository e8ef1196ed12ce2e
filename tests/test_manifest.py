"""builder/oci/manifest.py: Descriptor, Manifest and Index — validating parse, exact bytes out."""

from __future__ import annotations

import json

import pytest

from builder.errors import ManifestError
from builder.oci.manifest import (
    MEDIA_OCI_CONFIG,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_LAYER,
    MEDIA_OCI_MANIFEST,
    Descriptor,
    Index,
    Manifest,
    Platform,
    manifest_bytes,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def test_store_manifest_bytes_are_what_pybuild_always_wrote():
    # the exact bytes of every stored manifest (their sha256 names them): key order, no spaces
    expected = ('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
                f'"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":10}},'
                f'"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{D2}","size":20}}]}}')
    assert manifest_bytes(config_digest=D1, config_size=10, layers=[(D2, 20)]) == expected.encode()


def test_index_bytes_keep_annotation_order():
    index = Index(MEDIA_OCI_INDEX, (
        Descriptor(MEDIA_OCI_MANIFEST, D1, 5, annotations=(("io.containerd.image.name", "docker.io/library/a:1"),
                                                            ("org.opencontainers.image.ref.name", "1"))),
        Descriptor(MEDIA_OCI_MANIFEST, D2, 6)))
    assert index.to_bytes() == json.dumps({
        "schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": [
            {"mediaType": MEDIA_OCI_MANIFEST, "digest": D1, "size": 5,
             "annotations": {"io.containerd.image.name": "docker.io/library/a:1",
                             "org.opencontainers.image.ref.name": "1"}},
            {"mediaType": MEDIA_OCI_MANIFEST, "digest": D2, "size": 6}]}, separators=(",", ":")).encode()


def test_parse_round_trips():
    m = Manifest(MEDIA_OCI_MANIFEST, Descriptor(MEDIA_OCI_CONFIG, D1, 10),
                 (Descriptor(MEDIA_OCI_LAYER, D2, 20), Descriptor(MEDIA_OCI_LAYER, D3, 0)),
                 annotations=(("k", "v"),))
    assert Manifest.parse(m.to_bytes()) == m
    assert Manifest.parse(m.to_json()) == m
    # a platform keeps every key, in order
    raw = {"schemaVersion": 2, "manifests": [{"mediaType": MEDIA_OCI_MANIFEST, "digest": D1, "size": 1,
                                              "platform": {"os": "linux", "architecture": "arm64",
                                                           "variant": "v8", "os.features": ["x"]}}]}
    index = Index.parse(raw)
    assert index.media_type is None and index.to_json() == raw
    assert index.for_platform("linux", "arm64") is index.manifests[0]
    assert index.for_platform("linux", "amd64") is None
    assert index.manifests[0].platform == Platform.parse(raw["manifests"][0]["platform"], "x")


def _manifest(**changes) -> dict:
    obj = {"schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST,
           "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": D1, "size": 1},
           "layers": [{"mediaType": MEDIA_OCI_LAYER, "digest": D2, "size": 2}]}
    obj.update(changes)
    return obj


@pytest.mark.parametrize("data, message", [
    pytest.param(b"{not json", "manifest is not valid JSON", id="not-json"),
    pytest.param(b"[]", "not a schemaVersion 2 manifest", id="not-an-object"),
    # schema 1 manifests (docker < 1.10) are not read
    pytest.param(_manifest(schemaVersion=1), "not a schemaVersion 2 manifest", id="schema-1"),
    pytest.param(_manifest(config=None), "manifest config is not a valid descriptor", id="no-config"),
    pytest.param(_manifest(config={"digest": "sha256:abc", "size": 1}),
                 "manifest config is not a valid descriptor", id="short-digest"),
    pytest.param(_manifest(layers=[{"digest": D2, "size": -1}]),
                 r"manifest layers\[0\] is not a valid descriptor", id="negative-size"),
    # JSON true is an int to Python; not a size
    pytest.param(_manifest(layers=[{"digest": D2, "size": True}]),
                 r"manifest layers\[0\] is not a valid descriptor", id="bool-size"),
    pytest.param(_manifest(layers=[{"digest": D2, "size": 1, "mediaType": 7}]),
                 r"manifest layers\[0\] is not a valid descriptor", id="media-type-not-a-string"),
    pytest.param(_manifest(layers={}), "manifest layers is not a list", id="layers-not-a-list"),
    pytest.param(_manifest(annotations={"k": 1}), "annotations must map strings to strings",
                 id="annotation-not-a-string"),
])
def test_manifest_parse_says_what_is_wrong(data, message):
    with pytest.raises(ManifestError, match=message):
        Manifest.parse(data if isinstance(data, bytes) else json.dumps(data).encode())


@pytest.mark.parametrize("obj, message", [
    pytest.param({"schemaVersion": 2, "manifests": {}}, "index manifests is not a list", id="not-a-list"),
    pytest.param({"schemaVersion": 2, "manifests": [{"digest": D1}]},
                 r"index manifests\[0\] is not a valid descriptor", id="no-size"),
    pytest.param({"schemaVersion": 2, "manifests": [{"digest": D1, "size": 1, "platform": "linux"}]},
                 "platform is not an object of strings", id="platform-not-an-object"),
])
def test_index_parse_says_what_is_wrong(obj, message):
    with pytest.raises(ManifestError, match=message):
        Index.parse(obj)


def test_a_null_media_type_is_absent():
    # old OCI layouts may omit mediaType (or write null): the blob says what it is
    assert Descriptor.parse({"mediaType": None, "digest": D1, "size": 3}).media_type is None
    assert Descriptor.parse({"digest": D1, "size": 3}).to_json() == {"digest": D1, "size": 3}
