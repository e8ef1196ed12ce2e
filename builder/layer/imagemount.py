"""``pybuild mount IMAGE DIR`` / ``pybuild umount DIR``: an image's union, read-only, on a
directory of the host — the one deliberate exception to "no mount reaches the host", so it
outlives pybuild.  Mounts carry the source name ``pybuild``; umount refuses anything else."""

from __future__ import annotations

import os
from pathlib import Path

from builder.digest import chain_ids
from builder.errors import SandboxError, StoreError
from builder.image import parse_config
from builder.layer import overlay
from builder.store import Store

MOUNT_SOURCE = "pybuild"
#: A read-only overlay needs two lower dirs: a one-layer image gets this empty one below it.
EMPTY_LOWER = "mnt/empty"


def mount_options(store: Store, image_id: str) -> str:
    """``lowerdir=l/<top>:…:l/<base>[:mnt/empty],…``, relative to the store root."""
    chains = chain_ids(parse_config(store.image_config(image_id)).diff_ids)
    if not chains:
        raise StoreError(f"image {image_id} has no layers to mount")
    lowers = [store.short_layer_path(c) for c in reversed(chains)]
    for chain, lower in zip(reversed(chains), lowers):
        if not store.has_layer(chain) or not (store.root / lower).is_dir():
            raise StoreError(f"mount: layer {chain} is not in the store")
    if len(lowers) == 1:   # the kernel refuses a lower-only overlay of one dir
        empty = store.root / EMPTY_LOWER
        empty.mkdir(mode=0o755, parents=True, exist_ok=True)
        if any(empty.iterdir()):
            raise StoreError(f"mount: {empty} must stay empty")
        lowers.append(EMPTY_LOWER)
    # without an upper dir the kernel cannot write redirects and only asks whether to follow
    # them: "nofollow" says what happens (our layers never hold redirects)
    opts = f"lowerdir={':'.join(lowers)},index=off,redirect_dir=nofollow,metacopy=off"
    if len(opts) > os.sysconf("SC_PAGE_SIZE") - 1:
        raise SandboxError(f"too many layers to mount ({len(lowers)}): the options exceed one page")
    return opts


def mount_image(store: Store, image_id: str, target: Path) -> str:
    """Mount the union of ``image_id`` read-only on directory ``target`` in this process's
    mount namespace (so it outlives us); returns the option string.  Restores the cwd."""
    target_s = os.path.realpath(target)
    if not os.path.isdir(target_s):
        raise SandboxError(f"mount: {target} is not a directory")
    opts = mount_options(store, image_id)
    cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.chdir(store.root)
        overlay.mount(MOUNT_SOURCE, target_s, "overlay", overlay.MS_RDONLY, opts)
    finally:
        os.fchdir(cwd)
        os.close(cwd)
    return opts


def umount_image(target: Path) -> None:
    """Unmount ``target`` if it is a ``pybuild mount``; refuse any other mount."""
    point = os.path.realpath(target)
    found = [m for m in overlay.mounts() if m.point == point]
    if not found:
        raise SandboxError(f"umount: {target} is not a mount point")
    top = found[-1]
    if top.fstype != "overlay" or top.source != MOUNT_SOURCE:
        raise SandboxError(f"umount: {target} is not a pybuild mount "
                           f"({top.fstype} from {top.source})")
    overlay.umount(point)
