"""Digests, chain IDs and the empty layer (oci-layers-registry.md §1.10, §1.11)."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from builder.layer.tar_writer import LayerTarWriter, new_tarinfo
from builder.oci.digest import (
    EMPTY_LAYER_DIFF_ID,
    EMPTY_TAR,
    HashingReader,
    HashingWriter,
    chain_id,
    chain_ids,
    hex_of,
    is_digest,
    sha256_bytes,
)

D0 = "sha256:c6f988f4874bb0add23a778f753c65efe992244e148a1d2ec2a8b664fb66bbd1"
D1 = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
D2 = "sha256:84ff92691f909a05b224e1c56abb4864f01b4f8e3c854e4bb4c7baf1d3f6d652"
C1 = "sha256:c3191d32a37d7159b2e30830937d2e30268ad6c375a773a8994911a3aba9b93f"
C2 = "sha256:6795165c306468804750ecdb1873eecb2d501686a5c8786420695aaf3237415a"

CHAIN = [
    pytest.param(None, D0, D0, id="base-layer-is-its-diff-id"),
    pytest.param(D0, D1, C1, id="second-layer"),
    pytest.param(C1, D2, C2, id="third-layer"),
]


@pytest.mark.parametrize(("parent", "diff_id", "expected"), CHAIN)
def test_chain_id_vectors(parent, diff_id: str, expected: str) -> None:
    assert chain_id(parent, diff_id) == expected


def test_chain_ids_of_prefixes() -> None:
    assert chain_ids([D0, D1, D2]) == [D0, C1, C2]
    assert chain_ids([]) == []


WELL_KNOWN = [
    pytest.param(EMPTY_TAR, EMPTY_LAYER_DIFF_ID, id="docker-empty-tar"),
    # Python's tarfile pads to a 10240-byte record: a different digest for the same content.
    pytest.param(b"\0" * 10240, D2, id="python-empty-tar"),
    pytest.param(b"{}", "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                 id="empty-json"),
]


@pytest.mark.parametrize(("data", "digest"), WELL_KNOWN)
def test_well_known_digests(data: bytes, digest: str) -> None:
    assert sha256_bytes(data) == digest
    assert is_digest(digest) and hex_of(digest) == digest[7:]


def test_empty_layer_tar_writer() -> None:
    out = io.BytesIO()
    assert LayerTarWriter(out).close() == (EMPTY_LAYER_DIFF_ID, 1024)
    assert out.getvalue() == EMPTY_TAR


def test_tar_writer_pads_and_hashes() -> None:
    out = io.BytesIO()
    w = LayerTarWriter(out)
    w.add(new_tarinfo("f", typeflag=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, mtime=1, size=3),
          io.BytesIO(b"abc"))
    diff_id, size = w.close()
    data = out.getvalue()
    assert size == len(data) == 512 + 512 + 1024
    assert diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert w.close() == (diff_id, size)  # idempotent
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.extractfile("f").read() == b"abc"


def test_hashing_reader_and_writer_agree() -> None:
    r = HashingReader(io.BytesIO(b"x" * 5000))
    r.read(10)
    r.drain()
    w = HashingWriter(None)
    w.write(b"x" * 5000)
    assert (r.digest, r.size) == (w.digest, w.size) == (sha256_bytes(b"x" * 5000), 5000)
