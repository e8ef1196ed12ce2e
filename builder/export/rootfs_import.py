"""``import_rootfs``: a root filesystem tarball becomes a one-layer image, as ``docker import``.

The tarball (plain, gzip, bzip2 or xz) is unpacked into a scratch dir and the dir is captured
again, so the stored layer is pybuild's canonical tar of what was unpacked (docker also
re-serialises an imported tarball: its diffID is not the digest of the file given).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from builder.errors import ArchiveError, LayerError
from builder.layer.capture import capture
from builder.layer.unpack import open_maybe_compressed, unpack_layer
from builder.oci.config import History, ImageConfig, RunConfig, config_bytes, host_architecture, now_rfc3339
from builder.oci.digest import sha256_bytes
from builder.oci.manifest import manifest_bytes
from builder.store.store import Store


def import_rootfs(store: Store, tar_path: str | Path, ref: str | None) -> str:
    """Import ``tar_path`` as a new image tagged ``ref`` (None: untagged); returns the image ID.

    The config has the host architecture, os linux, an empty run config (no Env, no Cmd) and one
    history entry "Imported from <file name>"."""
    path = Path(tar_path)
    scratch = store.scratch_dir("import")
    fd, tmp = store.temp_file("import")                 # the layer tar; removed on failure
    out = os.fdopen(fd, "wb")
    committed = False
    try:
        try:
            stream = open_maybe_compressed(path)
        except LayerError as e:
            raise ArchiveError(f"import {path}: {e}") from e
        if stream is None:
            raise ArchiveError(f"import {path}: not a tar archive (plain, gzip, bzip2 or xz)")
        with stream:
            try:
                unpack_layer(stream, scratch)
            except LayerError as e:
                raise ArchiveError(f"import {path}: {e}") from e
        with out:
            layer = capture(scratch, out)
            out.flush()
        info = store.commit_layer(chain_id=layer.diff_id, diff_id=layer.diff_id, parent=None,
                                  unpacked=scratch, tar_path=tmp, size=layer.size)
        committed = True
    finally:
        out.close()
        if not committed:
            shutil.rmtree(scratch, ignore_errors=True)
            tmp.unlink(missing_ok=True)
    now = now_rfc3339()
    cfg = ImageConfig(architecture=host_architecture(), os="linux", config=RunConfig(),
                      diff_ids=(info.diff_id,),
                      history=(History(created=now, created_by="", comment=f"Imported from {path.name}"),),
                      created=now)
    raw = config_bytes(cfg)
    manifest = manifest_bytes(config_digest=sha256_bytes(raw), config_size=len(raw),
                              layers=[(info.diff_id, info.size)])
    image_id = store.put_image(raw, manifest)
    if ref:
        store.set_tag(ref, image_id)
    return image_id
