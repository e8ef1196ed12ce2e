"""Layer tars coming into the store from outside: a docker-archive, an OCI layout, a rootfs.

One pass over each stream: the (possibly compressed) bytes are hashed as they arrive (blob
digest), decompressed on the fly, teed into a temp file under the store's tmp/ (the layer blob,
whose digest is the diffID) and unpacked into a scratch dir in overlay format.  Nothing is
committed until the diffID has been verified.
"""

from __future__ import annotations

import contextlib
import lzma
import os
import shutil
import zlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import IO, BinaryIO

from builder.errors import ArchiveError, LayerError, PybuildError
from builder.layer.compression import decompressed
from builder.layer.unpack import unpack_layer
from builder.oci.config import parse_config
from builder.oci.digest import CHUNK, HashingReader, HashingWriter, chain_id, is_digest, sha256_bytes
from builder.oci.manifest import manifest_bytes
from builder.store.store import LayerInfo, Store

#: Opens one layer's stream (raw bytes as stored in the archive); the caller closes it.
LayerOpener = Callable[[], AbstractContextManager[IO[bytes]]]


class _Tee:
    """Passes reads through and writes every byte read to ``sink`` (a HashingWriter)."""

    def __init__(self, src: BinaryIO, sink: HashingWriter) -> None:
        self._src = src
        self._sink = sink

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self._sink.write(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def store_layer_from_tar(store: Store, stream: IO[bytes], *, parent_chain: str | None,
                         expected_diff_id: str | None, expected_digest: str | None = None,
                         label: str = "layer") -> LayerInfo:
    """Put one layer tar (plain, gzip, bzip2 or xz) into ``store`` on top of ``parent_chain``.

    ``expected_diff_id`` (may be None: trust what is read) is checked against the sha256 of the
    uncompressed stream, ``expected_digest`` (may be None) against the raw bytes as read; a
    mismatch raises ArchiveError "invalid diffID for <label>: expected …, got …" and leaves the
    store untouched.  If the layer's chain ID is already stored, the stream is only hashed and
    verified, not unpacked again.  Reads ``stream`` to its end; the caller closes it.
    Idempotent: storing the same layer twice yields the same LayerInfo."""
    raw = HashingReader(stream)
    if expected_diff_id is not None:
        chain = chain_id(parent_chain, expected_diff_id)
        if store.has_layer(chain) and store.has_blob(expected_diff_id):
            plain = HashingWriter(None)
            with _reading(label):
                _Tee(decompressed(raw), plain).drain()   # type: ignore[arg-type]
                raw.drain()
            _verify(label, expected_diff_id, plain.digest, expected_digest, raw.digest)
            return store.layer_info(chain)

    scratch = store.scratch_dir("unpack")
    fd, tmp = store.temp_file("layer")
    committed = False
    try:
        with os.fdopen(fd, "wb") as blob:
            plain = HashingWriter(blob)
            with _reading(label):
                tee = _Tee(decompressed(raw), plain)          # type: ignore[arg-type]
                unpack_layer(tee, scratch)                      # type: ignore[arg-type]
                tee.drain()          # what unpack left unread (tar padding) is still the blob
                raw.drain()
            blob.flush()
        _verify(label, expected_diff_id, plain.digest, expected_digest, raw.digest)
        info = store.commit_layer(chain_id=chain_id(parent_chain, plain.digest),
                                  diff_id=plain.digest, parent=parent_chain,
                                  unpacked=scratch, tar_path=tmp, size=plain.size)
        committed = True
        return info
    finally:
        if not committed:
            shutil.rmtree(scratch, ignore_errors=True)
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _reading(label: str):
    """Turn a decompression or I/O failure into an ArchiveError that names the layer."""
    try:
        yield
    except PybuildError as e:
        if isinstance(e, LayerError):
            raise ArchiveError(f"{label}: {e}") from e
        raise
    except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as e:
        raise ArchiveError(f"{label}: read layer tar: {e}") from e


def _verify(label: str, expected_diff_id: str | None, diff_id: str,
            expected_digest: str | None, digest: str) -> None:
    if expected_diff_id is not None and diff_id != expected_diff_id:
        raise ArchiveError(f"invalid diffID for {label}: expected {expected_diff_id}, got {diff_id}")
    if expected_digest is not None and digest != expected_digest:
        raise ArchiveError(f"invalid digest for {label}: expected {expected_digest}, got {digest}")


def store_image(store: Store, config: bytes, layers: Sequence[tuple[LayerOpener, str | None]]) -> str:
    """Store an image from its exact config bytes and its layers, base first, each given as
    (opener of the raw layer stream, expected blob digest or None).  Every layer is verified
    against the config's rootfs.diff_ids; returns the image ID (sha256 of ``config``)."""
    cfg = parse_config(config)
    if len(layers) != len(cfg.diff_ids):
        raise ArchiveError(f"layers length mismatch: the archive has {len(layers)} layers, "
                           f"the config lists {len(cfg.diff_ids)} diff_ids")
    for i, d in enumerate(cfg.diff_ids):
        if not isinstance(d, str) or not is_digest(d):
            raise ArchiveError(f"invalid image config: rootfs.diff_ids[{i}] is not a sha256 digest: {d!r}")
    parent: str | None = None
    descriptors: list[tuple[str, int]] = []
    for i, ((opener, digest), diff_id) in enumerate(zip(layers, cfg.diff_ids)):
        with opener() as stream:
            info = store_layer_from_tar(store, stream, parent_chain=parent, expected_diff_id=diff_id,
                                        expected_digest=digest, label=f"layer {i}")
        parent = info.chain_id
        descriptors.append((info.diff_id, info.size))
    config_digest = sha256_bytes(config)
    manifest = manifest_bytes(config_digest=config_digest, config_size=len(config), layers=descriptors)
    return store.put_image(config, manifest)
