"""``pybuild mount IMAGE DIR`` / ``pybuild umount DIR``: an image's union, read-only, on a
directory of the host — the one deliberate exception to "no mount reaches the host", so it
outlives pybuild.  Mounts carry the source name ``pybuild``; umount refuses anything else.

The union is mounted ``nosuid,nodev`` from the start: an image may hold a setuid-root file or
a device node (a RUN may make both, as in docker), and on the host either would hand any
user who can reach DIR root or a host device."""

from __future__ import annotations

import os
from pathlib import Path

from builder.errors import SandboxError, StoreError
from builder.layer import overlay, userns
from builder.layer.overlay import MS_NODEV, MS_NOSUID, OverlayMount
from builder.oci.config import parse_config
from builder.oci.digest import chain_ids
from builder.store.layout import EMPTY_LOWER
from builder.store.store import Store

MOUNT_SOURCE = "pybuild"


def image_overlay(store: Store, image_id: str, target: str) -> OverlayMount:
    """The read-only union of ``image_id`` on ``target``: lowers ``l/<top>``…``l/<base>``
    [``mnt/empty``], relative to the store root, with no upper dir.  Deep images (past one
    page of mount options) are mounted through the new mount API by ``overlay``."""
    chains = chain_ids(parse_config(store.image_config(image_id)).diff_ids)
    if not chains:
        raise StoreError(f"image {image_id} has no layers to mount")
    lowers = [store.short_layer_path(c) for c in reversed(chains)]
    for chain in reversed(chains):          # top first, as the lowers
        if not store.has_layer(chain) or not store.link_path(chain).is_dir():
            raise StoreError(f"mount: layer {chain} is not in the store")
    if len(lowers) == 1:   # the kernel refuses a lower-only overlay of one dir: add an empty one
        empty = store.empty_lower_path()
        empty.mkdir(mode=0o755, parents=True, exist_ok=True)
        if any(empty.iterdir()):
            raise StoreError(f"mount: {empty} must stay empty")
        lowers.append(EMPTY_LOWER)
    m = OverlayMount(lowers=tuple(lowers), target=target, cwd=str(store.root), source=MOUNT_SOURCE)
    m.check()
    return m


def mount_image(store: Store, image_id: str, target: Path) -> str:
    """Mount the union of ``image_id`` read-only on directory ``target`` in this process's
    mount namespace (so it outlives us); returns the options (``OverlayMount.options``).
    Restores the cwd."""
    target_s = os.path.realpath(target)
    if not os.path.isdir(target_s):
        raise SandboxError(f"mount: {target} is not a directory")
    m = image_overlay(store, image_id, target_s)
    cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        overlay.mount_overlay(m, flags=MS_NOSUID | MS_NODEV)
    except SandboxError as e:
        if userns.in_user_namespace():
            raise SandboxError(f"{e} (pybuild mount needs root: an ordinary user's pybuild runs in a user "
                               f"namespace of its own, and no one outside it could see the mount)") from e
        raise
    finally:
        os.fchdir(cwd)
        os.close(cwd)
    return m.options


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
